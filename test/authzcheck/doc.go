// Package authzcheck checks that the authorization objects meshguard generates never admit a
// source the profile did not name (issue 12, point 11, the AuthorizationPolicy half; the
// NetworkPolicy half is test/crosscheck).
//
// For seeded random profiles (Istio and Linkerd, with and without defaultDeny, Allow and Deny
// rules on service accounts, namespaces, JWT principals, addresses, methods, paths and ports),
// rendered by internal/render, every sampled HTTP request (source pod or address, destination
// pod and port, method, path, token) is judged twice:
//   - by internal/explain's authorization layer on the rendered objects (Istio
//     AuthorizationPolicies; Linkerd Servers, AuthorizationPolicies, MeshTLSAuthentications,
//     NetworkAuthentications, HTTPRoutes and the namespace's default inbound policy);
//   - by an intent model written from the profile's spec alone (intent.go), never from the
//     rendered objects.
//
// A request the objects admit and the intent refuses is wider than declared: the test fails
// with the profile and the request.
package authzcheck
