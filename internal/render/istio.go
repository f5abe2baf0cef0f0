package render

// istio renders the Istio security.istio.io/v1 objects of the profile.
func (r *renderer) istio() {}
