package controllers_test

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/certs/certstest"
	"github.com/meshguard/meshguard/internal/drift"
	"github.com/meshguard/meshguard/internal/render"
	"github.com/meshguard/meshguard/test/testenv"
)

// These specs run meshguard's Linkerd translation against Linkerd's own CRDs (the linkerd-crds
// chart at the commit test/crds pins), installed in the suite's real kube-apiserver: every
// generated object must be accepted as rendered (schema, defaults: the API server must not add
// a field, or it would read as drift), owned, pruned, and kept as declared.
var (
	gvkLkServer  = schema.GroupVersionKind{Group: "policy.linkerd.io", Version: "v1beta3", Kind: "Server"}
	gvkLkRoute   = schema.GroupVersionKind{Group: "policy.linkerd.io", Version: "v1beta3", Kind: "HTTPRoute"}
	gvkLkAuthz   = schema.GroupVersionKind{Group: "policy.linkerd.io", Version: "v1alpha1", Kind: "AuthorizationPolicy"}
	gvkLkMeshTLS = schema.GroupVersionKind{Group: "policy.linkerd.io", Version: "v1alpha1", Kind: "MeshTLSAuthentication"}
	gvkLkNetwork = schema.GroupVersionKind{Group: "policy.linkerd.io", Version: "v1alpha1", Kind: "NetworkAuthentication"}
)

// requireLinkerdCRDs skips the Linkerd specs only when MESHGUARD_SKIP_LINKERD=1 asked for it;
// otherwise the suite has the CRDs (testenv.New fails without them).
func requireLinkerdCRDs() {
	if ok, why := testenv.LinkerdInstalled(); !ok {
		Skip(why)
	}
}

// withLinkerdRules gives a Linkerd profile one rule for each Linkerd kind: web-reads-api (an
// identity, a method and a path: Server, HTTPRoute, AuthorizationPolicy on the route,
// MeshTLSAuthentication) and nodes (an ipBlock on a Strict port: Server, AuthorizationPolicy on the
// Server, NetworkAuthentication, and the MeshTLSAuthentication of any meshed client).
func withLinkerdRules() profileOption {
	return func(p *v1alpha1.MeshSecurityProfile) {
		p.Spec.Mesh = v1alpha1.MeshLinkerd
		p.Spec.MTLS = &v1alpha1.MTLSSpec{Mode: v1alpha1.MTLSStrict}
		api := &v1alpha1.WorkloadSelector{MatchLabels: map[string]string{"app": "api"}}
		p.Spec.Authorization = &v1alpha1.AuthorizationSpec{Rules: []v1alpha1.AuthorizationRule{
			{Name: "web-reads-api", Action: v1alpha1.ActionAllow, Selector: api,
				From: &v1alpha1.RuleSource{ServiceAccounts: []v1alpha1.ServiceAccountRef{"frontend/web"}},
				To:   &v1alpha1.RuleTarget{Methods: []string{"GET"}, Paths: []string{"/api/*"}, Ports: []int32{8080}}},
			{Name: "nodes", Action: v1alpha1.ActionAllow, Selector: api,
				From: &v1alpha1.RuleSource{IPBlocks: []string{"10.0.0.0/8"}},
				To:   &v1alpha1.RuleTarget{Ports: []int32{9090}}},
		}}
	}
}

// rendered is what render makes of the live profile (with its UID, for the ownerReferences).
func rendered(p *v1alpha1.MeshSecurityProfile) []*unstructured.Unstructured {
	res, err := render.Render(getProfile(p), render.DefaultOptions())
	Expect(err).NotTo(HaveOccurred())
	return res.Objects
}

// renderedOf returns the rendered object of a kind whose name satisfies match (the Server names
// carry a hash of their selector, so the specs find them by kind and port rather than by name).
func renderedOf(objs []*unstructured.Unstructured, kind string, match func(*unstructured.Unstructured) bool) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && (match == nil || match(o)) {
			return o
		}
	}
	Fail(fmt.Sprintf("no rendered %s", kind))
	return nil
}

func named(name string) func(*unstructured.Unstructured) bool {
	return func(u *unstructured.Unstructured) bool { return u.GetName() == name }
}

func serverOnPort(port int64) func(*unstructured.Unstructured) bool {
	return func(u *unstructured.Unstructured) bool {
		p, _, _ := unstructured.NestedInt64(u.Object, "spec", "port")
		return p == port
	}
}

// liveDrift is what differs between a rendered object and the live one ("NotFound" when it is
// gone), as meshguard's drift detection sees it.
func liveDrift(want *unstructured.Unstructured) func() string {
	return func() string {
		live, err := child(want.GroupVersionKind(), want.GetNamespace(), want.GetName())
		if apierrors.IsNotFound(err) {
			return "NotFound"
		}
		Expect(err).NotTo(HaveOccurred())
		return drift.Summary(drift.Compare(want, live), 10)
	}
}

func gone(gvk schema.GroupVersionKind, ns, name string) func() bool {
	return func() bool {
		_, err := child(gvk, ns, name)
		return apierrors.IsNotFound(err)
	}
}

var _ = Describe("Linkerd objects on Linkerd's real CRDs", Ordered, func() {
	BeforeAll(func() {
		requireLinkerdCRDs()
		anchor, err := certstest.MintCA(certstest.WithSubject("linkerd anchor"))
		Expect(err).NotTo(HaveOccurred())
		issuer, err := certstest.MintIntermediate(anchor, certstest.WithSubject("linkerd issuer"))
		Expect(err).NotTo(HaveOccurred())
		linkerdCA(anchor, issuer)
	})

	It("creates Server, HTTPRoute, AuthorizationPolicy, MeshTLSAuthentication and NetworkAuthentication as rendered, owned and labelled, accepted by the API server without a defaulted field, and is Ready", func() {
		ns := newNamespace()
		p := profile(ns, "p", withLinkerdRules())
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))

		objs := rendered(p)
		kinds := map[string]int{}
		for _, o := range objs {
			kinds[o.GetKind()]++
		}
		Expect(kinds).To(Equal(map[string]int{"Server": 2, "HTTPRoute": 1, "AuthorizationPolicy": 2, "MeshTLSAuthentication": 2, "NetworkAuthentication": 1}))
		cur := getProfile(p)
		for _, want := range objs {
			Expect(liveDrift(want)()).To(BeEmpty(), "%s %s is stored as rendered", want.GetKind(), want.GetName())
			live, err := child(want.GroupVersionKind(), ns, want.GetName())
			Expect(err).NotTo(HaveOccurred())
			owner := metav1.GetControllerOf(live)
			Expect(owner).NotTo(BeNil(), want.GetName())
			Expect(owner.Kind).To(Equal("MeshSecurityProfile"))
			Expect(owner.UID).To(Equal(cur.UID))
			Expect(live.GetLabels()).To(HaveKeyWithValue(v1alpha1.LabelManagedBy, v1alpha1.ManagedByValue))
			Expect(live.GetLabels()).To(HaveKeyWithValue(v1alpha1.LabelProfile, "p"))
			Expect(resourceState(p, want.GetKind(), want.GetName())()).To(Equal("InSync"), want.GetName())
		}

		By("translating the rule's path as a whole-path regular expression and the ipBlock as a network")
		route, err := child(gvkLkRoute, ns, "p-rule-web-reads-api-8080")
		Expect(err).NotTo(HaveOccurred())
		rules, _, _ := unstructured.NestedSlice(route.Object, "spec", "rules")
		Expect(rules).To(Equal([]any{map[string]any{"matches": []any{map[string]any{
			"method": "GET", "path": map[string]any{"type": "RegularExpression", "value": "/api/.*"}}}}}))
		netw, err := child(gvkLkNetwork, ns, "p-rule-nodes")
		Expect(err).NotTo(HaveOccurred())
		Expect(netw.Object["spec"]).To(Equal(map[string]any{"networks": []any{map[string]any{"cidr": "10.0.0.0/8"}}}))
		server := renderedOf(objs, "Server", serverOnPort(9090))
		live, err := child(gvkLkServer, ns, server.GetName())
		Expect(err).NotTo(HaveOccurred())
		Expect(live.Object["spec"]).To(Equal(map[string]any{"accessPolicy": "deny", "port": int64(9090), "proxyProtocol": "unknown",
			"podSelector": map[string]any{"matchLabels": map[string]any{"app": "api"}}}))

		By("staying in sync: nothing the API server stored differs from what was applied")
		Consistently(condition(p, v1alpha1.ConditionInSync), "2s").Should(Equal("True/InSync"))
		for _, k := range []string{"Server", "HTTPRoute", "AuthorizationPolicy", "MeshTLSAuthentication", "NetworkAuthentication"} {
			Expect(counter("meshguard_drift_detected_total", ns, "p", k)).To(BeZero(), k)
		}
	})

	It("updates the objects when the profile changes and prunes the ones no longer rendered", func() {
		ns := newNamespace()
		p := profile(ns, "p", withLinkerdRules())
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))
		before := rendered(p)
		stale9090 := renderedOf(before, "Server", serverOnPort(9090))

		cur := getProfile(p)
		cur.Spec.Authorization.Rules[0].To.Paths = []string{"/v2/*", "/healthz"}
		cur.Spec.Authorization.Rules[0].From.ServiceAccounts = []v1alpha1.ServiceAccountRef{"frontend/web", "batch/report"}
		cur.Spec.Authorization.Rules = cur.Spec.Authorization.Rules[:1]
		Expect(k8s.Update(ctx, cur)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))

		after := rendered(p)
		for _, want := range after {
			Eventually(liveDrift(want)).Should(BeEmpty(), "%s %s is updated", want.GetKind(), want.GetName())
		}
		route := renderedOf(after, "HTTPRoute", named("p-rule-web-reads-api-8080"))
		matches, _, _ := unstructured.NestedSlice(route.Object, "spec", "rules")
		Expect(fmt.Sprint(matches)).To(And(ContainSubstring("/v2/.*"), ContainSubstring("/healthz"), Not(ContainSubstring("/api/"))))
		mtls := renderedOf(after, "MeshTLSAuthentication", named("p-rule-web-reads-api"))
		Expect(mtls.Object["spec"]).To(HaveKeyWithValue("identities", ConsistOf(
			"web.frontend.serviceaccount.identity.linkerd.cluster.local", "report.batch.serviceaccount.identity.linkerd.cluster.local")))

		By("pruning the Server, policy and authentications of the removed rule")
		for _, o := range []struct {
			gvk  schema.GroupVersionKind
			name string
		}{
			{gvkLkServer, stale9090.GetName()},
			{gvkLkAuthz, "p-rule-nodes-9090"},
			{gvkLkNetwork, "p-rule-nodes"},
			{gvkLkMeshTLS, "p-meshed"},
		} {
			Eventually(gone(o.gvk, ns, o.name)).Should(BeTrue(), "%s %s pruned", o.gvk.Kind, o.name)
		}
		Expect(getProfile(p).Status.Resources).To(HaveLen(len(after) + 1)) // + the Namespace's annotation
	})

	It("prunes the other mesh's objects when the profile switches from Istio to Linkerd and back", func() {
		ns := newNamespace()
		p := profile(ns, "p", withMTLS(v1alpha1.MTLSStrict), withAllowFrom("web", "frontend/web"))
		p.Spec.Authorization.Rules[0].To = &v1alpha1.RuleTarget{Ports: []int32{8080}}
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))
		Expect(gone(gvkPA, ns, "p-mtls")()).To(BeFalse())
		Expect(gone(gvkAP, ns, "p-rule-web")()).To(BeFalse())

		By("switching to Linkerd")
		cur := getProfile(p)
		cur.Spec.Mesh = v1alpha1.MeshLinkerd
		Expect(k8s.Update(ctx, cur)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))
		Eventually(gone(gvkPA, ns, "p-mtls")).Should(BeTrue())
		Eventually(gone(gvkAP, ns, "p-rule-web")).Should(BeTrue())
		lk := rendered(p)
		Expect(lk).NotTo(BeEmpty())
		for _, want := range lk {
			Expect(want.GroupVersionKind().Group).To(Equal("policy.linkerd.io"))
			Eventually(liveDrift(want)).Should(BeEmpty(), "%s %s", want.GetKind(), want.GetName())
		}
		Expect(namespaceAnnotation(ns, inboundPolicy)()).To(Equal("all-authenticated"))

		By("switching back to Istio")
		cur = getProfile(p)
		cur.Spec.Mesh = v1alpha1.MeshIstio
		Expect(k8s.Update(ctx, cur)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))
		for _, o := range lk {
			Eventually(gone(o.GroupVersionKind(), ns, o.GetName())).Should(BeTrue(), "%s %s pruned", o.GetKind(), o.GetName())
		}
		Eventually(namespaceAnnotation(ns, inboundPolicy)).Should(Equal("(none)"), "Linkerd's default inbound policy is removed")
		Expect(gone(gvkPA, ns, "p-mtls")()).To(BeFalse())
		Expect(gone(gvkAP, ns, "p-rule-web")()).To(BeFalse())
	})

	// Each kind gets a realistic weakening edit: a Server opened to unauthenticated clients, a
	// policy that no longer requires authentication (Linkerd then authorizes every client), an
	// identity wildcard, an open network, a route widened to every path.
	lkTargets := []struct {
		gvk  schema.GroupVersionKind
		find func(objs []*unstructured.Unstructured) *unstructured.Unstructured
		edit func(u *unstructured.Unstructured)
	}{
		{gvkLkServer, func(o []*unstructured.Unstructured) *unstructured.Unstructured {
			return renderedOf(o, "Server", serverOnPort(8080))
		}, set([]string{"spec", "accessPolicy"}, "all-unauthenticated")},
		{gvkLkAuthz, func(o []*unstructured.Unstructured) *unstructured.Unstructured {
			return renderedOf(o, "AuthorizationPolicy", named("p-rule-web-reads-api-8080"))
		}, set([]string{"spec", "requiredAuthenticationRefs"}, []any{})},
		{gvkLkMeshTLS, func(o []*unstructured.Unstructured) *unstructured.Unstructured {
			return renderedOf(o, "MeshTLSAuthentication", named("p-rule-web-reads-api"))
		}, set([]string{"spec", "identities"}, []any{"*"})},
		{gvkLkNetwork, func(o []*unstructured.Unstructured) *unstructured.Unstructured {
			return renderedOf(o, "NetworkAuthentication", named("p-rule-nodes"))
		}, set([]string{"spec", "networks"}, []any{map[string]any{"cidr": "0.0.0.0/0"}})},
		{gvkLkRoute, func(o []*unstructured.Unstructured) *unstructured.Unstructured {
			return renderedOf(o, "HTTPRoute", named("p-rule-web-reads-api-8080"))
		}, set([]string{"spec", "rules"}, []any{map[string]any{"matches": []any{map[string]any{"path": map[string]any{"type": "PathPrefix", "value": "/"}}}}})},
	}
	for _, enforcement := range []v1alpha1.Enforcement{v1alpha1.EnforcementEnforce, v1alpha1.EnforcementAudit} {
		for _, tg := range lkTargets {
			for _, deletion := range []bool{false, true} {
				what := map[bool]string{false: "an edited field", true: "a deletion"}[deletion]
				verdict := map[v1alpha1.Enforcement]string{v1alpha1.EnforcementEnforce: "reverted", v1alpha1.EnforcementAudit: "only reported"}[enforcement]
				It(fmt.Sprintf("%s: %s of the Linkerd %s is detected and %s", enforcement, what, tg.gvk.Kind, verdict), func() {
					ns := newNamespace()
					p := profile(ns, "p", withLinkerdRules())
					if enforcement == v1alpha1.EnforcementAudit {
						// Audit never writes: let Enforce create the objects first.
						Expect(k8s.Create(ctx, p)).To(Succeed())
						Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))
						cur := getProfile(p)
						cur.Spec.Enforcement = v1alpha1.EnforcementAudit
						Expect(k8s.Update(ctx, cur)).To(Succeed())
						Eventually(condition(p, v1alpha1.ConditionPoliciesApplied)).Should(Equal("True/AuditOnly"))
					} else {
						Expect(k8s.Create(ctx, p)).To(Succeed())
						Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))
					}
					want := tg.find(rendered(p))
					Expect(liveDrift(want)()).To(BeEmpty())
					live, err := child(tg.gvk, ns, want.GetName())
					Expect(err).NotTo(HaveOccurred())
					if deletion {
						Expect(k8s.Delete(ctx, live)).To(Succeed())
					} else {
						tg.edit(live)
						// Enforce may restore it before it can be read back: the correction counter
						// below proves that it was seen.
						Expect(k8s.Update(ctx, live, client.FieldOwner("kubectl-edit"))).To(Succeed())
					}

					if enforcement == v1alpha1.EnforcementEnforce {
						Eventually(liveDrift(want)).Should(BeEmpty(), "restored")
						Eventually(func() float64 { return counter("meshguard_drift_corrected_total", ns, "p", tg.gvk.Kind) }).Should(BeNumerically(">=", 1))
						Eventually(condition(p, v1alpha1.ConditionInSync)).Should(Equal("True/InSync"))
						return
					}
					state := map[bool]string{false: "Drifted", true: "Missing"}[deletion]
					Eventually(resourceState(p, tg.gvk.Kind, want.GetName())).Should(Equal(state))
					Expect(condition(p, v1alpha1.ConditionInSync)()).To(HavePrefix("False/"))
					Consistently(func() bool {
						d := liveDrift(want)()
						if deletion {
							return d == "NotFound"
						}
						return d != "" && d != "NotFound"
					}, "500ms").Should(BeTrue(), "Audit mode writes nothing")
				})
			}
		}
	}

	It("reports a foreign Server that selects the same pods and port as a generated one, and leaves it alone", func() {
		ns := newNamespace()
		foreignServer := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{
			"podSelector":  map[string]any{"matchLabels": map[string]any{"app": "api"}},
			"port":         int64(8080),
			"accessPolicy": "all-unauthenticated",
		}}}
		foreignServer.SetGroupVersionKind(gvkLkServer)
		foreignServer.SetNamespace(ns)
		foreignServer.SetName("legacy-api")
		Expect(k8s.Create(ctx, foreignServer)).To(Succeed())

		p := profile(ns, "p", withLinkerdRules())
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionEffective)).Should(Equal("False/Weakened"))
		Expect(condition(p, v1alpha1.ConditionReady)()).To(Equal("False/Weakened"))
		Expect(getProfile(p).Status.ExternalPolicies).To(ContainElement(And(
			HaveField("Kind", "Server"), HaveField("Name", "legacy-api"), HaveField("Weakens", ContainSubstring("8080")))))
		live, err := child(gvkLkServer, ns, "legacy-api")
		Expect(err).NotTo(HaveOccurred())
		Expect(live.Object["spec"]).To(HaveKeyWithValue("accessPolicy", "all-unauthenticated"), "never modified")
		Expect(metav1.GetControllerOf(live)).To(BeNil())

		By("becoming Ready once it is gone")
		Expect(k8s.Delete(ctx, live)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))
	})

	It("keeps the stored objects equal to the rendered ones (no perpetual drift from defaults)", func() {
		ns := newNamespace()
		p := profile(ns, "p", withLinkerdRules())
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))
		for _, want := range rendered(p) {
			live, err := child(want.GroupVersionKind(), ns, want.GetName())
			Expect(err).NotTo(HaveOccurred())
			spec, _, _ := unstructured.NestedMap(live.Object, "spec")
			Expect(equality.Semantic.DeepEqual(spec, want.Object["spec"])).To(BeTrue(), "%s %s: stored %v, rendered %v", want.GetKind(), want.GetName(), spec, want.Object["spec"])
		}
	})
})
