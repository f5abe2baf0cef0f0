// Package profile holds the MeshSecurityProfile reconciler: one profile, merged with the cluster
// floors that select its namespace, rendered, and run through the shared pipeline
// (controllers/pipeline); its status is written once per reconcile.
package profile
