package controllers_test

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

var gvkRA = schema.GroupVersionKind{Group: "security.istio.io", Version: "v1", Kind: "RequestAuthentication"}

// driftProfile generates one object of every Istio kind and a NetworkPolicy with a rule.
func driftProfile(ns string, opts ...profileOption) *v1alpha1.MeshSecurityProfile {
	p := profile(ns, "d", append([]profileOption{withMTLS(v1alpha1.MTLSStrict), withAllowFrom("web", "frontend/web")}, opts...)...)
	p.Spec.MTLS.Overrides = []v1alpha1.MTLSOverride{{Name: "db", Selector: v1alpha1.WorkloadSelector{MatchLabels: map[string]string{"app": "db"}},
		Ports: []v1alpha1.PortMTLS{{Port: 9187, Mode: v1alpha1.MTLSPermissive}}}}
	p.Spec.RequestAuthentication = &v1alpha1.RequestAuthenticationSpec{Issuers: []v1alpha1.JWTIssuer{{Issuer: "https://auth.example.com", JwksURI: "https://auth.example.com/jwks.json"}}}
	p.Spec.NetworkPolicy = &v1alpha1.NetworkPolicySpec{Ingress: []v1alpha1.IngressRule{{Name: "web",
		From: []v1alpha1.NetworkPeer{{Namespaces: []string{"frontend"}}}, Ports: []v1alpha1.NetworkPort{{Port: 8080}}}}}
	return p
}

type target struct {
	gvk  schema.GroupVersionKind
	name string
	// edit changes a field meshguard owns; add adds a rule; remove removes one.
	edit, add, remove func(u *unstructured.Unstructured)
}

func set(path []string, v any) func(*unstructured.Unstructured) {
	return func(u *unstructured.Unstructured) {
		Expect(unstructured.SetNestedField(u.Object, v, path...)).To(Succeed())
	}
}

func appendItem(path []string, item any) func(*unstructured.Unstructured) {
	return func(u *unstructured.Unstructured) {
		l, _, _ := unstructured.NestedSlice(u.Object, path...)
		Expect(unstructured.SetNestedSlice(u.Object, append(l, item), path...)).To(Succeed())
	}
}

func removeField(path ...string) func(*unstructured.Unstructured) {
	return func(u *unstructured.Unstructured) { unstructured.RemoveNestedField(u.Object, path...) }
}

var targets = []target{
	{gvkPA, "d-mtls-db", set([]string{"spec", "portLevelMtls", "9187", "mode"}, "DISABLE"),
		set([]string{"spec", "portLevelMtls", "9999"}, map[string]any{"mode": "DISABLE"}), removeField("spec", "portLevelMtls")},
	{gvkRA, "d-jwt", editFirstIssuer,
		appendItem([]string{"spec", "jwtRules"}, map[string]any{"issuer": "https://evil.example.com"}), removeField("spec", "jwtRules")},
	{gvkAP, "d-rule-web", set([]string{"spec", "action"}, "AUDIT"),
		appendItem([]string{"spec", "rules"}, map[string]any{}), removeField("spec", "rules")},
	{gvkNP, "d-ingress-web", set([]string{"spec", "policyTypes"}, []any{"Egress"}),
		appendItem([]string{"spec", "ingress"}, map[string]any{}), removeField("spec", "ingress")},
}

// editFirstIssuer changes the issuer of the first JWT rule (unstructured paths cannot index lists).
func editFirstIssuer(u *unstructured.Unstructured) {
	rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "jwtRules")
	Expect(rules).NotTo(BeEmpty())
	rules[0].(map[string]any)["issuer"] = "https://evil.example.com"
	Expect(unstructured.SetNestedSlice(u.Object, rules, "spec", "jwtRules")).To(Succeed())
}

func counter(name, ns, profile, kind string) float64 {
	fams, err := metrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if labelsMatch(m, map[string]string{"namespace": ns, "profile": profile, "kind": kind}) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func labelsMatch(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
			n++
		}
	}
	return n == len(want)
}

func getChild(t target, ns string) *unstructured.Unstructured {
	u, err := child(t.gvk, ns, t.name)
	Expect(err).NotTo(HaveOccurred())
	return u
}

func content(u *unstructured.Unstructured) map[string]any {
	spec, _, _ := unstructured.NestedMap(u.Object, "spec")
	return map[string]any{"spec": spec, "labels": u.GetLabels()}
}

var _ = Describe("Drift of every generated kind", func() {
	mutations := []struct {
		name string
		do   func(t target, u *unstructured.Unstructured) (deleted bool)
	}{
		{"an edited field", func(t target, u *unstructured.Unstructured) bool { t.edit(u); return false }},
		{"an added rule", func(t target, u *unstructured.Unstructured) bool { t.add(u); return false }},
		{"a removed rule", func(t target, u *unstructured.Unstructured) bool { t.remove(u); return false }},
		{"a changed meshguard label", func(t target, u *unstructured.Unstructured) bool {
			l := u.GetLabels()
			l[v1alpha1.LabelProfile] = "someone-else"
			u.SetLabels(l)
			return false
		}},
		{"a deletion", func(t target, u *unstructured.Unstructured) bool { return true }},
	}

	for _, enforcement := range []v1alpha1.Enforcement{v1alpha1.EnforcementEnforce, v1alpha1.EnforcementAudit} {
		for _, tg := range targets {
			for _, m := range mutations {
				tg, m, enforcement := tg, m, enforcement
				It(fmt.Sprintf("%s: %s of %s is detected and %s", enforcement, m.name, tg.gvk.Kind, map[v1alpha1.Enforcement]string{"Enforce": "reverted", "Audit": "only reported"}[enforcement]), func() {
					ns := newNamespace()
					p := driftProfile(ns)
					Expect(k8s.Create(ctx, p)).To(Succeed())
					Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))
					if enforcement == v1alpha1.EnforcementAudit {
						cur := getProfile(p)
						cur.Spec.Enforcement = v1alpha1.EnforcementAudit
						Expect(k8s.Update(ctx, cur)).To(Succeed())
						Eventually(condition(p, v1alpha1.ConditionPoliciesApplied)).Should(Equal("True/AuditOnly"))
					}
					original := getChild(tg, ns)
					detectedBefore := counter("meshguard_drift_detected_total", ns, "d", tg.gvk.Kind)

					u := original.DeepCopy()
					if m.do(tg, u) {
						Expect(k8s.Delete(ctx, u)).To(Succeed())
					} else {
						Expect(k8s.Update(ctx, u, client.FieldOwner("kubectl-edit"))).To(Succeed())
					}

					if enforcement == v1alpha1.EnforcementEnforce {
						Eventually(func() bool {
							live, err := child(tg.gvk, ns, tg.name)
							return err == nil && equality.Semantic.DeepEqual(content(live), content(original))
						}).Should(BeTrue(), "restored")
						Eventually(func() float64 { return counter("meshguard_drift_detected_total", ns, "d", tg.gvk.Kind) }).Should(BeNumerically(">", detectedBefore))
						Eventually(func() float64 { return counter("meshguard_drift_corrected_total", ns, "d", tg.gvk.Kind) }).Should(BeNumerically(">=", 1))
						Eventually(condition(p, v1alpha1.ConditionInSync)).Should(Equal("True/InSync"))
						return
					}
					want := "Drifted"
					if m.name == "a deletion" {
						want = "Missing"
					}
					Eventually(resourceState(p, tg.gvk.Kind, tg.name)).Should(Equal(want))
					Expect(condition(p, v1alpha1.ConditionInSync)()).To(HavePrefix("False/"))
					Consistently(func() bool {
						live, err := child(tg.gvk, ns, tg.name)
						if m.name == "a deletion" {
							return apierrors.IsNotFound(err)
						}
						return err == nil && !equality.Semantic.DeepEqual(content(live), content(original))
					}, "500ms").Should(BeTrue(), "Audit mode writes nothing")
				})
			}
		}
	}
})

var _ = Describe("What is not drift, and fights", func() {
	It("ignores labels and annotations that another field manager adds", func() {
		ns := newNamespace()
		p := driftProfile(ns)
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))
		pa := getChild(targets[0], ns)
		patch := &unstructured.Unstructured{}
		patch.SetGroupVersionKind(gvkPA)
		patch.SetNamespace(ns)
		patch.SetName(pa.GetName())
		patch.SetLabels(map[string]string{"team": "blue"})
		patch.SetAnnotations(map[string]string{"example.com/reviewed": "yes"})
		Expect(k8s.Apply(ctx, client.ApplyConfigurationFromUnstructured(patch), client.FieldOwner("other-tool"))).To(Succeed())
		Consistently(func() bool {
			live := getChild(targets[0], ns)
			return live.GetLabels()["team"] == "blue" && live.GetAnnotations()["example.com/reviewed"] == "yes"
		}, "1s").Should(BeTrue())
		Expect(counter("meshguard_drift_detected_total", ns, "d", "PeerAuthentication")).To(BeZero())
		Expect(condition(p, v1alpha1.ConditionInSync)()).To(Equal("True/InSync"))
	})

	// The back-off itself (how many corrections, how long each wait) is table-tested on an injected
	// clock in decide_test.go; this smoke only checks the wiring against a real writer.
	It("backs off from a writer that keeps rewriting a field, and names it", func() {
		ns := newNamespace()
		p := driftProfile(ns)
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))

		fight := func() string {
			// The writer sets the field back whenever meshguard restored it.
			live := getChild(targets[0], ns)
			if mode, _, _ := unstructured.NestedString(live.Object, "spec", "portLevelMtls", "9187", "mode"); mode != "DISABLE" {
				Expect(unstructured.SetNestedField(live.Object, "DISABLE", "spec", "portLevelMtls", "9187", "mode")).To(Succeed())
				_ = k8s.Update(ctx, live, client.FieldOwner("fighter")) // a conflict just means try again
			}
			for _, r := range getProfile(p).Status.Resources {
				if r.Name == targets[0].name {
					return string(r.State) + ": " + r.Message
				}
			}
			return ""
		}
		Eventually(fight).WithTimeout(30 * time.Second).Should(And(HavePrefix("Drifted: "), ContainSubstring(`"fighter"`), ContainSubstring("keeps rewriting")))
		Expect(counter("meshguard_drift_corrected_total", ns, "d", "PeerAuthentication")).To(BeNumerically(">=", 3), "it restored (three free corrections) before backing off")
	})
})
