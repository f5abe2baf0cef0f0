package v1alpha1

// GetMesh returns the mesh the profile generates objects for: Istio when mesh is empty. The API
// server defaults mesh to Istio, but a profile read from a file (`manager render`, goldens) or built
// in code may leave it empty; every reader decides through this getter so that the default is
// written once. An unknown value is returned as is (render rejects it, naming spec.mesh).
func (s *MeshSecurityProfileSpec) GetMesh() Mesh {
	if s == nil || s.Mesh == "" {
		return MeshIstio
	}
	return s.Mesh
}
