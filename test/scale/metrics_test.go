package scale

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/meshguard/meshguard/test/testenv"
)

func TestParseMetrics(t *testing.T) {
	text := `# HELP apiserver_request_total Counter
# TYPE apiserver_request_total counter
apiserver_request_total{code="201",component="apiserver",dry_run="",group="security.istio.io",resource="peerauthentications",scope="resource",subresource="",verb="APPLY",version="v1"} 7
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="leases",scope="resource",subresource="",verb="PUT",version="v1"} 40
apiserver_request_total{code="200",component="apiserver",dry_run="All",group="",resource="configmaps",scope="resource",subresource="",verb="POST",version="v1"} 3
apiserver_request_total{code="200",group="security.meshguard.dev",resource="meshsecurityprofiles",subresource="status",verb="PATCH"} 2
apiserver_request_total{code="200",group="security.meshguard.dev",resource="meshsecurityprofiles",subresource="",verb="GET"} 5
apiserver_request_total{code="200",group="networking.k8s.io",resource="networkpolicies",subresource="",verb="LIST"} 4
workqueue_depth{name="a \"quoted\" name"} 1.5e+00
go_memstats_heap_inuse_bytes 1.048576e+06
`
	s := testenv.ParseMetrics(text)
	if got, _ := testenv.SumMetric(s, "go_memstats_heap_inuse_bytes", nil); got != 1<<20 {
		t.Errorf("an unlabelled sample reads %v, want %v", got, 1<<20)
	}
	if got, _ := testenv.SumMetric(s, "workqueue_depth", map[string]string{"name": `a "quoted" name`}); got != 1.5 {
		t.Errorf("a label with escaped quotes matches %v, want 1.5", got)
	}
	r := requestsFrom(s)
	if r.Writes() != 9 || r.Gets() != 5 || r.Lists() != 4 {
		t.Errorf("writes/GETs/LISTs of the watched resources = %d/%d/%d, want 9/5/4 (leases and dry runs are not counted): %s",
			r.Writes(), r.Gets(), r.Lists(), r)
	}
	if got := r["PATCH meshsecurityprofiles/status"]; got != 2 {
		t.Errorf("a subresource is counted as %v under resource/subresource, want 2", got)
	}
}

func TestRequestsMinusKeepsOnlyWhatChanged(t *testing.T) {
	before := Requests{"GET configmaps": 3, "APPLY networkpolicies": 10}
	after := Requests{"GET configmaps": 3, "APPLY networkpolicies": 12, "LIST secrets": 1}
	d := after.Minus(before)
	if len(d) != 2 || d["APPLY networkpolicies"] != 2 || d["LIST secrets"] != 1 {
		t.Errorf("after - before = %v, want APPLY networkpolicies=2 and LIST secrets=1", d)
	}
	if s := (Requests{}).String(); s != "none" {
		t.Errorf("no requests print as %q, want none", s)
	}
}

func TestPercentileIsNearestRank(t *testing.T) {
	var l Latencies
	for i := 100; i >= 1; i-- {
		l.Samples = append(l.Samples, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{50: 50 * time.Millisecond, 99: 99 * time.Millisecond, 100: 100 * time.Millisecond, 0: time.Millisecond} {
		if got := l.Percentile(p); got != want {
			t.Errorf("p%v of 1..100 ms = %s, want %s", p, got, want)
		}
	}
	if got := (Latencies{}).Percentile(50); got != 0 {
		t.Errorf("p50 of nothing = %s, want 0", got)
	}
}

func TestTableHasOneColumnPerN(t *testing.T) {
	a, b := &Result{Config: DefaultConfig(), ObjectsPerNS: 7}, &Result{Config: DefaultConfig(), ObjectsPerNS: 7}
	b.Config.N = 1000
	a.Meshguard.Duration, a.Bare.Duration = 20*time.Second, 10*time.Second
	var out strings.Builder
	Print(&out, []*Result{a, b})
	text := out.String()
	for _, want := range []string{"N = 100", "N = 1000", "100 (700)", "1000 (7000)", "| 2.00"} {
		if !strings.Contains(text, want) {
			t.Errorf("the table lacks %q:\n%s", want, text)
		}
	}
}

func TestFromEnvReadsAListOfN(t *testing.T) {
	t.Setenv("MESHGUARD_SCALE_N", "10, 100")
	t.Setenv("MESHGUARD_SCALE_QPS", "200")
	t.Setenv("MESHGUARD_SCALE_RUN", "meshguard,bare")
	cfgs, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if len(cfgs) != 2 || cfgs[0].N != 10 || cfgs[1].N != 100 {
		t.Fatalf("configs for N = %v, want 10 and 100", cfgs)
	}
	if cfgs[1].QPS != 200 || cfgs[1].Burst != 400 || !cfgs[1].Run[RunBare] || cfgs[1].Run[RunKyverno] {
		t.Errorf("QPS %v burst %d run %v: want 200, twice the QPS, and only meshguard and bare", cfgs[1].QPS, cfgs[1].Burst, cfgs[1].Run)
	}
	t.Setenv("MESHGUARD_SCALE_RUN", "meshguard,everything")
	if _, err := FromEnv(); err == nil || !strings.Contains(err.Error(), `"everything"`) {
		t.Errorf("an unknown scenario gives %v, want an error naming it", err)
	}
}

func TestKyvernoPolicyGeneratesEveryRenderedObject(t *testing.T) {
	pol, err := kyvernoPolicyFor("ky")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := rendered("template", "uid")
	if err != nil {
		t.Fatal(err)
	}
	rules, _ := pol.Object["spec"].(map[string]any)["rules"].([]any)
	if len(rules) != len(objs) {
		t.Fatalf("%d rules for %d rendered objects", len(rules), len(objs))
	}
	for i, r := range rules {
		g := r.(map[string]any)["generate"].(map[string]any)
		if g["kind"] != objs[i].GetKind() || g["name"] != objs[i].GetName() || g["generateExisting"] != true {
			t.Errorf("rule %d generates %v %v (generateExisting %v), want %s %s for existing namespaces", i, g["kind"], g["name"], g["generateExisting"], objs[i].GetKind(), objs[i].GetName())
		}
		data := g["data"].(map[string]any)
		if _, ok := data["spec"]; !ok {
			t.Errorf("rule %d has no spec in its data", i)
		}
	}
}

func TestRenderedObjectsDoNotDependOnTheNamespace(t *testing.T) {
	// Kyverno's policy is rendered once and stamped into every namespace: that is only the same
	// as meshguard's output if nothing but metadata.namespace depends on the namespace.
	a, err := rendered("a", "uid")
	if err != nil {
		t.Fatal(err)
	}
	b, err := rendered("b", "uid")
	if err != nil {
		t.Fatal(err)
	}
	for i := range a {
		b[i].SetNamespace("a")
		if ja, jb := mustJSON(t, a[i].Object), mustJSON(t, b[i].Object); ja != jb {
			t.Errorf("%s %s differs between namespaces:\n%s\n%s", a[i].GetKind(), a[i].GetName(), ja, jb)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
