package controllers_test

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// floorOption changes a test cluster profile.
type floorOption func(*v1alpha1.ClusterMeshSecurityProfile)

// clusterProfile builds a floor selecting the namespaces labelled floor=<name>, so that the floor of
// one test never reaches the namespaces of another.
func clusterProfile(name string, opts ...floorOption) *v1alpha1.ClusterMeshSecurityProfile {
	c := &v1alpha1.ClusterMeshSecurityProfile{ObjectMeta: metav1.ObjectMeta{Name: name}}
	c.Spec.NamespaceSelector = metav1.LabelSelector{MatchLabels: map[string]string{"floor": name}}
	for _, o := range opts {
		o(c)
	}
	return c
}

func floorMTLS(m v1alpha1.MTLSMode) floorOption {
	return func(c *v1alpha1.ClusterMeshSecurityProfile) { c.Spec.MTLS = &v1alpha1.MTLSSpec{Mode: m} }
}

func floorMesh(m v1alpha1.Mesh) floorOption {
	return func(c *v1alpha1.ClusterMeshSecurityProfile) { c.Spec.Mesh = m }
}

func floorSelects(label string) floorOption {
	return func(c *v1alpha1.ClusterMeshSecurityProfile) {
		c.Spec.NamespaceSelector = metav1.LabelSelector{MatchLabels: map[string]string{"floor": label}}
	}
}

// floorBaseline is the floor: default deny, DNS allowed, Prometheus may scrape.
func floorBaseline() floorOption {
	return func(c *v1alpha1.ClusterMeshSecurityProfile) {
		c.Spec.Authorization = &v1alpha1.AuthorizationSpec{DefaultDeny: true, Rules: []v1alpha1.AuthorizationRule{{
			Name: "prometheus", Action: v1alpha1.ActionAllow,
			From: &v1alpha1.RuleSource{Namespaces: []string{"monitoring"}},
			To:   &v1alpha1.RuleTarget{Methods: []string{"GET"}, Paths: []string{"/metrics"}},
		}}}
		c.Spec.NetworkPolicy = &v1alpha1.NetworkPolicySpec{
			DefaultDeny: []v1alpha1.PolicyDirection{v1alpha1.DirectionIngress, v1alpha1.DirectionEgress},
			AllowDNS:    true,
		}
	}
}

// labelNamespace sets (or, with "", removes) the floor label of a namespace.
func labelNamespace(ns, floor string) {
	cur := &corev1.Namespace{}
	Expect(k8s.Get(ctx, client.ObjectKey{Name: ns}, cur)).To(Succeed())
	before := cur.DeepCopy()
	if cur.Labels == nil {
		cur.Labels = map[string]string{}
	}
	if floor == "" {
		delete(cur.Labels, "floor")
	} else {
		cur.Labels["floor"] = floor
	}
	Expect(k8s.Patch(ctx, cur, client.MergeFrom(before))).To(Succeed())
}

// controlledBy polls which object controls an object: Kind/name, "absent" when it does not exist, ("" when none; the error
// text when it cannot be read).
func controlledBy(gvk schema.GroupVersionKind, ns, name string) func() string {
	return func() string {
		u, err := child(gvk, ns, name)
		if apierrors.IsNotFound(err) {
			return "absent"
		}
		if err != nil {
			return err.Error()
		}
		if c := metav1.GetControllerOf(u); c != nil {
			return c.Kind + "/" + c.Name
		}
		return ""
	}
}

func getFloor(name string) *v1alpha1.ClusterMeshSecurityProfile {
	c := &v1alpha1.ClusterMeshSecurityProfile{}
	Expect(k8s.Get(ctx, client.ObjectKey{Name: name}, c)).To(Succeed())
	return c
}

// floorCounts polls "matched/ready/weakened" of a cluster profile's current status.
func floorCounts(name string) func() string {
	return func() string {
		c := getFloor(name)
		if c.Status.ObservedGeneration != c.Generation {
			return "stale"
		}
		return fmt.Sprintf("%d/%d/%d", c.Status.MatchedNamespaces, c.Status.ReadyNamespaces, c.Status.WeakenedNamespaces)
	}
}

// floorNamespaceState polls the state a cluster profile's status gives a namespace ("" when not listed).
func floorNamespaceState(name, ns string) func() string {
	return func() string {
		for _, n := range getFloor(name).Status.Namespaces {
			if n.Name == ns {
				return string(n.State)
			}
		}
		return ""
	}
}

func deleteFloor(c *v1alpha1.ClusterMeshSecurityProfile) {
	Expect(client.IgnoreNotFound(k8s.Delete(ctx, c))).To(Succeed())
}

// events lists the reasons of the events recorded about an object.
func eventReasons(kind, ns, name string) func() []string {
	return func() []string {
		var list eventsv1.EventList
		Expect(k8s.List(ctx, &list)).To(Succeed())
		var out []string
		for _, e := range list.Items {
			if e.Regarding.Kind == kind && e.Regarding.Name == name && e.Regarding.Namespace == ns {
				out = append(out, e.Reason)
			}
		}
		return out
	}
}

var floorCount int

func floorName() string {
	floorCount++
	return fmt.Sprintf("floor-%d-%d", GinkgoParallelProcess(), floorCount)
}

var _ = Describe("ClusterMeshSecurityProfile: a cluster-wide floor", func() {
	It("gives a namespace labelled to match its floor, owned by the cluster profile, and takes exactly the floor's objects away when the label goes", func() {
		name := floorName()
		floor := clusterProfile(name, floorMTLS(v1alpha1.MTLSStrict), floorBaseline())
		Expect(k8s.Create(ctx, floor)).To(Succeed())
		DeferCleanup(deleteFloor, floor)
		ns := newNamespace()
		// Someone else's policy in the namespace: the floor never touches it.
		Expect(k8s.Create(ctx, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "theirs"},
			Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}})).To(Succeed())

		By("labelling the namespace to match")
		labelNamespace(ns, name)
		owner := "ClusterMeshSecurityProfile/" + name
		Eventually(controlledBy(gvkPA, ns, name+"-mtls")).Should(Equal(owner))
		Eventually(liveMTLSMode(ns, name+"-mtls")).Should(Equal("STRICT"))
		Eventually(controlledBy(gvkAP, ns, name+"-default-deny")).Should(Equal(owner))
		Eventually(controlledBy(gvkAP, ns, name+"-rule-prometheus")).Should(Equal(owner))
		Eventually(controlledBy(gvkNP, ns, name+"-default-deny")).Should(Equal(owner))
		Eventually(controlledBy(gvkNP, ns, name+"-allow-dns")).Should(Equal(owner))
		Eventually(floorCounts(name)).Should(Equal("1/1/0"))
		Expect(meta.IsStatusConditionTrue(getFloor(name).Status.Conditions, v1alpha1.ConditionReady)).To(BeTrue())
		Eventually(eventReasons("ClusterMeshSecurityProfile", "", name)).Should(ContainElement("Created"))

		By("removing the label")
		labelNamespace(ns, "")
		for _, o := range []struct {
			gvk  schema.GroupVersionKind
			name string
		}{{gvkPA, name + "-mtls"}, {gvkAP, name + "-default-deny"}, {gvkAP, name + "-rule-prometheus"}, {gvkNP, name + "-default-deny"}, {gvkNP, name + "-allow-dns"}} {
			Eventually(controlledBy(o.gvk, ns, o.name)).Should(Equal("absent"), "%s %s", o.gvk.Kind, o.name)
		}
		Expect(controlledBy(gvkNP, ns, "theirs")()).To(Equal(""), "an object the floor did not generate stays")
		Eventually(floorCounts(name)).Should(Equal("0/0/0"))
	})

	It("is restored when someone deletes or edits a floor object (drift)", func() {
		name := floorName()
		floor := clusterProfile(name, floorMTLS(v1alpha1.MTLSStrict))
		Expect(k8s.Create(ctx, floor)).To(Succeed())
		DeferCleanup(deleteFloor, floor)
		ns := newNamespace()
		labelNamespace(ns, name)
		Eventually(liveMTLSMode(ns, name+"-mtls")).Should(Equal("STRICT"))

		pa, err := child(gvkPA, ns, name+"-mtls")
		Expect(err).NotTo(HaveOccurred())
		Expect(k8s.Delete(ctx, pa)).To(Succeed())
		Eventually(func() string {
			u, err := child(gvkPA, ns, name+"-mtls")
			if err != nil || u.GetUID() == pa.GetUID() {
				return "not recreated"
			}
			return "recreated"
		}).Should(Equal("recreated"))
		Eventually(eventReasons("ClusterMeshSecurityProfile", "", name)).Should(ContainElement("DriftDetected"))
	})

	It("is carried by a namespace profile that tightens it: one set of objects, owned by the profile", func() {
		name := floorName()
		floor := clusterProfile(name, floorMTLS(v1alpha1.MTLSPermissive), floorBaseline())
		Expect(k8s.Create(ctx, floor)).To(Succeed())
		DeferCleanup(deleteFloor, floor)
		ns := newNamespace()
		labelNamespace(ns, name)
		Eventually(controlledBy(gvkPA, ns, name+"-mtls")).Should(Equal("ClusterMeshSecurityProfile/" + name))

		By("creating a profile that asks for Strict mTLS and allows its own flow")
		p := profile(ns, "team", withMTLS(v1alpha1.MTLSStrict), withDefaultDeny(), withAllowFrom("web", "frontend/web"))
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))
		// Its own Allow rule opens what the floor's default deny closes: applied, and reported.
		Eventually(condition(p, v1alpha1.ConditionBaseline)).Should(Equal("True/" + v1alpha1.ReasonOpensFloorDefaults))
		Expect(getProfile(p).Status.OpenedUnderFloor).To(ConsistOf(HaveField("Field", "spec.authorization.rules[name=web]")))
		Expect(getProfile(p).Status.ClusterProfiles).To(Equal([]string{name}))
		Expect(liveMTLSMode(ns, "team-mtls")()).To(Equal("STRICT"), "the stricter of Permissive (floor) and Strict (team)")
		Expect(controlledBy(gvkAP, ns, "team-rule-"+name+"-prometheus")()).To(Equal("MeshSecurityProfile/team"), "the floor's rule, carried by the profile")
		Expect(controlledBy(gvkAP, ns, "team-rule-web")()).To(Equal("MeshSecurityProfile/team"))
		Expect(controlledBy(gvkNP, ns, "team-allow-dns")()).To(Equal("MeshSecurityProfile/team"))
		Eventually(controlledBy(gvkPA, ns, name+"-mtls")).Should(Equal("absent"), "the floor's own objects are handed over")
		Eventually(controlledBy(gvkNP, ns, name+"-default-deny")).Should(Equal("absent"))
		Eventually(floorCounts(name)).Should(Equal("1/1/0"))

		By("deleting the profile: the floor takes the namespace back")
		Expect(k8s.Delete(ctx, p)).To(Succeed())
		Eventually(controlledBy(gvkPA, ns, name+"-mtls")).Should(Equal("ClusterMeshSecurityProfile/" + name))
		Eventually(liveMTLSMode(ns, name+"-mtls")).Should(Equal("PERMISSIVE"))
	})

	It("holds a namespace profile that asks for less at the floor and says so (BelowBaseline), without making it not Ready", func() {
		name := floorName()
		floor := clusterProfile(name, floorMTLS(v1alpha1.MTLSStrict), floorBaseline())
		Expect(k8s.Create(ctx, floor)).To(Succeed())
		DeferCleanup(deleteFloor, floor)
		ns := newNamespace()
		labelNamespace(ns, name)

		p := profile(ns, "relaxed", withMTLS(v1alpha1.MTLSPermissive), withAllowFrom("anyone", "frontend/web"))
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionBaseline)).Should(Equal("False/BelowBaseline"))
		cur := getProfile(p)
		Expect(cur.Status.HeldAtFloor).To(ConsistOf(
			v1alpha1.FloorHold{Field: "spec.mtls.mode", Asked: "Permissive", HeldAt: "Strict", ClusterProfile: name},
			v1alpha1.FloorHold{Field: "spec.authorization.defaultDeny", Asked: "false", HeldAt: "true", ClusterProfile: name},
		))
		Expect(meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionBaseline).Message).To(ContainSubstring("spec.mtls.mode (asks Permissive, held at Strict by ClusterMeshSecurityProfile " + name + ")"))
		Eventually(liveMTLSMode(ns, "relaxed-mtls")).Should(Equal("STRICT"))
		Eventually(controlledBy(gvkAP, ns, "relaxed-default-deny")).Should(Equal("MeshSecurityProfile/relaxed"))
		Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))
		Eventually(eventReasons("MeshSecurityProfile", ns, "relaxed")).Should(ContainElement(v1alpha1.ReasonBelowBaseline))

		By("editing the generated PeerAuthentication back to what the team asked is drift, restored to the floor")
		pa, err := child(gvkPA, ns, "relaxed-mtls")
		Expect(err).NotTo(HaveOccurred())
		Expect(k8s.Patch(ctx, pa, client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"mtls":{"mode":"PERMISSIVE"}}}`)))).To(Succeed())
		Eventually(liveMTLSMode(ns, "relaxed-mtls")).Should(Equal("STRICT"))
	})

	It("applies nothing new from two cluster profiles on different meshes, and both report the conflict", func() {
		a, b := floorName(), floorName()
		istio := clusterProfile(a, floorMesh(v1alpha1.MeshIstio))
		linkerd := clusterProfile(b, floorMesh(v1alpha1.MeshLinkerd), floorSelects(a))
		Expect(k8s.Create(ctx, istio)).To(Succeed())
		DeferCleanup(deleteFloor, istio)
		Expect(k8s.Create(ctx, linkerd)).To(Succeed())
		DeferCleanup(deleteFloor, linkerd)
		ns := newNamespace()
		labelNamespace(ns, a)

		Eventually(floorNamespaceState(a, ns)).Should(Equal(string(v1alpha1.NamespaceConflict)))
		Eventually(floorNamespaceState(b, ns)).Should(Equal(string(v1alpha1.NamespaceConflict)))
		for _, n := range []string{a, b} {
			c := getFloor(n)
			ready := meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ConditionReady)
			Expect(ready).NotTo(BeNil())
			Expect(ready.Reason).To(Equal(v1alpha1.ReasonClusterProfileConflict))
			Expect(meta.IsStatusConditionTrue(c.Status.Conditions, v1alpha1.ConditionStalled)).To(BeTrue())
		}
		Eventually(eventReasons("ClusterMeshSecurityProfile", "", a)).Should(ContainElement(v1alpha1.ReasonClusterProfileConflict))
		Consistently(controlledBy(gvkPA, ns, a+"-mtls"), 2*time.Second).Should(Equal("absent"))

		By("a namespace profile in that namespace stalls with the same reason")
		p := profile(ns, "team")
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionStalled)).Should(Equal("True/" + v1alpha1.ReasonClusterProfileConflict))
		Expect(controlledBy(gvkPA, ns, "team-mtls")()).To(Equal("absent"))

		By("deleting one of them resolves it")
		deleteFloor(linkerd)
		Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))
		Expect(getProfile(p).Status.ClusterProfiles).To(Equal([]string{a}))
	})

	It("goes with its cluster profile: floor-only namespaces lose its objects, profiles stop carrying its rules", func() {
		name := floorName()
		floor := clusterProfile(name, floorMTLS(v1alpha1.MTLSStrict), floorBaseline())
		Expect(k8s.Create(ctx, floor)).To(Succeed())
		DeferCleanup(deleteFloor, floor)
		alone, withProfile := newNamespace(), newNamespace()
		labelNamespace(alone, name)
		labelNamespace(withProfile, name)
		p := profile(withProfile, "team", withMTLS(v1alpha1.MTLSStrict))
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(controlledBy(gvkPA, alone, name+"-mtls")).Should(Equal("ClusterMeshSecurityProfile/" + name))
		Eventually(controlledBy(gvkAP, withProfile, "team-rule-"+name+"-prometheus")).Should(Equal("MeshSecurityProfile/team"))
		Eventually(floorCounts(name)).Should(Equal("2/2/0"))

		deleteFloor(floor)
		Eventually(controlledBy(gvkPA, alone, name+"-mtls")).Should(Equal("absent"))
		Eventually(controlledBy(gvkNP, alone, name+"-default-deny")).Should(Equal("absent"))
		Eventually(controlledBy(gvkAP, withProfile, "team-rule-"+name+"-prometheus")).Should(Equal("absent"))
		Eventually(controlledBy(gvkAP, withProfile, "team-default-deny")).Should(Equal("absent"), "the floor's default deny went with it")
		Expect(liveMTLSMode(withProfile, "team-mtls")()).To(Equal("STRICT"), "the profile's own objects stay")
		Eventually(condition(p, v1alpha1.ConditionBaseline)).Should(Equal("True/" + v1alpha1.ReasonNoClusterProfile))
	})
})
