package render

import (
	"fmt"
	"math/rand"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/dataplane"
)

// l7Fields are the AuthorizationPolicy fields ztunnel treats as HTTP
// (pilot/pkg/serviceregistry/ambient/authorization.go handleRule).
var l7Fields = map[string]bool{
	"methods": true, "notMethods": true, "paths": true, "notPaths": true, "hosts": true, "notHosts": true,
	"requestPrincipals": true, "notRequestPrincipals": true, "remoteIpBlocks": true, "notRemoteIpBlocks": true,
}

// ztunnelL7Content lists the fields of an AuthorizationPolicy ztunnel cannot enforce.
func ztunnelL7Content(o *unstructured.Unstructured) []string {
	var found []string
	rules, _, _ := unstructured.NestedSlice(o.Object, "spec", "rules")
	for _, r := range rules {
		rule, _ := r.(map[string]any)
		for _, part := range []string{"from", "to"} {
			entries, _ := rule[part].([]any)
			for _, e := range entries {
				m, _ := e.(map[string]any)
				for _, inner := range m {
					fields, _ := inner.(map[string]any)
					for k := range fields {
						if l7Fields[k] {
							found = append(found, k)
						}
					}
				}
			}
		}
		when, _ := rule["when"].([]any)
		for _, c := range when {
			m, _ := c.(map[string]any)
			if key, _ := m["key"].(string); !l4WhenKeys[key] {
				found = append(found, "when "+key)
			}
		}
	}
	return found
}

// checkNoL7AtZtunnel fails when a selector-bound (or namespace-wide) AuthorizationPolicy that
// binds ambient pods carries a field ztunnel cannot enforce.
func checkNoL7AtZtunnel(g Gomega, res *Result, facts *dataplane.Facts) {
	for _, o := range res.Objects {
		if o.GetKind() != "AuthorizationPolicy" {
			continue
		}
		if _, hasTargets, _ := unstructured.NestedSlice(o.Object, "spec", "targetRefs"); hasTargets {
			continue
		}
		sel, _, _ := unstructured.NestedStringMap(o.Object, "spec", "selector", "matchLabels")
		s := dataplane.Select(facts, sel)
		if !s.Has(dataplane.Ambient) && !s.Has(dataplane.Waypoint) {
			continue
		}
		g.Expect(ztunnelL7Content(o)).To(BeEmpty(), "AuthorizationPolicy %s binds ambient pods %v by selector", o.GetName(),
			append(s.Pods(dataplane.Ambient), s.Pods(dataplane.Waypoint)...))
	}
}

func TestNoSelectorPolicyForAmbientPodsCarriesL7Fields(t *testing.T) {
	all, err := filepath.Glob("testdata/ambient/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range all {
		if strings.HasSuffix(in, ".golden.yaml") || strings.HasSuffix(in, ".facts.yaml") {
			continue
		}
		t.Run(filepath.Base(in), func(t *testing.T) {
			g := NewWithT(t)
			opts := loadAmbientCase(t, in)
			res, err := Render(loadProfile(t, in), opts)
			g.Expect(err).NotTo(HaveOccurred())
			checkNoL7AtZtunnel(g, res, opts.DataPlane)
		})
	}
}

// TestAmbientPropertyEveryRuleEnforcedOrUnenforceable renders random profiles against random
// namespaces of sidecar, ambient, waypoint-bound and unmeshed pods. For every ambient pod a rule
// selects, the rule is either enforced where that pod's data plane enforces it (an L4 rule at
// ztunnel or a waypoint, an L7 rule at a waypoint) or reported Unenforceable (so Ready is False);
// never both silent and unenforced. And no selector policy for ambient pods carries L7 fields.
func TestAmbientPropertyEveryRuleEnforcedOrUnenforceable(t *testing.T) {
	rnd := rand.New(rand.NewSource(19))
	apps := []string{"api", "web", "db"}
	for i := range 300 {
		facts := randomFacts(rnd, apps)
		p := randomProfile(rnd, apps)
		name := fmt.Sprintf("case-%d", i)
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			opts := DefaultOptions()
			opts.DataPlane = facts
			opts.IstioSourceServiceAccounts = rnd.Intn(2) == 0
			res, err := Render(p, opts)
			g.Expect(err).NotTo(HaveOccurred())
			checkNoL7AtZtunnel(g, res, facts)
			for _, rule := range p.Spec.Authorization.Rules {
				id := "authorization.rules[" + rule.Name + "]"
				l7 := rule.To != nil && len(rule.To.Methods)+len(rule.To.Paths) > 0 || rule.From != nil && len(rule.From.RequestPrincipals) > 0
				var sel map[string]string
				if rule.Selector != nil {
					sel = rule.Selector.MatchLabels
				}
				s := dataplane.Select(facts, sel)
				for _, w := range s.Workloads {
					if w.Class != dataplane.Ambient && w.Class != dataplane.Waypoint {
						continue
					}
					var points []v1alpha1.EnforcementPoint
					for _, e := range res.Enforcement {
						if e.Rule == id && (slices.Contains(e.Pods, w.Pod) || int(e.PodCount) > len(e.Pods)) {
							points = append(points, e.EnforcedBy)
						}
					}
					switch {
					case slices.Contains(points, v1alpha1.EnforcedByNone):
						g.Expect(strings.Join(res.Unenforceable, "\n")).To(ContainSubstring(id), "pod %s: None without Unenforceable", w.Pod)
					case l7 || w.Class == dataplane.Waypoint:
						g.Expect(points).To(ContainElement(v1alpha1.EnforcedByWaypoint), "rule %s pod %s (%s)", id, w.Pod, w.Class)
					default:
						g.Expect(points).To(ContainElement(v1alpha1.EnforcedByZtunnel), "rule %s pod %s (%s)", id, w.Pod, w.Class)
					}
				}
			}
		})
	}
}

func randomFacts(rnd *rand.Rand, apps []string) *dataplane.Facts {
	f := &dataplane.Facts{Namespace: "shop", NamespaceLabels: map[string]string{}}
	if rnd.Intn(2) == 0 {
		f.NamespaceLabels[dataplane.LabelDataplaneMode] = dataplane.DataplaneModeAmbient
	}
	f.Gateways = []dataplane.Gateway{
		{Namespace: "shop", Name: "svc-wp", ClassName: dataplane.WaypointGatewayClass},
		{Namespace: "shop", Name: "wl-wp", ClassName: dataplane.WaypointGatewayClass, Labels: map[string]string{dataplane.LabelWaypointFor: dataplane.WaypointForWork}},
	}
	for _, app := range apps {
		svc := dataplane.Service{Name: app, Selector: map[string]string{"app": app}, Labels: map[string]string{}}
		if rnd.Intn(3) == 0 {
			svc.Labels[dataplane.LabelUseWaypoint] = "svc-wp"
		}
		f.Services = append(f.Services, svc)
		for j := range rnd.Intn(3) {
			pod := dataplane.Pod{Name: fmt.Sprintf("%s-%d", app, j), Labels: map[string]string{"app": app}, Annotations: map[string]string{}}
			switch rnd.Intn(4) {
			case 0:
				pod.Annotations[dataplane.AnnotationSidecarStatus] = "{}"
			case 1:
				pod.Annotations[dataplane.AnnotationRedirection] = dataplane.RedirectionEnabled
			case 2:
				pod.Annotations[dataplane.AnnotationRedirection] = dataplane.RedirectionEnabled
				pod.Labels[dataplane.LabelUseWaypoint] = "wl-wp"
			}
			f.Pods = append(f.Pods, pod)
		}
	}
	return f
}

func randomProfile(rnd *rand.Rand, apps []string) *v1alpha1.MeshSecurityProfile {
	p := &v1alpha1.MeshSecurityProfile{}
	p.Name, p.Namespace = "p", "shop"
	p.Spec.Authorization = &v1alpha1.AuthorizationSpec{DefaultDeny: rnd.Intn(2) == 0}
	for i := range 1 + rnd.Intn(4) {
		rule := v1alpha1.AuthorizationRule{Name: fmt.Sprintf("r%d", i), Action: v1alpha1.ActionAllow}
		if rnd.Intn(3) == 0 {
			rule.Action = v1alpha1.ActionDeny
		}
		if rnd.Intn(4) != 0 {
			rule.Selector = &v1alpha1.WorkloadSelector{MatchLabels: map[string]string{"app": apps[rnd.Intn(len(apps))]}}
		} else {
			rule.Selector = &v1alpha1.WorkloadSelector{}
		}
		rule.From = &v1alpha1.RuleSource{ServiceAccounts: []v1alpha1.ServiceAccountRef{"frontend/web"}}
		switch rnd.Intn(4) {
		case 0:
			rule.To = &v1alpha1.RuleTarget{Methods: []string{"GET"}}
		case 1:
			rule.To = &v1alpha1.RuleTarget{Ports: []int32{8080}, Paths: []string{"/api/*"}}
		case 2:
			rule.From.RequestPrincipals = []string{"*"}
		default:
			rule.To = &v1alpha1.RuleTarget{Ports: []int32{8080}}
		}
		if len(rule.Selector.MatchLabels) == 0 {
			rule.Selector = nil
		}
		p.Spec.Authorization.Rules = append(p.Spec.Authorization.Rules, rule)
	}
	return p
}

func TestMTLSDisableIsUnenforceableOnlyWhereAmbientPodsAre(t *testing.T) {
	g := NewWithT(t)
	p := &v1alpha1.MeshSecurityProfile{}
	p.Name, p.Namespace = "p", "shop"
	p.Spec.MTLS = &v1alpha1.MTLSSpec{Mode: v1alpha1.MTLSDisable}
	opts := DefaultOptions()
	opts.DataPlane = &dataplane.Facts{Namespace: "shop"}
	res, err := Render(p, opts)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Unenforceable).To(BeEmpty(), "a sidecar namespace without pods")

	opts.DataPlane = &dataplane.Facts{Namespace: "shop", Pods: []dataplane.Pod{{Name: "api-0", Annotations: map[string]string{dataplane.AnnotationRedirection: dataplane.RedirectionEnabled}}}}
	res, err = Render(p, opts)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Unenforceable).To(ConsistOf(ContainSubstring("mtls: ambient ignores mTLS Disable")))
	g.Expect(res.Enforcement).To(ContainElement(v1alpha1.RuleEnforcementStatus{Rule: "mtls", EnforcedBy: v1alpha1.EnforcedByNone, Pods: []string{"api-0"}, PodCount: 1,
		Reason: "ambient ignores mTLS Disable: ztunnel always uses mutual TLS (HBONE) and acts as Permissive; take the pods out of ambient (istio.io/dataplane-mode=none) to disable it"}))
}

// TestMoreTargetsThanTheCRDAllowsIsUnenforceable: the AuthorizationPolicy and RequestAuthentication
// CRDs take at most 16 targetRefs (istio.io/api kubernetes/customresourcedefinitions.gen.yaml,
// maxItems: 16); pods behind 17 waypoint-bound Services cannot get one policy attached to them all,
// and the API server would refuse it: the part is reported Unenforceable instead, fail closed.
func TestMoreTargetsThanTheCRDAllowsIsUnenforceable(t *testing.T) {
	g := NewWithT(t)
	p := &v1alpha1.MeshSecurityProfile{}
	p.Name, p.Namespace = "p", "shop"
	p.Spec.Authorization = &v1alpha1.AuthorizationSpec{DefaultDeny: true, Rules: []v1alpha1.AuthorizationRule{{
		Name: "web-reads", Action: v1alpha1.ActionAllow,
		Selector: &v1alpha1.WorkloadSelector{MatchLabels: map[string]string{"app": "api"}},
		From:     &v1alpha1.RuleSource{ServiceAccounts: []v1alpha1.ServiceAccountRef{"frontend/web"}},
		To:       &v1alpha1.RuleTarget{Methods: []string{"GET"}},
	}}}
	facts := &dataplane.Facts{Namespace: "shop", NamespaceLabels: map[string]string{dataplane.LabelUseWaypoint: "waypoint"},
		Pods:     []dataplane.Pod{{Name: "api-0", Labels: map[string]string{"app": "api"}, Annotations: map[string]string{dataplane.AnnotationRedirection: dataplane.RedirectionEnabled}}},
		Gateways: []dataplane.Gateway{{Namespace: "shop", Name: "waypoint", ClassName: dataplane.WaypointGatewayClass}}}
	for i := range 17 {
		facts.Services = append(facts.Services, dataplane.Service{Name: fmt.Sprintf("api-%02d", i), Selector: map[string]string{"app": "api"}})
	}
	opts := DefaultOptions()
	opts.DataPlane = facts
	res, err := Render(p, opts)
	g.Expect(err).NotTo(HaveOccurred())
	for _, o := range res.Objects {
		refs, _, _ := unstructured.NestedSlice(o.Object, "spec", "targetRefs")
		g.Expect(len(refs)).To(BeNumerically("<=", maxTargetRefs), "%s %s", o.GetKind(), o.GetName())
	}
	g.Expect(res.Unenforceable).To(ContainElements(
		ContainSubstring("authorization.rules[web-reads]: the pods are behind 17 Services and Gateways"),
		ContainSubstring("authorization.defaultDeny: the pods are behind 17 Services and Gateways"),
	))
}

// TestWaypointOnlyDenyCannotBeSkippedThroughAnotherAllow: a DENY only a waypoint enforces
// (requireToken, an L7 Deny rule) must hold for callers that skip the waypoint too: pod-IP
// traffic, clients with sidecars (they do not use waypoints, istio/istio#54483) and ingress
// without istio.io/ingress-use-waypoint. An L4 Allow rule for the same pods is also a selector
// policy at ztunnel, which admits its senders directly; an ALLOW that admits only the waypoint
// does not stop them (ALLOW policies add up). So the anti-bypass policy of such a part is a ztunnel
// DENY of every identity but the waypoint's (DENY is evaluated before ALLOW: istio.io
// docs/concepts/security "implicit enablement").
func TestWaypointOnlyDenyCannotBeSkippedThroughAnotherAllow(t *testing.T) {
	g := NewWithT(t)
	p := &v1alpha1.MeshSecurityProfile{}
	p.Name, p.Namespace = "p", "shop"
	api := &v1alpha1.WorkloadSelector{MatchLabels: map[string]string{"app": "api"}}
	p.Spec.Authorization = &v1alpha1.AuthorizationSpec{Rules: []v1alpha1.AuthorizationRule{
		{Name: "monitoring", Action: v1alpha1.ActionAllow, Selector: api, From: &v1alpha1.RuleSource{Namespaces: []string{"monitoring"}}},
		{Name: "no-delete", Action: v1alpha1.ActionDeny, Selector: api, To: &v1alpha1.RuleTarget{Methods: []string{"DELETE"}}},
	}}
	p.Spec.RequestAuthentication = &v1alpha1.RequestAuthenticationSpec{Selector: api, RequireToken: true,
		Issuers: []v1alpha1.JWTIssuer{{Issuer: "https://auth.example.com", JwksURI: "https://auth.example.com/jwks.json"}}}
	opts := DefaultOptions()
	opts.IstioSourceServiceAccounts = true
	opts.DataPlane = &dataplane.Facts{Namespace: "shop", NamespaceLabels: map[string]string{dataplane.LabelUseWaypoint: "waypoint"},
		Pods:     []dataplane.Pod{{Name: "api-0", Labels: map[string]string{"app": "api"}, Annotations: map[string]string{dataplane.AnnotationRedirection: dataplane.RedirectionEnabled}}},
		Services: []dataplane.Service{{Name: "api", Selector: map[string]string{"app": "api"}}},
		Gateways: []dataplane.Gateway{{Namespace: "shop", Name: "waypoint", ClassName: dataplane.WaypointGatewayClass}}}
	res, err := Render(p, opts)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Unenforceable).To(BeEmpty())
	byName := map[string]*unstructured.Unstructured{}
	for _, o := range res.Objects {
		if o.GetKind() == "AuthorizationPolicy" {
			byName[o.GetName()] = o
		}
	}
	g.Expect(byName).To(HaveKey("p-rule-monitoring"), "the L4 Allow reaches ztunnel by selector: its senders get in without the waypoint")
	for _, name := range []string{"p-jwt-ztunnel", "p-rule-no-delete-ztunnel"} {
		g.Expect(byName).To(HaveKey(name))
		spec := byName[name].Object["spec"]
		g.Expect(spec).To(HaveKeyWithValue("action", "DENY"), name)
		g.Expect(spec).To(HaveKeyWithValue("selector", HaveKeyWithValue("matchLabels", HaveKeyWithValue("app", "api"))), name)
		g.Expect(spec).To(HaveKeyWithValue("rules", ConsistOf(HaveKeyWithValue("from", ConsistOf(
			HaveKeyWithValue("source", Equal(map[string]any{"notServiceAccounts": []any{"shop/waypoint"}})),
		)))), name)
		g.Expect(ztunnelL7Content(byName[name])).To(BeEmpty())
	}
}
