package render

// linkerd renders the Linkerd policy.linkerd.io objects of the profile.
func (r *renderer) linkerd() {}
