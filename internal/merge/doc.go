// Package merge computes the profile a namespace is governed by when ClusterMeshSecurityProfiles
// (floors) select it: the floors and the namespace's own MeshSecurityProfile folded into one
// MeshSecurityProfileSpec, which render then turns into one set of objects.
//
// The rule (docs/cluster-profiles.md): mTLS modes take the strictest (Strict > Permissive >
// Disable), namespace-wide, per workload and per port; authorization and NetworkPolicy default
// denies are unions; allowDNS, allowMeshControlPlane and requireToken are or; rules and JWT
// issuers are unions. What the namespace profile asks below a floor is held at the floor and
// reported (FloorHold). Profiles that cannot be merged (different meshes or trust domains) are a
// *ConflictError: the caller applies nothing new.
//
// Pure: no client, no clock; deterministic output for any input order.
package merge
