package controllers_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

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

// Issue 9, points 6 and 8: the controller lists foreign RequestAuthentications and Linkerd's
// policy objects, with the real CRDs, and reports them.
var _ = Describe("Foreign RequestAuthentications and Linkerd policies", func() {
	externalOf := func(p *v1alpha1.MeshSecurityProfile) map[string]string {
		out := map[string]string{}
		for _, e := range getProfile(p).Status.ExternalPolicies {
			out[e.Kind+"/"+e.Name] = e.Weakens
		}
		return out
	}
	newObject := func(gvk schema.GroupVersionKind, ns, name string, spec map[string]any) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
		u.SetGroupVersionKind(gvk)
		u.SetNamespace(ns)
		u.SetName(name)
		return u
	}

	It("reports a RequestAuthentication trusting another issuer under requireToken", func() {
		ns := newNamespace()
		Expect(k8s.Create(ctx, newObject(schema.GroupVersionKind{Group: "security.istio.io", Version: "v1", Kind: "RequestAuthentication"}, ns, "partner",
			map[string]any{"jwtRules": []any{map[string]any{"issuer": "https://partner.example.org"}}}))).To(Succeed())
		p := profile(ns, "p")
		p.Spec.RequestAuthentication = &v1alpha1.RequestAuthenticationSpec{RequireToken: true,
			Issuers: []v1alpha1.JWTIssuer{{Issuer: "https://auth.example.com"}}}
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionEffective)).Should(Equal("False/Weakened"))
		Expect(externalOf(p)).To(HaveKeyWithValue("RequestAuthentication/partner",
			"requestAuthentication.requireToken: trusts tokens of https://partner.example.org"))
	})

	It("reports a Linkerd Server that opens a port the namespace default denies", func() {
		if !linkerdCRDsInstalled() {
			Skip("Linkerd CRDs not installed (set MESHGUARD_LINKERD_CRDS_CHART)")
		}
		ns := newNamespace()
		Expect(k8s.Create(ctx, newObject(schema.GroupVersionKind{Group: "policy.linkerd.io", Version: "v1beta3", Kind: "Server"}, ns, "admin",
			map[string]any{"podSelector": map[string]any{"matchLabels": map[string]any{"app": "admin"}}, "port": int64(9990), "accessPolicy": "all-unauthenticated"}))).To(Succeed())
		p := profile(ns, "p", withMesh(v1alpha1.MeshLinkerd), withDefaultDeny())
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionEffective)).Should(Equal("False/Weakened"))
		Expect(externalOf(p)).To(HaveKeyWithValue("Server/admin", ContainSubstring("authorization.defaultDeny: accessPolicy all-unauthenticated on port 9990")))
	})
})

// linkerdCRDsInstalled says whether the suite's API server serves Linkerd's Server kind.
func linkerdCRDsInstalled() bool {
	_, err := k8s.RESTMapper().RESTMapping(schema.GroupKind{Group: "policy.linkerd.io", Kind: "Server"}, "v1beta3")
	return err == nil
}
