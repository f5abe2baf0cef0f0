package controllers

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/effective"
	"github.com/meshguard/meshguard/internal/explain"
)

func TestParseLinkerdValues(t *testing.T) {
	g := NewWithT(t)
	f, err := parseLinkerdValues("clusterDomain: cluster.local\nclusterNetworks: \"10.0.0.0/8, 198.18.0.0/15\"\nproxy:\n  defaultInboundPolicy: cluster-unauthenticated\n")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f.clusterNetworks).To(Equal([]string{"10.0.0.0/8", "198.18.0.0/15"}))
	g.Expect(f.defaultInboundPolicy).To(Equal("cluster-unauthenticated"))

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

// A pod the expectation's labels select that has no proxy is answered as an unmeshed destination:
// the mesh's Deny does not apply to it, so want Denied is not met, and the pod is named.
func TestUncoveredDestinations(t *testing.T) {
	g := NewWithT(t)
	p := &v1alpha1.MeshSecurityProfile{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "shop"}}
	p.Spec.Mesh = v1alpha1.MeshIstio
	x := v1alpha1.Expectation{Name: "outside-denied", From: v1alpha1.ExpectationSource{IPBlock: "203.0.113.10"},
		To: v1alpha1.ExpectationTarget{PodLabels: map[string]string{"app": "legacy"}, Port: 8080}, Want: v1alpha1.ExpectDenied}
	p.Spec.Expectations = []v1alpha1.Expectation{x}
	// An allow-nothing AuthorizationPolicy: the mesh denies; no NetworkPolicy.
	ap := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{}}}
	ap.SetGroupVersionKind(schema.GroupVersionKind{Group: "security.istio.io", Version: "v1", Kind: "AuthorizationPolicy"})
	ap.SetNamespace("shop")
	ap.SetName("deny-all")
	objs := []*unstructured.Unstructured{ap}
	denied := []v1alpha1.ExpectationStatus{{Name: x.Name, Want: x.Want, Got: v1alpha1.DecisionDenied, Met: true}}
	meshed := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "legacy-1", Namespace: "shop", Labels: map[string]string{"app": "legacy"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}, {Name: "istio-proxy"}}}}
	plain := *meshed.DeepCopy()
	plain.Name = "legacy-2"
	plain.Spec.Containers = plain.Spec.Containers[:1]
	other := *plain.DeepCopy()
	other.Name, other.Labels = "web-1", map[string]string{"app": "web"}

	g.Expect(uncoveredDestinations(p, clone(denied), []corev1.Pod{meshed, other}, objs, explain.Options{})).To(Equal(denied),
		"covered pods, and uncovered pods the expectation does not select, change nothing")

	got := uncoveredDestinations(p, clone(denied), []corev1.Pod{meshed, plain}, objs, explain.Options{})
	g.Expect(got[0].Met).To(BeFalse())
	g.Expect(got[0].Got).To(Equal(v1alpha1.DecisionAllowed))
	g.Expect(got[0].DecidedBy).To(Equal([]string{"Pod shop/legacy-2"}))
	g.Expect(got[0].Message).To(ContainSubstring("no istio-proxy container"))

	excluded := *meshed.DeepCopy()
	excluded.Annotations = map[string]string{"traffic.sidecar.istio.io/excludeInboundPorts": "8080"}
	got = uncoveredDestinations(p, clone(denied), []corev1.Pod{excluded}, objs, explain.Options{})
	g.Expect(got[0].Met).To(BeFalse(), "a port that skips the proxy is not covered either")
}

func clone(in []v1alpha1.ExpectationStatus) []v1alpha1.ExpectationStatus {
	return append([]v1alpha1.ExpectationStatus(nil), in...)
}
