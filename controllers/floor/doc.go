// Package floor holds the floor reconciler: one namespace without a MeshSecurityProfile, given
// the merge of the ClusterMeshSecurityProfiles that select it and run through the shared pipeline
// (controllers/pipeline). The objects are the governing cluster profile's, and so are the events;
// its verdicts feed the cluster profiles' status (controllers/clusterprofile).
package floor
