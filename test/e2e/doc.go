// Package e2e tests the built manager binary as a user runs it: `go build` of the repository,
// a local control plane (etcd, kube-apiserver and kube-controller-manager, see test/testenv) with
// meshguard deployed by `kubectl apply -k config/default`, the manager started as a process with
// the deployed service account's identity, and everything else done with kubectl and the API.
//
// The specs (`go test ./test/e2e/`) check the samples, kstatus, garbage collection, drift
// correction with its events and metrics, and `manager render`. BenchmarkDriftRestore
// (`make bench`) measures how fast meshguard restores edited and deleted objects and how many
// API writes each correction costs; it starts a cluster of its own.
//
// MESHGUARD_E2E_IDENTITY=admin runs the manager as a cluster administrator instead of as the
// deployed service account, to tell RBAC problems from others. Logs of a failed run (manager-*.log,
// kube-controller-manager.log) are kept in the temporary directory the run prints.
package e2e
