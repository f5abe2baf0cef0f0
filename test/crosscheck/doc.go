// Package crosscheck checks meshguard's NetworkPolicy handling against an independent
// NetworkPolicy analyzer, np-guard's netpol-analyzer, on generated profiles.
//
// For seeded random profiles (their networkPolicy section) rendered by internal/render, and a
// fixed world of namespaces, pods and outside addresses, every sampled (source, destination,
// protocol, port) is judged three ways:
//   - by netpol-analyzer's PolicyEngine.CheckIfAllowed on the rendered NetworkPolicies;
//   - by internal/explain's NetworkPolicy layers (egress of the source, ingress of the
//     destination) on the same objects (issue 15, point 4);
//   - by an intent model written from the profile's spec alone, without the rendered objects
//     (issue 12, point 11): the connections the profile's networkPolicy section allows.
//
// It is a module of its own so that the analyzer and its dependencies stay out of meshguard's
// go.mod; `make test-crosscheck` (part of `make test`) runs it. The analyzer's module is not in
// the checksum database: GONOSUMDB=github.com/np-guard.
package crosscheck
