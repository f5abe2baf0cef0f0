package v1alpha1

import "testing"

func TestGetMesh(t *testing.T) {
	cases := []struct {
		name string
		spec *MeshSecurityProfileSpec
		want Mesh
	}{
		{"an empty mesh means Istio, as the CRD's default says", &MeshSecurityProfileSpec{}, MeshIstio},
		{"a nil spec means Istio", nil, MeshIstio},
		{"Linkerd stays Linkerd", &MeshSecurityProfileSpec{Mesh: MeshLinkerd}, MeshLinkerd},
		{"an unknown mesh is returned as is, for render to reject", &MeshSecurityProfileSpec{Mesh: "Consul"}, "Consul"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.spec.GetMesh(); got != tc.want {
				t.Errorf("GetMesh() = %q, want %q", got, tc.want)
			}
		})
	}
}
