// Package cli implements the manager's subcommands that run without a cluster. `manager render`
// validates MeshSecurityProfile manifests exactly as the API server would and prints the objects
// meshguard would generate for them: a GitOps preview and a CI check.
package cli
