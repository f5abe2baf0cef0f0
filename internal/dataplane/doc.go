// Package dataplane decides, from facts the controller gathered (pods, Services, waypoint
// Gateways and the namespace's labels), which Istio data plane serves each workload a profile
// selects: a sidecar, ztunnel alone (ambient), ztunnel with a waypoint, or none. It is pure: the
// facts come in as plain data, so render and explain can take the same decision and tests need no
// cluster.
//
// The rules follow Istio's own code, cited at each function; the facts and their sources are
// collected in docs/semantics.md ("Sidecar, ambient and waypoints").
package dataplane
