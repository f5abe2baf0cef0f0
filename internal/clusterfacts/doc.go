// Package clusterfacts holds the facts about the cluster that meshguard's decisions depend on and
// that no profile says: the mesh trust domain, where the mesh control planes and Istio's root
// namespace are, and which pods serve the cluster DNS. One type, one set of defaults and one flag
// binding, shared by the manager, `manager render` and `manager explain`, so that the preview and
// the offline answers use what the controller uses.
package clusterfacts
