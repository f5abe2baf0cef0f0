package effective

import (
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/runtime/schema"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/clusterfacts"
	"github.com/meshguard/meshguard/internal/explain"
	"github.com/meshguard/meshguard/internal/render"
)

func TestScopes(t *testing.T) {
	np := schema.GroupKind{Group: "networking.k8s.io", Kind: "NetworkPolicy"}
	pa := schema.GroupKind{Group: "security.istio.io", Kind: "PeerAuthentication"}
	ap := schema.GroupKind{Group: "security.istio.io", Kind: "AuthorizationPolicy"}
	ra := schema.GroupKind{Group: "security.istio.io", Kind: "RequestAuthentication"}
	lk := func(kind string) schema.GroupKind { return schema.GroupKind{Group: "policy.linkerd.io", Kind: kind} }
	anp := Scope{schema.GroupKind{Group: "policy.networking.k8s.io", Kind: "AdminNetworkPolicy"}, ""}
	cnp := Scope{schema.GroupKind{Group: "policy.networking.k8s.io", Kind: "ClusterNetworkPolicy"}, ""}
	cases := []struct {
		name    string
		profile *v1alpha1.MeshSecurityProfile
		opts    Options
		want    []Scope
	}{
		{"an Istio profile is judged on NetworkPolicies of its namespace and Istio policies of its namespace and the root namespace",
			profile(), Options{Facts: clusterfacts.Facts{IstioRootNamespace: "mesh-root"}},
			[]Scope{{np, testNamespace}, anp, cnp, {pa, testNamespace}, {ap, testNamespace}, {ra, testNamespace}, {ap, "mesh-root"}, {pa, "mesh-root"}, {ra, "mesh-root"}}},
		{"a profile without a mesh is an Istio one, with istio-system as the default root namespace",
			profile(withMesh("")), Options{},
			[]Scope{{np, testNamespace}, anp, cnp, {pa, testNamespace}, {ap, testNamespace}, {ra, testNamespace}, {ap, "istio-system"}, {pa, "istio-system"}, {ra, "istio-system"}}},
		{"a Linkerd profile is judged on NetworkPolicies and Linkerd's policy objects of its namespace",
			profile(withMesh(v1alpha1.MeshLinkerd)), Options{},
			[]Scope{{np, testNamespace}, anp, cnp, {lk("Server"), testNamespace}, {lk("AuthorizationPolicy"), testNamespace},
				{lk("MeshTLSAuthentication"), testNamespace}, {lk("NetworkAuthentication"), testNamespace}, {lk("HTTPRoute"), testNamespace},
				{lk("ServerAuthorization"), testNamespace}}},
		{"no profile, nothing to list", nil, Options{}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			NewWithT(t).Expect(Scopes(tc.profile, tc.opts)).To(Equal(tc.want))
		})
	}
}

// TestScopesAreKindsRenderGenerates ties effective to render without an import: the caller finds
// each kind's version in render.Kinds() or ExtraKinds(), so a judged kind neither lists could not
// be listed.
func TestScopesAreKindsRenderGenerates(t *testing.T) {
	g := NewWithT(t)
	generated := map[schema.GroupKind]bool{}
	for _, k := range render.Kinds() {
		generated[k.GroupKind()] = true
	}
	for _, k := range ExtraKinds() {
		generated[k.GroupKind] = true
	}
	for _, s := range append(Scopes(profile(), Options{}), Scopes(profile(withMesh(v1alpha1.MeshLinkerd)), Options{})...) {
		g.Expect(generated).To(HaveKey(s.GroupKind))
	}
}

// TestExtraKindsHoldExplainsCNIKinds: the controller finds whether each CNI-specific kind explain
// names is served through ExtraKinds; one missing there would never be detected.
func TestExtraKindsHoldExplainsCNIKinds(t *testing.T) {
	g := NewWithT(t)
	have := map[string]bool{}
	for _, k := range ExtraKinds() {
		have[k.GroupKind.Kind+"."+k.GroupKind.Group] = true
	}
	for _, k := range explain.CNIPolicyKinds {
		g.Expect(have).To(HaveKey(k))
	}
}
