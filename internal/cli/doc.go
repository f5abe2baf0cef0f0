// Package cli implements the manager's subcommands. `manager render` validates
// MeshSecurityProfile manifests exactly as the API server would and prints the objects meshguard
// would generate for them: a GitOps preview and a CI check. `manager explain` says whether a
// request gets through the policies of manifests (profiles rendered) or of a live cluster (read
// only), layer by layer, naming the deciding objects; internal/explain decides.
package cli
