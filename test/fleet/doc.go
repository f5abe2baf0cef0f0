// Package fleet is the end-to-end test of meshguard in a fleet: two local control planes, the
// built manager running against each with its own --cluster-name and the RBAC config/default
// deploys, the same profile synced to both, one cluster made to diverge, and the difference read
// the way fleet tools read it: the status summary through the JSONPaths of the Open Cluster
// Management sample (config/samples/fleet), the PolicyReports, and the cluster label on the
// metrics a central Prometheus scrapes.
package fleet
