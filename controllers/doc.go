// Package controllers holds meshguard's reconciler: the orchestration of render → apply → prune →
// observe for each MeshSecurityProfile, and the status it writes. Everything a profile means is
// decided in internal/render; everything here is about talking to the API server.
package controllers
