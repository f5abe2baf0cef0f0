package controllers_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// withDenyRule adds a Deny rule for DELETE requests to app=api, in shadow or enforced.
func withDenyRule(name string, enforcement v1alpha1.RuleEnforcement) profileOption {
	return func(p *v1alpha1.MeshSecurityProfile) {
		if p.Spec.Authorization == nil {
			p.Spec.Authorization = &v1alpha1.AuthorizationSpec{}
		}
		p.Spec.Authorization.Rules = append(p.Spec.Authorization.Rules, v1alpha1.AuthorizationRule{
			Name: name, Action: v1alpha1.ActionDeny, Enforcement: enforcement,
			Selector: &v1alpha1.WorkloadSelector{MatchLabels: map[string]string{"app": "api"}},
			To:       &v1alpha1.RuleTarget{Methods: []string{"DELETE"}, Ports: []int32{8080}},
		})
	}
}

// dryRunPolicies lists the names of the namespace's AuthorizationPolicies marked istio.io/dry-run.
func dryRunPolicies(ns string) func() []string {
	return func() []string {
		l := &unstructured.UnstructuredList{}
		l.SetGroupVersionKind(gvkAP.GroupVersion().WithKind("AuthorizationPolicyList"))
		if err := k8s.List(ctx, l, client.InNamespace(ns)); err != nil {
			return []string{err.Error()}
		}
		var out []string
		for _, u := range l.Items {
			if u.GetAnnotations()["istio.io/dry-run"] == "true" {
				out = append(out, u.GetName())
			}
		}
		return out
	}
}

var _ = Describe("Rules in shadow", func() {
	It("a profile with one shadow rule among enforced rules is Ready with exactly one dry-run object, listed in status", func() {
		ns := newNamespace()
		p := profile(ns, "p", withDefaultDeny(), withAllowFrom("web", "frontend/web"),
			withDenyRule("no-deletes", v1alpha1.RuleEnforcementShadow), withDenyRule("no-deletes-enforced", ""))
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))
		Expect(dryRunPolicies(ns)()).To(Equal([]string{"p-rule-no-deletes"}))
		got := getProfile(p)
		Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
		Expect(got.Status.ShadowRules).To(Equal([]string{"no-deletes"}))

		By("enforcing the rule: the annotation goes, and status lists nothing in shadow")
		cur := getProfile(p)
		cur.Spec.Authorization.Rules[1].Enforcement = v1alpha1.RuleEnforcementEnforce
		Expect(k8s.Update(ctx, cur)).To(Succeed())
		Eventually(dryRunPolicies(ns)).Should(BeEmpty())
		Eventually(func() []string { return getProfile(p).Status.ShadowRules }).Should(BeEmpty())
		Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))
	})

	It("the whole authorization in shadow marks the default deny and every rule dry-run", func() {
		ns := newNamespace()
		p := profile(ns, "p", withDefaultDeny(), withAllowFrom("web", "frontend/web"))
		p.Spec.Authorization.Enforcement = v1alpha1.RuleEnforcementShadow
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))
		Expect(dryRunPolicies(ns)()).To(ConsistOf("p-default-deny", "p-rule-web"))
		Expect(getProfile(p).Status.ShadowRules).To(Equal([]string{"default-deny", "web"}))
	})

	It("an Allow rule in shadow is refused by the API server, naming the field", func() {
		ns := newNamespace()
		p := profile(ns, "p", withDefaultDeny(), withAllowFrom("web", "frontend/web"))
		p.Spec.Authorization.Rules[0].Enforcement = v1alpha1.RuleEnforcementShadow
		err := k8s.Create(ctx, p)
		Expect(err).To(MatchError(ContainSubstring("spec.authorization.rules[0].enforcement")))
		Expect(err).To(MatchError(ContainSubstring("enforcement Shadow is for Deny rules")))
	})
})
