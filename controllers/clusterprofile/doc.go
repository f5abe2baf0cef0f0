// Package clusterprofile holds the status reconciler of ClusterMeshSecurityProfiles: how many of
// the namespaces they select are at the floor, and which are not and why. It writes nothing else.
package clusterprofile
