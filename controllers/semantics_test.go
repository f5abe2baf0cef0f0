package controllers_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// Issue 9: profiles that would protect less than they say are refused by the controller too,
// for clusters where the ValidatingAdmissionPolicy of config/admission is not installed.
var _ = Describe("A profile in the mesh root namespace", func() {
	It("stalls naming metadata.namespace, and generates nothing", func() {
		// istio-system is the suite's Istio namespace, and so Istio's root namespace.
		p := profile("istio-system", "root", withDefaultDeny())
		Expect(k8s.Create(ctx, p)).To(Succeed())
		DeferCleanup(func() { Expect(k8s.Delete(ctx, p)).To(Succeed()) })
		Eventually(condition(p, v1alpha1.ConditionStalled)).Should(Equal("True/InvalidSpec"))
		cur := getProfile(p)
		Expect(meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionStalled).Message).To(
			ContainSubstring(`metadata.namespace: Forbidden: a profile cannot govern namespace "istio-system"`))
		Expect(cur.Status.Resources).To(BeEmpty())
	})
})
