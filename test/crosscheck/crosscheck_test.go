package crosscheck

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/np-guard/netpol-analyzer/pkg/netpol/eval"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/internal/explain"
	"github.com/meshguard/meshguard/internal/render"
)

// sampledPort is a protocol and port a connection is checked on.
type sampledPort struct {
	proto string
	port  int32
}

var ports = []sampledPort{
	{"UDP", 53}, {"TCP", 53}, {"TCP", 80}, {"UDP", 80}, {"TCP", 8080}, {"TCP", 8085}, {"TCP", 8086},
	{"TCP", 8090}, {"TCP", 9090}, {"TCP", 9095}, {"TCP", 15012},
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// tally counts checks and keeps the first disagreements of one kind.
type tally struct {
	name     string
	disagree int
	examples []string
}

func (t *tally) add(example func() string) {
	t.disagree++
	if len(t.examples) < 5 {
		t.examples = append(t.examples, example())
	}
}

// TestRenderedNetworkPoliciesAgreeWithNetpolAnalyzerAndTheProfile renders seeded random
// profiles and checks sampled connections three ways (see doc.go). Failures print the profile
// and the connection. MESHGUARD_CROSSCHECK_SEED, _PROFILES and _SAMPLES change the run.
func TestRenderedNetworkPoliciesAgreeWithNetpolAnalyzerAndTheProfile(t *testing.T) {
	seed := uint64(envInt("MESHGUARD_CROSSCHECK_SEED", 15))
	profiles := envInt("MESHGUARD_CROSSCHECK_PROFILES", 200)
	samples := envInt("MESHGUARD_CROSSCHECK_SAMPLES", 400)
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	opts := render.DefaultOptions()
	w := newWorld(opts.LinkerdNamespace)
	nss, pods := w.coreObjects()

	var ends []end
	for i := range w.pods {
		ends = append(ends, end{pod: &w.pods[i]})
	}
	for _, ip := range w.external {
		ends = append(ends, end{ip: ip})
	}

	engineVsAnalyzer := &tally{name: "internal/explain vs netpol-analyzer"}
	intentVsAnalyzer := &tally{name: "profile intent (a rule isolates what it selects) vs netpol-analyzer"}
	literal := &tally{name: "profile read literally (rules only add) vs netpol-analyzer"}
	wider := &tally{name: "connections the analyzer allows that the profile read literally denies (wider than declared)"}
	checks, allowed := 0, 0
	for i := 0; i < profiles; i++ {
		p := genProfile(r, i)
		res, err := render.Render(p, opts)
		if err != nil || len(res.Unsupported) > 0 {
			t.Fatalf("profile %d does not render: %v %v\n%s", i, err, res, dump(p))
		}
		pe := eval.NewPolicyEngine()
		var objs []*unstructured.Unstructured
		for _, ns := range nss {
			must(t, pe.InsertObject(ns.DeepCopy()))
		}
		for _, pd := range pods {
			must(t, pe.InsertObject(pd.DeepCopy()))
		}
		for _, u := range res.Objects {
			if u.GetKind() != "NetworkPolicy" {
				continue
			}
			np := &networkingv1.NetworkPolicy{}
			must(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, np))
			must(t, pe.InsertObject(np))
			objs = append(objs, u)
		}
		objs = append(objs, w.namespaceObjects()...)

		for k := 0; k < samples; k++ {
			src, dst := ends[r.IntN(len(ends))], ends[r.IntN(len(ends))]
			if src.pod == nil && dst.pod == nil || src == dst ||
				(src.pod == nil || src.pod.namespace != profileNS) && (dst.pod == nil || dst.pod.namespace != profileNS) {
				k-- // only connections the profile's namespace takes part in
				continue
			}
			sp := ports[r.IntN(len(ports))]
			checks++

			analyzer, err := pe.CheckIfAllowed(src.String(), dst.String(), sp.proto, strconv.Itoa(int(sp.port)))
			must(t, err)
			if analyzer {
				allowed++
			}
			conn := func() string {
				return fmt.Sprintf("%s -> %s %s/%d (analyzer allows: %v)\n%s", src, dst, sp.proto, sp.port, analyzer, dump(p))
			}

			got, err := explain.Evaluate(objs, request(src, dst, sp), explain.Options{Mesh: explain.MeshNone})
			must(t, err)
			if (got.Decision == explain.Allowed) != analyzer || got.Decision == explain.Unknown {
				engineVsAnalyzer.add(func() string { return conn() + fmt.Sprintf("explain: %s %+v", got.Decision, got.Layers[:2]) })
			}
			if intent(p, opts, src, dst, sp.proto, sp.port, true) != analyzer {
				intentVsAnalyzer.add(conn)
			}
			if lit := intent(p, opts, src, dst, sp.proto, sp.port, false); lit != analyzer {
				literal.add(conn)
				if analyzer && !lit {
					wider.add(conn)
				}
			}
		}
	}
	t.Logf("seed %d: %d profiles, %d connections checked (%d allowed by netpol-analyzer)", seed, profiles, checks, allowed)
	for _, x := range []*tally{engineVsAnalyzer, intentVsAnalyzer, literal, wider} {
		t.Logf("%s: %d disagreements", x.name, x.disagree)
	}
	for _, x := range []*tally{engineVsAnalyzer, intentVsAnalyzer, wider} {
		if x.disagree > 0 {
			t.Errorf("%s: %d disagreements, first ones:\n%s", x.name, x.disagree, strings.Join(x.examples, "\n---\n"))
		}
	}
	if literal.disagree > 0 {
		// Every such case is narrower than the literal reading (the wider ones fail above): a
		// rule, allowDNS or allowMeshControlPlane in a direction the profile does not
		// default-deny still isolates the pods it selects, as the NetworkPolicy it becomes does.
		t.Logf("example of a connection the literal reading allows and the rendered policies deny:\n%s", literal.examples[0])
	}
	if checks == 0 || allowed == 0 || allowed == checks {
		t.Fatalf("the sample decides nothing: %d checks, %d allowed", checks, allowed)
	}
}

func request(src, dst end, sp sampledPort) explain.Request {
	req := explain.Request{To: explain.Destination{Port: sp.port, Protocol: sp.proto}}
	if src.pod != nil {
		req.From = explain.Source{Namespace: src.pod.namespace, PodLabels: src.pod.labels, IP: src.pod.ip}
	} else {
		req.From = explain.Source{IP: src.ip}
	}
	if dst.pod != nil {
		req.To.Namespace, req.To.PodLabels, req.To.IP = dst.pod.namespace, dst.pod.labels, dst.pod.ip
	} else {
		req.To.IP = dst.ip
	}
	return req
}

func dump(v any) string {
	b, _ := yaml.Marshal(v)
	return string(b)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
