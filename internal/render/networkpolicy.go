package render

// networkPolicies renders the networking.k8s.io/v1 NetworkPolicies of the profile; they are the
// same for every mesh except for the control plane they let pods reach.
func (r *renderer) networkPolicies() {}
