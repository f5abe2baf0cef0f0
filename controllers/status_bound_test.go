package controllers_test

import (
	"encoding/json"
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

var _ = Describe("A bounded status", func() {
	It("stays under 64 KiB in a namespace with 500 policies of others that weaken the profile", func() {
		ns := newNamespace()
		for i := range 500 {
			allowAll := foreign("AuthorizationPolicy", ns, fmt.Sprintf("team-%03d-allow-all", i), map[string]any{"rules": []any{map[string]any{}}})
			Expect(k8s.Create(ctx, allowAll)).To(Succeed())
		}
		p := profile(ns, "p", withMTLS(v1alpha1.MTLSStrict), withDefaultDeny())
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(func(g Gomega) {
			got := getProfile(p)
			g.Expect(got.Status.Omitted).NotTo(BeNil())
			g.Expect(got.Status.Omitted.ExternalPolicies).To(BeEquivalentTo(500 - len(got.Status.ExternalPolicies)))
		}).Should(Succeed())
		got := getProfile(p)
		Expect(got.Status.ExternalPolicies).NotTo(BeEmpty())
		Expect(condition(p, v1alpha1.ConditionEffective)()).To(Equal("False/Weakened"))
		b, err := json.Marshal(got)
		Expect(err).NotTo(HaveOccurred())
		Expect(len(b)).To(BeNumerically("<", 64*1024), "the whole profile, as stored and watched")
	})
})
