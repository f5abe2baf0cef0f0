package explain

import (
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/dataplane"
	"github.com/meshguard/meshguard/internal/render"
	"github.com/meshguard/meshguard/internal/render/goldencase"
)

// TestAmbientAgreesWithRender: for the ambient golden cases of internal/render (a profile and the
// data plane facts of its namespace), explain answers the requests each rendered rule admits as
// Allowed and a request no rule admits as Denied, for every ambient pod the rules select, through
// ztunnel and the waypoint — exactly where render says in status.enforcement that the rule is
// enforced. Where render reports a part Unenforceable (its placeholder admits nothing, or denies
// everything), explain answers Denied. Only the mesh layers count: the NetworkPolicy layers are
// render's other half.
func TestAmbientAgreesWithRender(t *testing.T) {
	cases, err := filepath.Glob("../render/testdata/ambient/*.facts.yaml")
	if err != nil || len(cases) == 0 {
		t.Fatalf("no ambient cases: %v", err)
	}
	for _, factsPath := range cases {
		for _, variant := range []string{"", " without requestAuthentication"} {
			name := strings.TrimSuffix(filepath.Base(factsPath), ".facts.yaml") + variant
			t.Run(name, func(t *testing.T) {
				p, facts, opts := loadRenderCase(t, strings.TrimSuffix(factsPath, ".facts.yaml")+".yaml", factsPath)
				if variant != "" {
					// Without the requireToken placeholder, the L4 rules at ztunnel decide alone.
					p.Spec.RequestAuthentication = nil
				}
				agreeWithRender(t, p, facts, opts)
			})
		}
	}
}

func agreeWithRender(t *testing.T, p *v1alpha1.MeshSecurityProfile, facts *dataplane.Facts, opts render.Options) {
	t.Helper()
	{
		{
			res, err := render.Render(p, opts)
			if err != nil {
				t.Fatal(err)
			}
			points := map[string]map[string]v1alpha1.EnforcementPoint{} // part -> pod -> point (None wins)
			for _, row := range res.Enforcement {
				if points[row.Rule] == nil {
					points[row.Rule] = map[string]v1alpha1.EnforcementPoint{}
				}
				for _, pod := range row.Pods {
					if points[row.Rule][pod] != v1alpha1.EnforcedByNone {
						points[row.Rule][pod] = row.EnforcedBy
					}
				}
			}
			shadow := p.Spec.Authorization.Enforcement == v1alpha1.RuleEnforcementShadow
			checked := 0
			for _, pod := range facts.Pods {
				w := dataplane.Select(&dataplane.Facts{Namespace: facts.Namespace, NamespaceLabels: facts.NamespaceLabels, Pods: []dataplane.Pod{pod}, Services: facts.Services, Gateways: facts.Gateways}, nil)
				if len(w.Workloads) != 1 || w.Expected || (w.Workloads[0].Class != dataplane.Ambient && w.Workloads[0].Class != dataplane.Waypoint) {
					continue
				}
				// One pod at a time: its own labels select it alone among the facts' pods.
				podFacts := *facts
				podFacts.Pods = append([]dataplane.Pod{pod}, waypointPods(facts)...)
				eopts := Options{Mesh: MeshIstio, DataPlane: &podFacts}
				eopts.TrustDomain = opts.TrustDomain
				jwtNone := points["requestAuthentication"][pod.Name] == v1alpha1.EnforcedByNone
				for _, r := range p.Spec.Authorization.Rules {
					if r.Action == v1alpha1.ActionDeny || r.Selector == nil || !dataplane.Matches(r.Selector.MatchLabels, pod.Labels) {
						continue
					}
					req := admitted(r, pod)
					want := Allowed
					if points["authorization.rules["+r.Name+"]"][pod.Name] == v1alpha1.EnforcedByNone || jwtNone {
						want = Denied
					}
					if shadow && !jwtNone {
						want = Allowed
					}
					checkMesh(t, res.Objects, req, eopts, want, "rule "+r.Name+" for pod "+pod.Name)
					checked++
				}
				intruder := admitted(v1alpha1.AuthorizationRule{To: &v1alpha1.RuleTarget{Ports: []int32{8080}}}, pod)
				intruder.From = Source{Namespace: "intruder", ServiceAccount: "x", PodLabels: map[string]string{"app": "x"}}
				want := Denied
				if shadow && !jwtNone {
					want = Allowed // rules in shadow deny nothing
				}
				checkMesh(t, res.Objects, intruder, eopts, want, "a caller no rule admits, to pod "+pod.Name)
				checked++
			}
			if checked == 0 {
				t.Skip("no ambient pod in this case")
			}
		}
	}
}

// admitted is a request a rule admits to pod: from its first service account (or a pod of its
// first namespace), to its first port, method and path, carrying a token of the profile's issuer.
func admitted(r v1alpha1.AuthorizationRule, pod dataplane.Pod) Request {
	from := Source{Namespace: "frontend", ServiceAccount: "web", PodLabels: map[string]string{"app": "web"}}
	if r.From != nil {
		switch {
		case len(r.From.ServiceAccounts) > 0:
			ns, sa, _ := strings.Cut(string(r.From.ServiceAccounts[0]), "/")
			from = Source{Namespace: ns, ServiceAccount: sa, PodLabels: map[string]string{"app": sa}}
		case len(r.From.Namespaces) > 0:
			from = Source{Namespace: r.From.Namespaces[0], ServiceAccount: "any", PodLabels: map[string]string{"app": "any"}}
		}
	}
	req := Request{From: from, To: Destination{Namespace: "shop", PodLabels: pod.Labels, Port: 8080},
		HTTP: &HTTP{Method: "GET", Path: "/", Principal: "https://auth.example.com/user"}}
	if r.To != nil {
		if len(r.To.Ports) > 0 {
			req.To.Port = r.To.Ports[0]
		}
		if len(r.To.Methods) > 0 {
			req.HTTP.Method = r.To.Methods[0]
		}
		if len(r.To.Paths) > 0 {
			req.HTTP.Path = strings.ReplaceAll(r.To.Paths[0], "*", "x")
		}
	}
	return req
}

func checkMesh(t *testing.T, objects []*unstructured.Unstructured, req Request, opts Options, want Decision, what string) {
	t.Helper()
	res, err := Evaluate(objects, req, opts)
	if err != nil {
		t.Fatal(err)
	}
	got := combine(res.Layers, []string{LayerEgress, LayerIngress})
	if got != want {
		var b strings.Builder
		for _, l := range res.Layers {
			b.WriteString("\n  " + l.Layer + ": " + string(l.Decision) + " (" + l.Reason + ")")
		}
		t.Errorf("%s: got %s, want %s%s", what, got, want, b.String())
	}
}

func waypointPods(f *dataplane.Facts) []dataplane.Pod {
	var out []dataplane.Pod
	for _, p := range f.Pods {
		if _, ok := p.Labels[dataplane.LabelGatewayName]; ok {
			out = append(out, p)
		}
	}
	return out
}

func loadRenderCase(t *testing.T, profilePath, _ string) (*v1alpha1.MeshSecurityProfile, *dataplane.Facts, render.Options) {
	t.Helper()
	p, opts, err := goldencase.Load(profilePath)
	if err != nil {
		t.Fatal(err)
	}
	if opts.DataPlane == nil {
		t.Fatalf("%s: no .facts.yaml", profilePath)
	}
	return p, opts.DataPlane, opts
}
