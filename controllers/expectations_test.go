package controllers_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// withExpectation adds an expectation that a pod of namespace from (service account web, labels
// app=web) gets want on app=api:8080.
func withExpectation(name, from string, want v1alpha1.ExpectedDecision) profileOption {
	return func(p *v1alpha1.MeshSecurityProfile) {
		p.Spec.Expectations = append(p.Spec.Expectations, v1alpha1.Expectation{
			Name: name, Want: want,
			From: v1alpha1.ExpectationSource{ServiceAccount: v1alpha1.ServiceAccountRef(from + "/web"), PodLabels: map[string]string{"app": "web"}},
			To:   v1alpha1.ExpectationTarget{PodLabels: map[string]string{"app": "api"}, Port: 8080},
		})
	}
}

// expectationsMessage is the ExpectationsMet condition's message.
func expectationsMessage(p *v1alpha1.MeshSecurityProfile) func() string {
	return func() string {
		c := meta.FindStatusCondition(getProfile(p).Status.Conditions, v1alpha1.ConditionExpectationsMet)
		if c == nil {
			return ""
		}
		return c.Message
	}
}

var _ = Describe("Expectations", func() {
	It("are answered in status against the profile's own policies", func() {
		ns := newNamespace()
		p := profile(ns, "p", withDefaultDeny(), withAllowFrom("web", "frontend/web"),
			withExpectation("web-to-api", "frontend", v1alpha1.ExpectAllowed),
			withExpectation("others-to-api", "other", v1alpha1.ExpectDenied))
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionExpectationsMet)).Should(Equal("True/AllMet"))
		Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))
		got := getProfile(p)
		Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
		Expect(got.Status.Expectations).To(HaveLen(2))
		Expect([]any{got.Status.Expectations[0].Name, got.Status.Expectations[0].Got, got.Status.Expectations[0].Met}).To(Equal([]any{"web-to-api", v1alpha1.DecisionAllowed, true}))
		Expect(got.Status.Expectations[1].Got).To(Equal(v1alpha1.DecisionDenied))
		Expect(got.Status.Expectations[1].Layer).To(Equal("authorization"))
		Expect(got.Status.Expectations[1].DecidedBy).NotTo(ContainElement(HaveSuffix("(foreign)")))

		By("reporting an expectation added later, at the new generation")
		cur := getProfile(p)
		withExpectation("wrong", "other", v1alpha1.ExpectAllowed)(cur)
		Expect(k8s.Update(ctx, cur)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionExpectationsMet)).Should(Equal("False/ExpectationNotMet"))
		Expect(expectationsMessage(p)()).To(HavePrefix("expectation wrong wants Allowed, got Denied"))
		Expect(condition(p, v1alpha1.ConditionReady)()).To(Equal("False/ExpectationNotMet"))
		Expect(getProfile(p).Status.ObservedGeneration).To(Equal(int64(2)))
	})

	It("turn the profile not Ready while a foreign AuthorizationPolicy opens a flow expected Denied, and Ready again once it is gone", func() {
		ns := newNamespace()
		p := profile(ns, "p", withDefaultDeny(), withAllowFrom("web", "frontend/web"),
			withExpectation("others-to-api", "other", v1alpha1.ExpectDenied))
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))

		open := foreign("AuthorizationPolicy", ns, "open-api", map[string]any{
			"selector": map[string]any{"matchLabels": map[string]any{"app": "api"}},
			"rules":    []any{map[string]any{"from": []any{map[string]any{"source": map[string]any{"namespaces": []any{"other"}}}}}},
		})
		Expect(k8s.Create(ctx, open)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionExpectationsMet)).Should(Equal("False/ExpectationNotMet"))
		Expect(expectationsMessage(p)()).To(ContainSubstring("expectation others-to-api wants Denied, got Allowed (decided by AuthorizationPolicy " + ns + "/open-api[0] (foreign) at the authorization layer"))
		Expect(condition(p, v1alpha1.ConditionReady)()).To(Equal("False/ExpectationNotMet"))
		st := getProfile(p).Status.Expectations
		Expect(st).To(HaveLen(1))
		Expect(st[0].Met).To(BeFalse())
		Expect(st[0].DecidedBy).To(HaveExactElements("AuthorizationPolicy " + ns + "/open-api[0] (foreign)"))

		By("becoming Ready again once it is removed")
		Expect(k8s.Delete(ctx, open)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionExpectationsMet)).Should(Equal("True/AllMet"))
		Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))
	})

	It("turn the profile not Ready while a foreign NetworkPolicy opens a flow expected Denied", func() {
		ns := newNamespace()
		p := profile(ns, "p", withMTLS(v1alpha1.MTLSStrict), withNetworkDefaultDeny(v1alpha1.DirectionIngress),
			withExpectation("others-to-api", "other", v1alpha1.ExpectDenied))
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionExpectationsMet)).Should(Equal("True/AllMet"))
		Expect(getProfile(p).Status.Expectations[0].Layer).To(Equal("ingress NetworkPolicy"))

		open := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "open-api"},
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}},
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
				Ingress:     []networkingv1.NetworkPolicyIngressRule{{}}}}
		Expect(k8s.Create(ctx, open)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionExpectationsMet)).Should(Equal("False/ExpectationNotMet"))
		Expect(expectationsMessage(p)()).To(ContainSubstring("decided by NetworkPolicy " + ns + "/open-api[0] (foreign) at the ingress NetworkPolicy layer"))
		Expect(condition(p, v1alpha1.ConditionReady)()).To(Equal("False/ExpectationNotMet"))

		Expect(k8s.Delete(ctx, open)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))
		Expect(condition(p, v1alpha1.ConditionExpectationsMet)()).To(Equal("True/AllMet"))
	})
})
