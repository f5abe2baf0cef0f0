// Package meshsem holds what a mesh does with a profile's settings, written once: how an mTLS
// mode is inherited from the namespace to an override to a port, which Linkerd default inbound
// policy a profile asks for and what each one admits, the order in which Istio picks among
// PeerAuthentications of one level, and whether a pod's inbound port goes through its proxy.
//
// render, merge, effective and explain all call these functions instead of deciding again, so
// that a fix lands everywhere at once. Each decision names its upstream source. The package is
// pure: no client, no clock, no I/O, and it imports only the API types and upstream types.
package meshsem
