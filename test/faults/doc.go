// Package faults breaks things on purpose while meshguard works (issue 12, points 1–7): the
// built manager binary runs against a local control plane (test/testenv) whose kube-apiserver
// is killed, whose etcd is stopped, behind a proxy that throttles and fails requests, with the
// manager itself killed, with two managers electing a leader, with namespaces, profiles and the
// Istio CRDs deleted under it, and with another controller fighting over a generated field.
//
// Every scenario ends with the same exact check: every profile Ready for its generation, and
// the cluster holding precisely the objects `manager render` prints for the live profiles —
// none missing, none extra, none orphaned, every one owned by its profile and equal to what was
// rendered, and every status row InSync.
//
// `make test` runs it with few profiles (MESHGUARD_FAULTS_PROFILES, default 20);
// `make test-faults` runs it with 200. Figures (takeover time, requests through the fault
// proxy, writes under a fight) are printed, not asserted as timings.
package faults
