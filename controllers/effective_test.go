package controllers_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"sigs.k8s.io/controller-runtime/pkg/metrics"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

func foreign(gvkKind string, ns, name string, spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	switch gvkKind {
	case "PeerAuthentication":
		u.SetGroupVersionKind(gvkPA)
	case "AuthorizationPolicy":
		u.SetGroupVersionKind(gvkAP)
	}
	u.SetNamespace(ns)
	u.SetName(name)
	return u
}

var _ = Describe("Policies that undercut the profile", func() {
	It("reports each kind of weakening object, leaves it alone, and is not Ready", func() {
		ns := newNamespace()
		legacy := foreign("PeerAuthentication", ns, "legacy-permissive", map[string]any{
			"selector": map[string]any{"matchLabels": map[string]any{"app": "legacy"}},
			"mtls":     map[string]any{"mode": "PERMISSIVE"},
		})
		Expect(k8s.Create(ctx, legacy)).To(Succeed())
		allowAll := foreign("AuthorizationPolicy", ns, "allow-all", map[string]any{"rules": []any{map[string]any{}}})
		Expect(k8s.Create(ctx, allowAll)).To(Succeed())
		open := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "open-ingress"},
			Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
				Ingress: []networkingv1.NetworkPolicyIngressRule{{}}}}
		Expect(k8s.Create(ctx, open)).To(Succeed())

		p := profile(ns, "p", withMTLS(v1alpha1.MTLSStrict), withDefaultDeny(), withNetworkDefaultDeny(v1alpha1.DirectionIngress))
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionEffective)).Should(Equal("False/Weakened"))
		Expect(condition(p, v1alpha1.ConditionReady)()).To(Equal("False/Weakened"))
		ext := getProfile(p).Status.ExternalPolicies
		names := map[string]string{}
		for _, e := range ext {
			names[e.Kind+"/"+e.Name] = e.Weakens
		}
		Expect(names).To(HaveKeyWithValue("PeerAuthentication/legacy-permissive", ContainSubstring("mtls.mode Strict")))
		Expect(names).To(HaveKeyWithValue("AuthorizationPolicy/allow-all", ContainSubstring("authorization.defaultDeny")))
		Expect(names).To(HaveKeyWithValue("NetworkPolicy/open-ingress", ContainSubstring("networkPolicy.defaultDeny Ingress")))
		Expect(weakening(ns, "p")).To(BeEquivalentTo(3), "meshguard_external_policies_weakening counts them for the alert")

		live, err := child(gvkPA, ns, "legacy-permissive")
		Expect(err).NotTo(HaveOccurred())
		mode, _, _ := unstructured.NestedString(live.Object, "spec", "mtls", "mode")
		Expect(mode).To(Equal("PERMISSIVE"), "never modified")
		Expect(metav1.GetControllerOf(live)).To(BeNil())

		By("becoming effective once they are gone")
		Expect(k8s.Delete(ctx, legacy)).To(Succeed())
		Expect(k8s.Delete(ctx, allowAll)).To(Succeed())
		Expect(k8s.Delete(ctx, open)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))
		Expect(getProfile(p).Status.ExternalPolicies).To(BeEmpty())
		Expect(weakening(ns, "p")).To(BeZero())
	})

	It("does not report a stricter foreign policy", func() {
		ns := newNamespace()
		Expect(k8s.Create(ctx, foreign("PeerAuthentication", ns, "db-strict", map[string]any{
			"selector": map[string]any{"matchLabels": map[string]any{"app": "db"}},
			"mtls":     map[string]any{"mode": "STRICT"},
		}))).To(Succeed())
		p := profile(ns, "p", withMTLS(v1alpha1.MTLSPermissive))
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))
		Expect(condition(p, v1alpha1.ConditionEffective)()).To(Equal("True/NotWeakened"))
		Expect(getProfile(p).Status.ExternalPolicies).To(BeEmpty())
	})
})

// weakening reads the gauge meshguard_external_policies_weakening of a profile (-1 when absent).
func weakening(ns, profile string) float64 {
	fams, err := metrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	for _, f := range fams {
		if f.GetName() != "meshguard_external_policies_weakening" {
			continue
		}
		for _, m := range f.GetMetric() {
			if labelsMatch(m, map[string]string{"namespace": ns, "profile": profile}) {
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}
