// Package policyreport turns a MeshSecurityProfile's status into a wgpolicyk8s.io/v1alpha2
// PolicyReport for its namespace, so that Policy Reporter, Kyverno's UIs and any tool that reads
// the Policy WG's report API show meshguard's findings beside the others.
//
// The report is a pure function of the status meshguard computed: one result per class of
// finding, under a stable rule name (Rules), fail (or warn) while the finding holds and pass once
// it clears. Its timestamps are the transition times of the conditions, so the same status gives
// the same report, byte for byte: a controller that compares before it writes writes nothing at
// rest.
//
// API: https://github.com/kubernetes-sigs/wg-policy-prototypes/tree/master/policy-report (the
// CRD meshguard is tested with is the copy in github.com/kyverno/kyverno config/crds/policyreport).
package policyreport
