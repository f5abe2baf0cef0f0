package render

import (
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

func TestNamespaceNamesSelector(t *testing.T) {
	tests := []struct {
		name  string
		in    []string
		wantV []string
	}{
		{name: "one namespace is selected by its name label", in: []string{"frontend"}, wantV: []string{"frontend"}},
		{name: "namespaces are sorted so that the profile's order does not matter", in: []string{"b", "a", "c"}, wantV: []string{"a", "b", "c"}},
		{name: "a namespace listed twice is selected once", in: []string{"a", "b", "a"}, wantV: []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			s := namespaceNamesSelector(tt.in)
			g.Expect(s.MatchLabels).To(BeEmpty())
			g.Expect(s.MatchExpressions).To(HaveLen(1))
			g.Expect(s.MatchExpressions[0].Key).To(Equal("kubernetes.io/metadata.name"))
			g.Expect(string(s.MatchExpressions[0].Operator)).To(Equal("In"))
			g.Expect(s.MatchExpressions[0].Values).To(Equal(tt.wantV))
		})
	}
}

// TestNetworkPolicyDefaults checks that fields the API server would default are written out and
// that an empty pod selector is present rather than left out, so that a live object equals the
// rendered one.
func TestNetworkPolicyDefaults(t *testing.T) {
	p := &v1alpha1.MeshSecurityProfile{}
	p.Name, p.Namespace = "p", "shop"
	p.Spec.NetworkPolicy = &v1alpha1.NetworkPolicySpec{
		DefaultDeny: []v1alpha1.PolicyDirection{v1alpha1.DirectionEgress, v1alpha1.DirectionIngress, v1alpha1.DirectionEgress},
		Ingress: []v1alpha1.IngressRule{{
			Name:  "web",
			From:  []v1alpha1.NetworkPeer{{Namespaces: []string{"frontend"}}},
			Ports: []v1alpha1.NetworkPort{{Port: 8080}},
		}},
	}
	g := NewWithT(t)
	byName := renderByKindName(g, p)

	tests := []struct {
		name   string
		object string
		path   []string
		want   any
	}{
		{name: "default deny has an empty pod selector that selects every pod", object: "NetworkPolicy/p-default-deny", path: []string{"spec", "podSelector"}, want: map[string]any{}},
		{name: "default deny lists each direction once in a fixed order", object: "NetworkPolicy/p-default-deny", path: []string{"spec", "policyTypes"}, want: []any{"Ingress", "Egress"}},
		{name: "a rule without selector selects every pod with an empty selector", object: "NetworkPolicy/p-ingress-web", path: []string{"spec", "podSelector"}, want: map[string]any{}},
		{name: "an ingress rule writes its policy type", object: "NetworkPolicy/p-ingress-web", path: []string{"spec", "policyTypes"}, want: []any{"Ingress"}},
		{name: "a port without protocol is written as TCP", object: "NetworkPolicy/p-ingress-web", path: []string{"spec", "ingress"}, want: []any{map[string]any{
			"from": []any{map[string]any{"namespaceSelector": map[string]any{"matchExpressions": []any{map[string]any{
				"key": "kubernetes.io/metadata.name", "operator": "In", "values": []any{"frontend"},
			}}}}},
			"ports": []any{map[string]any{"port": int64(8080), "protocol": "TCP"}},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			o, ok := byName[tt.object]
			g.Expect(ok).To(BeTrue(), "object %s not rendered", tt.object)
			got, found, err := unstructured.NestedFieldNoCopy(o.Object, tt.path...)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(found).To(BeTrue())
			g.Expect(got).To(Equal(tt.want))
		})
	}
}

func TestNetworkPolicyPeers(t *testing.T) {
	tests := []struct {
		name    string
		peers   []v1alpha1.NetworkPeer
		wantErr string
	}{
		{name: "an empty peer list is refused because Kubernetes reads it as everyone", peers: []v1alpha1.NetworkPeer{}, wantErr: "from: Required value"},
		{name: "a peer with nothing set is refused", peers: []v1alpha1.NetworkPeer{{}}, wantErr: "from[0]: Required value"},
		{name: "an empty namespace list is refused rather than read as every namespace", peers: []v1alpha1.NetworkPeer{{Namespaces: []string{}}}, wantErr: "from[0].namespaces: Required value"},
		{name: "an ipBlock combined with namespaces is refused", peers: []v1alpha1.NetworkPeer{{IPBlock: &v1alpha1.IPBlock{CIDR: "10.0.0.0/8"}, Namespaces: []string{"a"}}}, wantErr: "from[0].ipBlock: Invalid value"},
		{name: "an exception outside the cidr is refused", peers: []v1alpha1.NetworkPeer{{IPBlock: &v1alpha1.IPBlock{CIDR: "10.0.0.0/16", Except: []string{"10.1.0.0/24"}}}}, wantErr: "from[0].ipBlock.except[0]: Invalid value"},
		{name: "an exception as wide as the cidr is refused", peers: []v1alpha1.NetworkPeer{{IPBlock: &v1alpha1.IPBlock{CIDR: "10.0.0.0/16", Except: []string{"10.0.0.0/16"}}}}, wantErr: "from[0].ipBlock.except[0]: Invalid value"},
		{name: "an exception strictly inside the cidr is accepted", peers: []v1alpha1.NetworkPeer{{IPBlock: &v1alpha1.IPBlock{CIDR: "10.0.0.0/16", Except: []string{"10.0.1.0/24"}}}}},
		{name: "a namespace name with a wildcard is refused", peers: []v1alpha1.NetworkPeer{{Namespaces: []string{"prod-*"}}}, wantErr: "from[0].namespaces[0]: Invalid value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			p := &v1alpha1.MeshSecurityProfile{}
			p.Name, p.Namespace = "p", "shop"
			p.Spec.NetworkPolicy = &v1alpha1.NetworkPolicySpec{Ingress: []v1alpha1.IngressRule{{Name: "r", From: tt.peers}}}
			_, err := Render(p, DefaultOptions())
			if tt.wantErr == "" {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			var invalid *InvalidSpecError
			g.Expect(err).To(BeAssignableToTypeOf(invalid))
			g.Expect(err.Error()).To(ContainSubstring("spec.networkPolicy.ingress[0]." + tt.wantErr))
		})
	}
}
