package pipeline

import (
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/effective"
)

func TestParseLinkerdValues(t *testing.T) {
	g := NewWithT(t)
	f, err := parseLinkerdValues("clusterDomain: cluster.local\nclusterNetworks: \"10.0.0.0/8, 198.18.0.0/15\"\nproxy:\n  defaultInboundPolicy: cluster-unauthenticated\n  ports: {inbound: 4243}\npolicyController:\n  probeNetworks: [10.0.0.0/8]\n")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f.clusterNetworks).To(Equal([]string{"10.0.0.0/8", "198.18.0.0/15"}))
	g.Expect(f.defaultInboundPolicy).To(Equal("cluster-unauthenticated"))
	g.Expect(f.inboundPort).To(Equal(int32(4243)))
	g.Expect(f.probeNetworks).To(Equal([]string{"10.0.0.0/8"}))

	f, err = parseLinkerdValues("")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f).To(Equal(linkerdFacts{}), "nothing set: Linkerd's defaults")

	_, err = parseLinkerdValues("clusterNetworks: [1, 2")
	g.Expect(err).To(MatchError(ContainSubstring("data.values")))
}

func TestPolicyScopesWithExpectations(t *testing.T) {
	g := NewWithT(t)
	p := &v1alpha1.MeshSecurityProfile{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "shop"}}
	p.Spec.Mesh = v1alpha1.MeshIstio
	without := policyScopes(p, effective.Options{})
	for _, s := range without {
		g.Expect(s.GroupKind.Group).NotTo(Equal("cilium.io"), "without expectations only the judged kinds are read")
	}
	p.Spec.Expectations = []v1alpha1.Expectation{{Name: "x", From: v1alpha1.ExpectationSource{Namespace: "sandbox"}, To: v1alpha1.ExpectationTarget{Port: 8080}, Want: v1alpha1.ExpectDenied}}
	got := map[string]bool{}
	seen := map[effective.Scope]bool{}
	for _, s := range policyScopes(p, effective.Options{}) {
		g.Expect(seen[s.Scope]).To(BeFalse(), "each scope once: %v", s.Scope)
		seen[s.Scope] = true
		got[s.GroupKind.Kind+"@"+s.Namespace] = s.judged
	}
	g.Expect(got).To(HaveKeyWithValue("AdminNetworkPolicy@", true))
	g.Expect(got).To(HaveKeyWithValue("BaselineAdminNetworkPolicy@", false))
	g.Expect(got).To(HaveKeyWithValue("CiliumNetworkPolicy@shop", false))
	g.Expect(got).To(HaveKeyWithValue("CiliumNetworkPolicy@sandbox", false))
	g.Expect(got).To(HaveKeyWithValue("CiliumClusterwideNetworkPolicy@", false))
	g.Expect(got).To(HaveKeyWithValue("NetworkPolicy@sandbox", false))
	g.Expect(got).To(HaveKeyWithValue("ServerAuthorization@shop", false))
	g.Expect(got).NotTo(HaveKey("ServerAuthorization@sandbox"))
}
