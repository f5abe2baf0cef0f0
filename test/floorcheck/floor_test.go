// Package floorcheck checks, over generated floors × namespace profiles, what docs/cluster-profiles.md
// promises about a floor: the objects applied for a namespace admit no sender a floor's ceiling
// forbids (beyond the floor's own rules), and every namespace rule that opens something under a
// floor's default deny is reported. The verdicts come from internal/explain run on the rendered
// objects (as test/authzcheck does), not from the merge's own reasoning.
package floorcheck

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/explain"
	"github.com/meshguard/meshguard/internal/merge"
	"github.com/meshguard/meshguard/internal/render"
)

const ns = "shop"

var (
	ceilingPool = []v1alpha1.IPBlock{
		{CIDR: "0.0.0.0/0", Except: []string{"10.0.0.0/8"}},
		{CIDR: "203.0.113.0/24"},
		{CIDR: "198.51.100.0/24", Except: []string{"198.51.100.128/25"}},
	}
	teamBlocks = []string{"0.0.0.0/0", "203.0.113.0/25", "10.1.0.0/16", "198.51.100.128/25", "198.51.100.0/24"}
	// senders: addresses outside the cluster (no proxy) and pods of two namespaces.
	senders = []explain.Source{
		{IP: "203.0.113.7", Unmeshed: true}, {IP: "198.51.100.9", Unmeshed: true}, {IP: "198.51.100.200", Unmeshed: true},
		{IP: "8.8.8.8", Unmeshed: true}, {IP: "10.1.2.3", Unmeshed: true},
		{Namespace: "frontend", ServiceAccount: "web", PodLabels: map[string]string{"app": "web"}, IP: "10.1.1.1"},
		{Namespace: "ops", ServiceAccount: "prom", PodLabels: map[string]string{"app": "prom"}, IP: "10.1.4.1"},
	}
	ports = []int32{8080, 9090}
)

func scrape() v1alpha1.AuthorizationRule {
	return v1alpha1.AuthorizationRule{Name: "scrape", Action: v1alpha1.ActionAllow, From: &v1alpha1.RuleSource{Namespaces: []string{"ops"}}, To: &v1alpha1.RuleTarget{Ports: []int32{9090}}}
}

func opsIngress() v1alpha1.IngressRule {
	return v1alpha1.IngressRule{Name: "ops", From: []v1alpha1.NetworkPeer{{Namespaces: []string{"ops"}}}, Ports: []v1alpha1.NetworkPort{{Port: 9090, Protocol: "TCP"}}}
}

func genFloor(r *rand.Rand, mesh v1alpha1.Mesh) *v1alpha1.ClusterMeshSecurityProfile {
	c := &v1alpha1.ClusterMeshSecurityProfile{ObjectMeta: metav1.ObjectMeta{Name: "fl"}}
	c.Spec.Mesh = mesh
	c.Spec.MTLS = &v1alpha1.MTLSSpec{Mode: []v1alpha1.MTLSMode{v1alpha1.MTLSStrict, v1alpha1.MTLSPermissive}[r.IntN(2)]}
	if r.IntN(4) > 0 {
		c.Spec.Authorization = &v1alpha1.AuthorizationSpec{DefaultDeny: true}
		if r.IntN(2) == 0 {
			c.Spec.Authorization.Rules = []v1alpha1.AuthorizationRule{scrape()}
		}
	}
	if r.IntN(4) > 0 {
		c.Spec.NetworkPolicy = &v1alpha1.NetworkPolicySpec{DefaultDeny: []v1alpha1.PolicyDirection{v1alpha1.DirectionIngress}}
		if r.IntN(2) == 0 {
			c.Spec.NetworkPolicy.Ingress = []v1alpha1.IngressRule{opsIngress()}
		}
	}
	var ceil []v1alpha1.IPBlock
	for _, b := range ceilingPool {
		if r.IntN(2) == 0 {
			ceil = append(ceil, b)
		}
	}
	if len(ceil) > 0 {
		c.Spec.Ceilings = &v1alpha1.FloorCeilings{DeniedIngressFrom: ceil}
	}
	return c
}

func genTeam(r *rand.Rand, mesh v1alpha1.Mesh) *v1alpha1.MeshSecurityProfile {
	p := &v1alpha1.MeshSecurityProfile{ObjectMeta: metav1.ObjectMeta{Name: "team", Namespace: ns}}
	p.Spec.Mesh = mesh
	p.Spec.MTLS = &v1alpha1.MTLSSpec{Mode: []v1alpha1.MTLSMode{v1alpha1.MTLSStrict, v1alpha1.MTLSPermissive}[r.IntN(2)]}
	p.Spec.Authorization = &v1alpha1.AuthorizationSpec{DefaultDeny: true}
	for i := range r.IntN(4) {
		rule := v1alpha1.AuthorizationRule{Name: fmt.Sprintf("r%d", i), Action: v1alpha1.ActionAllow, To: &v1alpha1.RuleTarget{Ports: []int32{ports[r.IntN(2)]}}}
		switch r.IntN(3) {
		case 0:
			rule.From = &v1alpha1.RuleSource{IPBlocks: []string{teamBlocks[r.IntN(len(teamBlocks))]}}
		case 1:
			rule.From = &v1alpha1.RuleSource{Namespaces: []string{[]string{"frontend", "ops"}[r.IntN(2)]}}
		default:
			rule = scrape()
			rule.Name = fmt.Sprintf("r%d", i)
		}
		p.Spec.Authorization.Rules = append(p.Spec.Authorization.Rules, rule)
	}
	p.Spec.NetworkPolicy = &v1alpha1.NetworkPolicySpec{DefaultDeny: []v1alpha1.PolicyDirection{v1alpha1.DirectionIngress}}
	for i := range r.IntN(3) {
		rule := v1alpha1.IngressRule{Name: fmt.Sprintf("in%d", i), Ports: []v1alpha1.NetworkPort{{Port: ports[r.IntN(2)], Protocol: "TCP"}}}
		switch r.IntN(3) {
		case 0:
			rule.From = []v1alpha1.NetworkPeer{{IPBlock: &v1alpha1.IPBlock{CIDR: teamBlocks[r.IntN(len(teamBlocks))]}}}
		case 1:
			rule.From = []v1alpha1.NetworkPeer{{Namespaces: []string{"frontend"}}}
		default:
			rule = opsIngress()
			rule.Name = fmt.Sprintf("in%d", i)
		}
		p.Spec.NetworkPolicy.Ingress = append(p.Spec.NetworkPolicy.Ingress, rule)
	}
	return p
}

var nsDoc = &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}}

func objects(t *testing.T, p *v1alpha1.MeshSecurityProfile) []*unstructured.Unstructured {
	t.Helper()
	res, err := render.Render(p, render.DefaultOptions())
	if err != nil {
		t.Fatalf("render: %v\n%s", err, dump(p.Spec))
	}
	ann := nsDoc.DeepCopy()
	if len(res.NamespaceAnnotations) > 0 {
		ann.SetAnnotations(res.NamespaceAnnotations)
	}
	return append(append([]*unstructured.Unstructured(nil), res.Objects...), ann)
}

func layer(t *testing.T, objs []*unstructured.Unstructured, mesh v1alpha1.Mesh, src explain.Source, port int32, name string) explain.LayerResult {
	t.Helper()
	m := explain.MeshIstio
	if mesh == v1alpha1.MeshLinkerd {
		m = explain.MeshLinkerd
	}
	enforced := true
	res, err := explain.Evaluate(objs, explain.Request{
		From: src,
		To:   explain.Destination{Namespace: ns, PodLabels: map[string]string{"app": "api"}, Port: port, Protocol: "TCP"},
		HTTP: &explain.HTTP{Method: "GET", Path: "/"},
	}, explain.Options{Mesh: m, NetworkPolicyEnforced: &enforced})
	if err != nil {
		t.Fatalf("explain: %v", err)
	}
	for _, l := range res.Layers {
		if l.Layer == name {
			return l
		}
	}
	return explain.LayerResult{Layer: name, Decision: explain.NotApplicable}
}

func forbidden(ip string, ceilings []v1alpha1.IPBlock) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	for _, c := range ceilings {
		if !netip.MustParsePrefix(c.CIDR).Contains(a) {
			continue
		}
		out := false
		for _, e := range c.Except {
			out = out || netip.MustParsePrefix(e).Contains(a)
		}
		if !out {
			return true
		}
	}
	return false
}

// alone is a profile of the namespace with only these rules under a default deny.
func alone(mesh v1alpha1.Mesh, mode v1alpha1.MTLSMode, az []v1alpha1.AuthorizationRule, in []v1alpha1.IngressRule) *v1alpha1.MeshSecurityProfile {
	p := &v1alpha1.MeshSecurityProfile{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: ns}}
	p.Spec.Mesh = mesh
	p.Spec.MTLS = &v1alpha1.MTLSSpec{Mode: mode}
	p.Spec.Authorization = &v1alpha1.AuthorizationSpec{DefaultDeny: true, Rules: az}
	p.Spec.NetworkPolicy = &v1alpha1.NetworkPolicySpec{DefaultDeny: []v1alpha1.PolicyDirection{v1alpha1.DirectionIngress}, Ingress: in}
	return p
}

func admitted(d explain.Decision) bool { return d == explain.Allowed || d == explain.NotApplicable }

func TestFloorsCeilingsHoldAndOpeningsAreReported(t *testing.T) {
	r := rand.New(rand.NewPCG(18, 22))
	const n = 300
	checkedCeiling, checkedOpenings, reported := 0, 0, 0
	var failures []string
	fail := func(format string, args ...any) {
		if len(failures) < 5 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	for i := range n {
		mesh := []v1alpha1.Mesh{v1alpha1.MeshIstio, v1alpha1.MeshLinkerd}[r.IntN(2)]
		floor, team := genFloor(r, mesh), genTeam(r, mesh)
		res, err := merge.Merge([]*v1alpha1.ClusterMeshSecurityProfile{floor}, team)
		if err != nil {
			t.Fatalf("case %d: merge: %v", i, err)
		}
		mp := team.DeepCopy()
		mp.Spec = res.Spec
		objs := objects(t, mp)
		var ceilings []v1alpha1.IPBlock
		if floor.Spec.Ceilings != nil {
			ceilings = floor.Spec.Ceilings.DeniedIngressFrom
		}
		describe := func() string { return "floor:\n" + dump(floor.Spec) + "team:\n" + dump(team.Spec) }

		// Ceilings: a forbidden sender is denied by the mesh (Istio) and admitted by no
		// NetworkPolicy of the namespace's rules (only a floor's own rule may admit it).
		for _, src := range senders[:5] {
			if !forbidden(src.IP, ceilings) {
				continue
			}
			for _, port := range ports {
				checkedCeiling++
				if mesh == v1alpha1.MeshIstio {
					if l := layer(t, objs, mesh, src, port, explain.LayerAuthorization); l.Decision != explain.Denied {
						fail("case %d: %s:%d forbidden by a ceiling, authorization says %s (%s)\n%s", i, src.IP, port, l.Decision, l.Reason, describe())
					}
				}
				l := layer(t, objs, mesh, src, port, explain.LayerIngress)
				if l.Decision == explain.Allowed {
					for _, ref := range l.Deciding {
						if !strings.Contains(ref.Name, "-ingress-fl-") {
							fail("case %d: %s:%d forbidden by a ceiling, admitted by %s\n%s", i, src.IP, port, ref, describe())
						}
					}
				}
			}
		}

		// Openings: a namespace rule that is not reported (nor held) admits nothing the floor's
		// own rules do not admit, at the layer whose default deny the floor sets.
		isReported := map[string]bool{}
		for _, o := range res.Opened {
			isReported[o.Field] = true
			reported++
		}
		for _, h := range res.Held {
			isReported[h.Field] = true
		}
		mode := res.Spec.MTLS.Mode
		if az := floor.Spec.Authorization; az != nil && az.DefaultDeny && mesh == v1alpha1.MeshIstio {
			floorObjs := objects(t, alone(mesh, mode, scopedFloorRules(floor), nil))
			for _, rule := range team.Spec.Authorization.Rules {
				if isReported[fmt.Sprintf("spec.authorization.rules[name=%s]", rule.Name)] {
					continue
				}
				ruleObjs := objects(t, alone(mesh, mode, []v1alpha1.AuthorizationRule{rule}, nil))
				for _, src := range senders {
					for _, port := range ports {
						checkedOpenings++
						if admitted(layer(t, ruleObjs, mesh, src, port, explain.LayerAuthorization).Decision) &&
							!admitted(layer(t, floorObjs, mesh, src, port, explain.LayerAuthorization).Decision) {
							fail("case %d: rule %s admits %v:%d under the floor's default deny and is not reported\n%s", i, rule.Name, src, port, describe())
						}
					}
				}
			}
		}
		if np := floor.Spec.NetworkPolicy; np != nil && len(np.DefaultDeny) > 0 {
			floorObjs := objects(t, alone(mesh, mode, nil, np.Ingress))
			for _, rule := range team.Spec.NetworkPolicy.Ingress {
				if isReported[fmt.Sprintf("spec.networkPolicy.ingress[name=%s]", rule.Name)] {
					continue
				}
				ruleObjs := objects(t, alone(mesh, mode, nil, []v1alpha1.IngressRule{rule}))
				for _, src := range senders {
					for _, port := range ports {
						checkedOpenings++
						if admitted(layer(t, ruleObjs, mesh, src, port, explain.LayerIngress).Decision) &&
							!admitted(layer(t, floorObjs, mesh, src, port, explain.LayerIngress).Decision) {
							fail("case %d: ingress rule %s admits %v:%d under the floor's default deny and is not reported\n%s", i, rule.Name, src, port, describe())
						}
					}
				}
			}
		}
	}
	t.Logf("%d cases: %d requests from senders a ceiling forbids, %d opening checks, %d openings reported", n, checkedCeiling, checkedOpenings, reported)
	if checkedCeiling == 0 || checkedOpenings == 0 || reported == 0 {
		t.Fatalf("the sample decides nothing: %d ceiling checks, %d opening checks, %d reported", checkedCeiling, checkedOpenings, reported)
	}
	if len(failures) > 0 {
		t.Fatalf("%d failures, first ones:\n%s", len(failures), strings.Join(failures, "\n---\n"))
	}
}

func scopedFloorRules(c *v1alpha1.ClusterMeshSecurityProfile) []v1alpha1.AuthorizationRule {
	if c.Spec.Authorization == nil {
		return nil
	}
	return c.Spec.Authorization.Rules
}

func dump(v any) string {
	b, _ := yaml.Marshal(v)
	return string(b)
}
