// Package controllers holds meshguard's three reconcilers and what they share:
//
//   - MeshSecurityProfileReconciler (meshsecurityprofile_controller.go): one MeshSecurityProfile,
//     merged with the cluster floors that select its namespace; its status
//     (meshsecurityprofile_status.go, pure).
//   - FloorReconciler (floor_controller.go): one namespace without a profile, given the merge of
//     the ClusterMeshSecurityProfiles that select it; the objects are the governing cluster
//     profile's, and so are the events.
//   - ClusterProfileReconciler (clusterprofile_controller.go): the status of one
//     ClusterMeshSecurityProfile, summarised over the namespaces it selects
//     (clusterprofile_status.go, pure).
//
// The first two render (internal/render decides everything a spec means) and then run the same
// pipeline (pipeline.go): apply → prune → observe → requeue, over an owner — the profile, or the
// cluster profile in one namespace — that gives the controller reference, the label, the event
// target and its previous rows. decide.go chooses, per object, what apply writes. Everything here
// is about talking to the API server.
package controllers
