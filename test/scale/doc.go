// Package scale is meshguard's scale harness (`make bench`): on one local control plane it measures
// how long meshguard takes to bring N namespaces to Ready beside two references that create exactly
// the objects render produces — a bare client-go writer (with the manager's client limits and
// concurrency, and without any client-side limit) and Kyverno's background controller with a
// generateExisting ClusterPolicy — and what meshguard costs at rest: API requests of a resync and of
// a restart, counted by the kube-apiserver itself (apiserver_request_total), the manager's RSS and Go
// heap, drift restoration under load, how fast a weakening foreign policy is reported, and start-up
// re-verification. It prints one table; it asserts no timing. `make test` runs an N = 10 smoke
// (TestHarnessSmoke) that checks the harness's correctness so that it cannot rot.
package scale
