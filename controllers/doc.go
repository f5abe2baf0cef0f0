// Package controllers is meshguard's controller layer as the manager sees it: the profiles'
// reconciler (an alias of profile.Reconciler), SetupFloors, the cache and client options, and the
// start-up helpers main.go calls. The work is done in four packages, one per reconciler as in
// Cluster API, none of which touches another's fields:
//
//   - pipeline: what the reconcilers share. The apply → prune → observe → requeue pipeline
//     (pipeline.go) over an owner (owners_profile.go, owners_floor.go: the controller reference,
//     the label, the event target and the previous rows), decide.go (per object, what apply
//     writes), the caches and memories behind it (installed kinds, foreign objects, fights,
//     meshguard's own writes, certificate verdicts), and the status computation: a profile's
//     (meshsecurityprofile_status.go) and a cluster profile's (clusterprofile_status.go), pure.
//   - profile: the MeshSecurityProfileReconciler, one MeshSecurityProfile merged with the cluster
//     floors that select its namespace.
//   - floor: the floor reconciler, one namespace without a profile, given the merge of the
//     ClusterMeshSecurityProfiles that select it; the objects and the events are the governing
//     cluster profile's.
//   - clusterprofile: the status of one ClusterMeshSecurityProfile, summarised over the
//     namespaces it selects.
//
// Rendering is internal/render's (it decides everything a spec means); everything under
// controllers is about talking to the API server. The envtest suite here runs all three
// reconcilers in one manager, through the public API only.
package controllers
