package validation_test

import (
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/util/validation/field"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/validation"
)

func TestClusterProfilesAreValidatedAgainstTheirOwnSchema(t *testing.T) {
	cases := []struct {
		name      string
		yaml      string
		wantField string // "" when valid
	}{
		{name: "a floor with an explicit empty selector is valid", yaml: `
apiVersion: security.meshguard.dev/v1alpha1
kind: ClusterMeshSecurityProfile
metadata: {name: floor}
spec:
  namespaceSelector: {}
  networkPolicy: {defaultDeny: [Ingress]}`},
		{name: "a floor without namespaceSelector is refused", wantField: "spec.namespaceSelector", yaml: `
apiVersion: security.meshguard.dev/v1alpha1
kind: ClusterMeshSecurityProfile
metadata: {name: floor}
spec:
  mtls: {mode: Strict}`},
		{name: "the shared body's CEL rules apply to a floor (no JWT on Linkerd)", wantField: "spec", yaml: `
apiVersion: security.meshguard.dev/v1alpha1
kind: ClusterMeshSecurityProfile
metadata: {name: floor}
spec:
  namespaceSelector: {}
  mesh: Linkerd
  requestAuthentication: {issuers: [{issuer: https://a.example.com}]}`},
		{name: "the shared body's field validation applies to a floor", wantField: "spec.mtls.mode", yaml: `
apiVersion: security.meshguard.dev/v1alpha1
kind: ClusterMeshSecurityProfile
metadata: {name: floor}
spec:
  namespaceSelector: {}
  mtls: {mode: Sometimes}`},
		{name: "a cluster-scoped floor has no namespace", wantField: "metadata.namespace", yaml: `
apiVersion: security.meshguard.dev/v1alpha1
kind: ClusterMeshSecurityProfile
metadata: {name: floor, namespace: shop}
spec:
  namespaceSelector: {}`},
		{name: "an excluded namespace must be a namespace name", wantField: "spec.excludeNamespaces[0]", yaml: `
apiVersion: security.meshguard.dev/v1alpha1
kind: ClusterMeshSecurityProfile
metadata: {name: floor}
spec:
  namespaceSelector: {}
  excludeNamespaces: [Not_A_Name]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			u, err := validation.Parse([]byte(tc.yaml))
			g.Expect(err).NotTo(HaveOccurred())
			c, errs, err := validation.ClusterFromUnstructured(u)
			g.Expect(err).NotTo(HaveOccurred())
			if tc.wantField == "" {
				g.Expect(errs).To(BeEmpty())
				g.Expect(c.Spec.Mesh).To(Equal(v1alpha1.MeshIstio), "defaulted as the API server does")
				g.Expect(c.Spec.MTLS.Mode).To(Equal(v1alpha1.MTLSStrict))
				return
			}
			g.Expect(errs).To(ContainElement(Satisfy(func(e *field.Error) bool { return names(e, tc.wantField) || e.Field == tc.wantField })),
				"want an error naming %s, got %v", tc.wantField, fields(errs))
		})
	}
}

func TestAClusterProfileIsNotANamespaceProfile(t *testing.T) {
	g := NewWithT(t)
	u, err := validation.Parse([]byte("apiVersion: security.meshguard.dev/v1alpha1\nkind: ClusterMeshSecurityProfile\nmetadata: {name: floor}\nspec: {namespaceSelector: {}}\n"))
	g.Expect(err).NotTo(HaveOccurred())
	_, errs, err := validation.FromUnstructured(u)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(fields(errs)).To(ConsistOf(ContainSubstring("kind")))
}

func TestAFloorCannotHoldExpectations(t *testing.T) {
	g := NewWithT(t)
	u, err := validation.Parse([]byte(`apiVersion: security.meshguard.dev/v1alpha1
kind: ClusterMeshSecurityProfile
metadata: {name: floor}
spec:
  namespaceSelector: {}
  expectations:
  - {name: web, from: {namespace: frontend}, to: {podLabels: {app: api}, port: 8080}, want: Allowed}
`))
	g.Expect(err).NotTo(HaveOccurred())
	_, errs, err := validation.ClusterFromUnstructured(u)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(fields(errs)).To(ContainElement(ContainSubstring("expectations are not supported on a ClusterMeshSecurityProfile")))
}
