package controllers_test

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/controllers"
)

// Issue 18 part 1 and 4, issue 22 item 1, on the real API server (audit semantics-audit-3 F1, F3,
// and the two bugs of "one profile in scope after the merge").

func floorCeiling(cidr string, except ...string) floorOption {
	return func(c *v1alpha1.ClusterMeshSecurityProfile) {
		c.Spec.Ceilings = &v1alpha1.FloorCeilings{DeniedIngressFrom: []v1alpha1.IPBlock{{CIDR: cidr, Except: except}}}
	}
}

func floorTrustDomain(td string) floorOption {
	return func(c *v1alpha1.ClusterMeshSecurityProfile) { c.Spec.TrustDomain = td }
}

func baselineMessage(p *v1alpha1.MeshSecurityProfile) func() string {
	return func() string {
		c := meta.FindStatusCondition(getProfile(p).Status.Conditions, v1alpha1.ConditionBaseline)
		if c == nil {
			return ""
		}
		return c.Message
	}
}

var _ = Describe("A floor that is a floor", func() {
	It("keeps the floor's own objects until every object of the team profile that replaces them is applied (F3)", func() {
		name := floorName()
		floor := clusterProfile(name, floorMTLS(v1alpha1.MTLSStrict), floorBaseline())
		Expect(k8s.Create(ctx, floor)).To(Succeed())
		DeferCleanup(deleteFloor, floor)
		ns := newNamespace()
		labelNamespace(ns, name)
		owner := "ClusterMeshSecurityProfile/" + name
		Eventually(controlledBy(gvkAP, ns, name+"-default-deny")).Should(Equal(owner))

		By("someone creating an allow-all policy under the name the team's default deny will take")
		squat := &unstructured.Unstructured{}
		squat.SetGroupVersionKind(gvkAP)
		squat.SetNamespace(ns)
		squat.SetName("team-default-deny")
		Expect(unstructured.SetNestedSlice(squat.Object, []any{map[string]any{}}, "spec", "rules")).To(Succeed())
		Expect(unstructured.SetNestedField(squat.Object, "ALLOW", "spec", "action")).To(Succeed())
		Expect(k8s.Create(ctx, squat)).To(Succeed())

		By("creating the team profile: its default deny is in Conflict, so the floor's stays")
		p := profile(ns, "team", withMTLS(v1alpha1.MTLSStrict), withDefaultDeny())
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(func() string {
			for _, r := range getProfile(p).Status.Resources {
				if r.Kind == "AuthorizationPolicy" && r.Name == "team-default-deny" {
					return string(r.State)
				}
			}
			return ""
		}).Should(Equal(string(v1alpha1.ResourceConflict)))
		Eventually(baselineMessage(p)).Should(ContainSubstring("the floor's own objects of the namespace stay until every object of this profile is applied: AuthorizationPolicy team-default-deny is Conflict"))
		Consistently(controlledBy(gvkAP, ns, name+"-default-deny"), 3*time.Second).Should(Equal(owner), "the floor's default deny must outlive the team's conflict")
		Expect(controlledBy(gvkPA, ns, name+"-mtls")()).To(Equal(owner))

		By("removing the squatter: the team's objects apply and only then do the floor's go")
		Expect(k8s.Delete(ctx, squat)).To(Succeed())
		Eventually(controlledBy(gvkAP, ns, "team-default-deny")).Should(Equal("MeshSecurityProfile/team"))
		Eventually(controlledBy(gvkAP, ns, name+"-default-deny")).Should(Equal("absent"))
		Eventually(controlledBy(gvkPA, ns, name+"-mtls")).Should(Equal("absent"))
		Eventually(baselineMessage(p)).ShouldNot(ContainSubstring("stay until"))
	})

	It("denies what its ceiling forbids in the mesh, holds the team's NetworkPolicy rule that opens it, and reports what the team opens under its default deny (F1)", func() {
		name := floorName()
		floor := clusterProfile(name, floorMTLS(v1alpha1.MTLSStrict), floorBaseline(), floorCeiling("0.0.0.0/0", "10.0.0.0/8"))
		Expect(k8s.Create(ctx, floor)).To(Succeed())
		DeferCleanup(deleteFloor, floor)
		ns := newNamespace()
		labelNamespace(ns, name)

		p := profile(ns, "team", withMTLS(v1alpha1.MTLSStrict), withDefaultDeny(), withNetworkDefaultDeny(v1alpha1.DirectionIngress, v1alpha1.DirectionEgress), withAllowDNS())
		p.Spec.Authorization.Rules = []v1alpha1.AuthorizationRule{{Name: "anyone", From: &v1alpha1.RuleSource{IPBlocks: []string{"0.0.0.0/0"}}}}
		p.Spec.NetworkPolicy.Ingress = []v1alpha1.IngressRule{
			{Name: "internet", From: []v1alpha1.NetworkPeer{{IPBlock: &v1alpha1.IPBlock{CIDR: "0.0.0.0/0"}}}},
			{Name: "office", From: []v1alpha1.NetworkPeer{{IPBlock: &v1alpha1.IPBlock{CIDR: "10.1.0.0/16"}}}},
		}
		Expect(k8s.Create(ctx, p)).To(Succeed())

		Eventually(condition(p, v1alpha1.ConditionBaseline)).Should(Equal("False/" + v1alpha1.ReasonBelowBaseline))
		cur := getProfile(p)
		Expect(cur.Status.HeldAtFloor).To(ContainElement(v1alpha1.FloorHold{
			Field: "spec.networkPolicy.ingress[name=internet]", Asked: "from ipBlock 0.0.0.0/0",
			HeldAt: "not generated: ceilings.deniedIngressFrom 0.0.0.0/0 except 10.0.0.0/8", ClusterProfile: name,
		}))
		Expect(cur.Status.OpenedUnderFloor).To(ConsistOf(
			HaveField("Field", "spec.authorization.rules[name=anyone]"),
			HaveField("Field", "spec.networkPolicy.ingress[name=office]"),
		))
		Eventually(controlledBy(gvkAP, ns, "team-rule-"+name+"-ceiling-0")).Should(Equal("MeshSecurityProfile/team"))
		deny, err := child(gvkAP, ns, "team-rule-"+name+"-ceiling-0")
		Expect(err).NotTo(HaveOccurred())
		Expect(deny.Object["spec"]).To(HaveKeyWithValue("action", "DENY"))
		Expect(fmt.Sprint(deny.Object["spec"])).To(ContainSubstring("notIpBlocks:[10.0.0.0/8]"))
		Expect(controlledBy(gvkNP, ns, "team-ingress-internet")()).To(Equal("absent"), "NetworkPolicy cannot deny: the rule is refused")
		Eventually(controlledBy(gvkNP, ns, "team-ingress-office")).Should(Equal("MeshSecurityProfile/team"))
		Eventually(func() int32 { return getFloor(name).Status.OpenedNamespaces }).Should(Equal(int32(1)))

		By("without the rule past the ceiling, Baseline is True and says what the team opens")
		cur = getProfile(p)
		cur.Spec.NetworkPolicy.Ingress = cur.Spec.NetworkPolicy.Ingress[1:]
		Expect(k8s.Update(ctx, cur)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionBaseline)).Should(Equal("True/" + v1alpha1.ReasonOpensFloorDefaults))
		Expect(baselineMessage(p)()).To(ContainSubstring("2 rules open what the floor's default deny closes"))
	})

	It("merges before every step: a Linkerd profile in Audit under an Enforce floor gets the finalizer that removes the annotations the merge writes (part 4)", func() {
		name := floorName()
		floor := clusterProfile(name, floorMesh(v1alpha1.MeshLinkerd), floorMTLS(v1alpha1.MTLSStrict))
		Expect(k8s.Create(ctx, floor)).To(Succeed())
		DeferCleanup(deleteFloor, floor)
		ns := newNamespace()
		p := profile(ns, "team", withMesh(v1alpha1.MeshLinkerd), withMTLS(v1alpha1.MTLSStrict), withAudit())
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionBaseline)).Should(Equal("True/" + v1alpha1.ReasonNoClusterProfile))
		owner := func() string {
			n := &corev1.Namespace{}
			Expect(k8s.Get(ctx, client.ObjectKey{Name: ns}, n)).To(Succeed())
			return n.Annotations[controllers.AnnotationNamespaceOwner]
		}
		Expect(owner()).To(BeEmpty(), "a profile in Audit alone writes nothing")

		By("the floor selecting the namespace: the merged profile is Enforce and writes the annotations")
		labelNamespace(ns, name)
		Eventually(owner).Should(Equal("team"))
		Eventually(func() []string { return getProfile(p).Finalizers }).Should(ContainElement(controllers.FinalizerNamespaceAnnotations))

		By("deleting the profile removes what meshguard wrote for it; the floor then writes its own")
		Expect(k8s.Delete(ctx, p)).To(Succeed())
		Eventually(owner).Should(Equal(name))
	})

	It("merges before every step: expectations are answered with the merged trust domain (part 4)", func() {
		name := floorName()
		floor := clusterProfile(name, floorTrustDomain("corp.example"))
		Expect(k8s.Create(ctx, floor)).To(Succeed())
		DeferCleanup(deleteFloor, floor)
		ns := newNamespace()
		labelNamespace(ns, name)
		p := profile(ns, "p", withDefaultDeny(), withAllowFrom("web", "frontend/web"),
			withExpectation("web-to-api", "frontend", v1alpha1.ExpectAllowed))
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(func() []string { return getProfile(p).Status.ClusterProfiles }).Should(Equal([]string{name}))
		Eventually(condition(p, v1alpha1.ConditionExpectationsMet)).Should(Equal("True/AllMet"),
			"the rule is rendered for corp.example/ns/frontend/sa/web; asked with cluster.local it would be Denied")
	})
})

var _ = Describe("Floors leave system namespaces alone unless they opt in (issue 22 item 1)", func() {
	It("does not apply a floor to a kube-* namespace its selector chooses, lists it in status, and applies it with includeSystemNamespaces", func() {
		name := floorName()
		floor := clusterProfile(name, floorMTLS(v1alpha1.MTLSStrict), floorBaseline())
		Expect(k8s.Create(ctx, floor)).To(Succeed())
		DeferCleanup(deleteFloor, floor)
		sys := "kube-" + name
		Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: sys, Labels: map[string]string{"floor": name}}})).To(Succeed())
		ns := newNamespace()
		labelNamespace(ns, name)

		Eventually(controlledBy(gvkNP, ns, name+"-default-deny")).Should(Equal("ClusterMeshSecurityProfile/" + name))
		Eventually(func() []string { return getFloor(name).Status.ExcludedSystemNamespaces }).Should(Equal([]string{sys}))
		// The count follows the namespace labelled above: the cluster profile's status may be written
		// once before that label is seen.
		Eventually(func() int32 { return getFloor(name).Status.MatchedNamespaces }).Should(Equal(int32(1)))
		Consistently(controlledBy(gvkNP, sys, name+"-default-deny"), 2*time.Second).Should(Equal("absent"))

		By("opting in")
		cur := getFloor(name)
		cur.Spec.IncludeSystemNamespaces = true
		Expect(k8s.Update(ctx, cur)).To(Succeed())
		Eventually(controlledBy(gvkNP, sys, name+"-default-deny")).Should(Equal("ClusterMeshSecurityProfile/" + name))
		Eventually(func() []string { return getFloor(name).Status.ExcludedSystemNamespaces }).Should(BeEmpty())
	})
})
