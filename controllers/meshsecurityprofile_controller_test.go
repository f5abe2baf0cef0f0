package controllers_test

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

var (
	gvkPA = schema.GroupVersionKind{Group: "security.istio.io", Version: "v1", Kind: "PeerAuthentication"}
	gvkAP = schema.GroupVersionKind{Group: "security.istio.io", Version: "v1", Kind: "AuthorizationPolicy"}
	gvkNP = schema.GroupVersionKind{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicy"}
)

func child(gvk schema.GroupVersionKind, ns, name string) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u)
	return u, err
}

// liveMTLSMode polls spec.mtls.mode of a PeerAuthentication (or the read error).
func liveMTLSMode(ns, name string) func() string {
	return func() string {
		pa, err := child(gvkPA, ns, name)
		if err != nil {
			return err.Error()
		}
		m, _, _ := unstructured.NestedString(pa.Object, "spec", "mtls", "mode")
		return m
	}
}

func getProfile(p *v1alpha1.MeshSecurityProfile) *v1alpha1.MeshSecurityProfile {
	out := &v1alpha1.MeshSecurityProfile{}
	Expect(k8s.Get(ctx, client.ObjectKeyFromObject(p), out)).To(Succeed())
	return out
}

// condition returns "<status>/<reason>" of a condition of the profile, once the status describes
// the current generation, or "" before that.
func condition(p *v1alpha1.MeshSecurityProfile, t string) func() string {
	return func() string {
		cur := getProfile(p)
		if cur.Status.ObservedGeneration != cur.Generation {
			return ""
		}
		c := meta.FindStatusCondition(cur.Status.Conditions, t)
		if c == nil {
			return "absent"
		}
		if c.ObservedGeneration != cur.Generation {
			return "stale"
		}
		return fmt.Sprintf("%s/%s", c.Status, c.Reason)
	}
}

func resourceState(p *v1alpha1.MeshSecurityProfile, kind, name string) func() string {
	return func() string {
		for _, r := range getProfile(p).Status.Resources {
			if r.Kind == kind && r.Name == name {
				return string(r.State)
			}
		}
		return "absent"
	}
}

var _ = Describe("MeshSecurityProfile reconciliation", func() {
	It("creates every child with its spec, owner and labels, and becomes Ready", func() {
		ns := newNamespace()
		p := profile(ns, "baseline", withMTLS(v1alpha1.MTLSStrict), withDefaultDeny(),
			withAllowFrom("web-reads-api", "frontend/web"),
			withNetworkDefaultDeny(v1alpha1.DirectionIngress, v1alpha1.DirectionEgress), withAllowDNS())
		Expect(k8s.Create(ctx, p)).To(Succeed())

		Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))
		cur := getProfile(p)
		Expect(cur.Status.ObservedGeneration).To(Equal(cur.Generation))
		Expect(meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionStalled)).To(BeNil())
		Expect(meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionReconciling)).To(BeNil())
		Expect(cur.Status.Resources).To(HaveLen(5))
		for _, r := range cur.Status.Resources {
			Expect(r.State).To(Equal(v1alpha1.ResourceInSync), r.Kind+" "+r.Name)
		}

		pa, err := child(gvkPA, ns, "baseline-mtls")
		Expect(err).NotTo(HaveOccurred())
		mode, _, _ := unstructured.NestedString(pa.Object, "spec", "mtls", "mode")
		Expect(mode).To(Equal("STRICT"))
		Expect(pa.GetLabels()).To(HaveKeyWithValue(v1alpha1.LabelManagedBy, "meshguard"))
		Expect(pa.GetLabels()).To(HaveKeyWithValue(v1alpha1.LabelProfile, "baseline"))
		owner := metav1.GetControllerOf(pa)
		Expect(owner).NotTo(BeNil())
		Expect(owner.UID).To(Equal(cur.UID))

		deny, err := child(gvkAP, ns, "baseline-default-deny")
		Expect(err).NotTo(HaveOccurred())
		spec, found, _ := unstructured.NestedMap(deny.Object, "spec")
		Expect(!found || len(spec) == 0).To(BeTrue(), "default deny must be an allow-nothing policy, got %v", spec)

		rule, err := child(gvkAP, ns, "baseline-rule-web-reads-api")
		Expect(err).NotTo(HaveOccurred())
		rules, _, _ := unstructured.NestedSlice(rule.Object, "spec", "rules")
		Expect(fmt.Sprint(rules)).To(ContainSubstring("cluster.local/ns/frontend/sa/web"))

		np := &networkingv1.NetworkPolicy{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "baseline-default-deny"}, np)).To(Succeed())
		Expect(np.Spec.PolicyTypes).To(ConsistOf(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress))
		Expect(np.Spec.Ingress).To(BeEmpty())
		Expect(np.Spec.Egress).To(BeEmpty())
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "baseline-allow-dns"}, np)).To(Succeed())
		Expect(np.Spec.Egress).To(HaveLen(1))
		Expect(np.Spec.Egress[0].Ports).To(HaveLen(2))
	})

	It("updates children on a spec change and prunes the ones no longer wanted", func() {
		ns := newNamespace()
		p := profile(ns, "p", withMTLS(v1alpha1.MTLSStrict), withDefaultDeny(), withAllowFrom("a", "x/y"))
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))
		_, err := child(gvkAP, ns, "p-rule-a")
		Expect(err).NotTo(HaveOccurred())

		cur := getProfile(p)
		cur.Spec.MTLS.Mode = v1alpha1.MTLSPermissive
		cur.Spec.Authorization.Rules = nil
		Expect(k8s.Update(ctx, cur)).To(Succeed())

		Eventually(liveMTLSMode(ns, "p-mtls")).Should(Equal("PERMISSIVE"))
		Eventually(func() bool {
			_, err := child(gvkAP, ns, "p-rule-a")
			return apierrors.IsNotFound(err)
		}).Should(BeTrue(), "the rule's AuthorizationPolicy is pruned")
		_, err = child(gvkAP, ns, "p-default-deny")
		Expect(err).NotTo(HaveOccurred(), "objects still wanted are kept")
		Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))
		Expect(getProfile(p).Status.Resources).To(HaveLen(2))
	})

	It("leaves a same-named object it does not own untouched and reports a conflict", func() {
		ns := newNamespace()
		theirs := &unstructured.Unstructured{}
		theirs.SetGroupVersionKind(gvkPA)
		theirs.SetNamespace(ns)
		theirs.SetName("p-mtls")
		Expect(unstructured.SetNestedField(theirs.Object, "PERMISSIVE", "spec", "mtls", "mode")).To(Succeed())
		Expect(k8s.Create(ctx, theirs)).To(Succeed())

		p := profile(ns, "p", withMTLS(v1alpha1.MTLSStrict), withNetworkDefaultDeny(v1alpha1.DirectionIngress))
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionPoliciesApplied)).Should(Equal("False/Conflict"))
		Expect(condition(p, v1alpha1.ConditionReady)()).To(Equal("False/Conflict"))
		Expect(resourceState(p, "PeerAuthentication", "p-mtls")()).To(Equal("Conflict"))

		pa, err := child(gvkPA, ns, "p-mtls")
		Expect(err).NotTo(HaveOccurred())
		mode, _, _ := unstructured.NestedString(pa.Object, "spec", "mtls", "mode")
		Expect(mode).To(Equal("PERMISSIVE"), "their object is not overwritten")
		Expect(metav1.GetControllerOf(pa)).To(BeNil())
		_, err = child(gvkNP, ns, "p-default-deny")
		Expect(err).NotTo(HaveOccurred(), "the rest is applied")

		By("adopting it when the profile says so")
		cur := getProfile(p)
		cur.Spec.AdoptExisting = true
		Expect(k8s.Update(ctx, cur)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))
		pa, err = child(gvkPA, ns, "p-mtls")
		Expect(err).NotTo(HaveOccurred())
		mode, _, _ = unstructured.NestedString(pa.Object, "spec", "mtls", "mode")
		Expect(mode).To(Equal("STRICT"))
		Expect(metav1.GetControllerOf(pa).UID).To(Equal(cur.UID))
	})

	It("writes nothing in Audit mode and reports what is missing", func() {
		ns := newNamespace()
		p := profile(ns, "p", withAudit(), withMTLS(v1alpha1.MTLSStrict), withNetworkDefaultDeny(v1alpha1.DirectionIngress))
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionPoliciesApplied)).Should(Equal("False/AuditOnly"))
		Expect(condition(p, v1alpha1.ConditionInSync)()).To(Equal("False/Missing"))
		Expect(resourceState(p, "PeerAuthentication", "p-mtls")()).To(Equal("Missing"))
		Expect(resourceState(p, "NetworkPolicy", "p-default-deny")()).To(Equal("Missing"))
		Consistently(func() bool {
			_, err := child(gvkPA, ns, "p-mtls")
			return apierrors.IsNotFound(err)
		}, "1s").Should(BeTrue())
		var nps networkingv1.NetworkPolicyList
		Expect(k8s.List(ctx, &nps, client.InNamespace(ns))).To(Succeed())
		Expect(nps.Items).To(BeEmpty())
	})

	It("never copies Argo CD tracking metadata or the profile's labels to children", func() {
		ns := newNamespace()
		p := profile(ns, "p", withMTLS(v1alpha1.MTLSStrict),
			withLabels(map[string]string{"app.kubernetes.io/instance": "shop-security", "team": "blue"}),
			withAnnotations(map[string]string{"argocd.argoproj.io/tracking-id": "shop:security.meshguard.dev/MeshSecurityProfile:shop/p"}))
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))
		pa, err := child(gvkPA, ns, "p-mtls")
		Expect(err).NotTo(HaveOccurred())
		Expect(pa.GetLabels()).NotTo(HaveKey("app.kubernetes.io/instance"))
		Expect(pa.GetLabels()).NotTo(HaveKey("team"))
		for k := range pa.GetAnnotations() {
			Expect(k).NotTo(HavePrefix("argocd.argoproj.io/"))
		}
	})

	It("lets the oldest profile govern a namespace and reports a conflict on the others", func() {
		ns := newNamespace()
		first := profile(ns, "first", withMTLS(v1alpha1.MTLSStrict))
		Expect(k8s.Create(ctx, first)).To(Succeed())
		Eventually(condition(first, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))
		second := profile(ns, "second", withMTLS(v1alpha1.MTLSDisable))
		Expect(k8s.Create(ctx, second)).To(Succeed())
		Eventually(condition(second, v1alpha1.ConditionStalled)).Should(Equal("True/ProfileConflict"))
		Expect(condition(second, v1alpha1.ConditionReady)()).To(Equal("False/ProfileConflict"))
		_, err := child(gvkPA, ns, "second-mtls")
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the newer profile generates nothing")

		By("handing over when the governing profile is deleted")
		Expect(k8s.Delete(ctx, first)).To(Succeed())
		Eventually(condition(second, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))
		_, err = child(gvkPA, ns, "second-mtls")
		Expect(err).NotTo(HaveOccurred())
	})
})

var _ = Describe("Drift", func() {
	It("restores an edited child in Enforce mode and records the correction", func() {
		ns := newNamespace()
		p := profile(ns, "p", withMTLS(v1alpha1.MTLSStrict))
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))

		pa, err := child(gvkPA, ns, "p-mtls")
		Expect(err).NotTo(HaveOccurred())
		Expect(unstructured.SetNestedField(pa.Object, "PERMISSIVE", "spec", "mtls", "mode")).To(Succeed())
		Expect(k8s.Update(ctx, pa, client.FieldOwner("kubectl-edit"))).To(Succeed())

		Eventually(liveMTLSMode(ns, "p-mtls")).Should(Equal("STRICT"))
		Eventually(func() string {
			for _, r := range getProfile(p).Status.Resources {
				if r.Name == "p-mtls" && r.LastCorrected != nil {
					return r.LastCorrection
				}
			}
			return ""
		}).Should(ContainSubstring("spec.mtls.mode: STRICT → PERMISSIVE"))
	})

	It("recreates a deleted child", func() {
		ns := newNamespace()
		p := profile(ns, "p", withNetworkDefaultDeny(v1alpha1.DirectionIngress))
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))
		np := &networkingv1.NetworkPolicy{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "p-default-deny"}, np)).To(Succeed())
		oldUID := np.UID
		Expect(k8s.Delete(ctx, np)).To(Succeed())
		Eventually(func() bool {
			np := &networkingv1.NetworkPolicy{}
			err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "p-default-deny"}, np)
			return err == nil && np.UID != oldUID
		}).Should(BeTrue())
	})

	It("only reports drift in Audit mode", func() {
		ns := newNamespace()
		p := profile(ns, "p", withMTLS(v1alpha1.MTLSStrict))
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))
		cur := getProfile(p)
		cur.Spec.Enforcement = v1alpha1.EnforcementAudit
		Expect(k8s.Update(ctx, cur)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionPoliciesApplied)).Should(Equal("True/AuditOnly"))

		pa, err := child(gvkPA, ns, "p-mtls")
		Expect(err).NotTo(HaveOccurred())
		Expect(unstructured.SetNestedField(pa.Object, "DISABLE", "spec", "mtls", "mode")).To(Succeed())
		Expect(k8s.Update(ctx, pa, client.FieldOwner("auditor-test"))).To(Succeed())

		Eventually(condition(p, v1alpha1.ConditionInSync)).Should(Equal("False/Drifted"))
		Expect(resourceState(p, "PeerAuthentication", "p-mtls")()).To(Equal("Drifted"))
		Expect(getProfile(p).Status.Resources).To(ContainElement(HaveField("Message",
			And(ContainSubstring("spec.mtls.mode: STRICT → DISABLE"), ContainSubstring(`"auditor-test"`)))), "the drifted field and who wrote it")
		Consistently(func() string {
			pa, _ := child(gvkPA, ns, "p-mtls")
			m, _, _ := unstructured.NestedString(pa.Object, "spec", "mtls", "mode")
			return m
		}, "1s").Should(Equal("DISABLE"))
	})
})

var _ = Describe("A profile the API server accepts but render refuses", func() {
	It("stalls with a message naming the field, without a retry loop", func() {
		ns := newNamespace()
		p := profile(ns, "p", withNetworkDefaultDeny(v1alpha1.DirectionEgress))
		// The CRD cannot tell that two overrides may select one pod (a CEL rule for it exceeds the
		// API server's cost budget); render fails closed on it, since Istio would apply only the
		// oldest of the two PeerAuthentications.
		p.Spec.MTLS = &v1alpha1.MTLSSpec{Mode: v1alpha1.MTLSStrict, Overrides: []v1alpha1.MTLSOverride{
			{Name: "db", Selector: v1alpha1.WorkloadSelector{MatchLabels: map[string]string{"app": "db"}}, Mode: v1alpha1.MTLSPermissive},
			{Name: "metrics", Selector: v1alpha1.WorkloadSelector{MatchLabels: map[string]string{"tier": "metrics"}}, Mode: v1alpha1.MTLSDisable},
		}}
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionStalled)).Should(Equal("True/InvalidSpec"))
		cur := getProfile(p)
		Expect(meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionStalled).Message).To(ContainSubstring("spec.mtls.overrides[1].selector"))
		Expect(condition(p, v1alpha1.ConditionReady)()).To(Equal("False/InvalidSpec"))
		Expect(meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionReconciling)).To(BeNil())
		rv := cur.ResourceVersion
		Consistently(func() string { return getProfile(p).ResourceVersion }, "2s").Should(Equal(rv), "no status churn: the terminal error is not retried")
		var nps networkingv1.NetworkPolicyList
		Expect(k8s.List(ctx, &nps, client.InNamespace(ns))).To(Succeed())
		Expect(nps.Items).To(BeEmpty(), "nothing half-applied")
	})
})
