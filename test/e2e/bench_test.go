package e2e

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/test/testenv"
)

// benchDeleteEvery makes every tenth edit a deletion; the others alternate the mTLS mode.
const benchDeleteEvery = 10

// benchProfile is the shop sample: seven generated objects, so that a correction shows whether
// meshguard writes only the object that drifted.
const benchProfile = `  mtls:
    mode: Strict
  authorization:
    defaultDeny: true
    rules:
    - name: web-reads-api
      selector: {matchLabels: {app: api}}
      from: {serviceAccounts: [frontend/web]}
      to: {methods: [GET, POST], paths: ["/api/*"], ports: [8080]}
  networkPolicy:
    defaultDeny: [Ingress, Egress]
    allowDNS: true
    allowMeshControlPlane: true
    ingress:
    - name: frontend-to-backend
      selector: {matchLabels: {app: backend}}
      from: [{namespaces: [frontend], podSelector: {matchLabels: {app: web}}}]
      ports: [{port: 8080, protocol: TCP}]
`

// BenchmarkDriftRestore measures drift restoration on a cluster of its own with the built manager.
// Each iteration edits a generated PeerAuthentication (spec.mtls.mode to PERMISSIVE or DISABLE,
// alternately; every tenth iteration deletes it instead) and waits until a watch sees it restored.
// The latency runs from the edit's API response to the watch event of the restored object.
//
// meshguard deliberately backs off from an object that someone keeps rewriting (after a few
// corrections within a minute it waits 2s, 4s, 8s... before restoring again), so edits rotate over
// enough profiles, each in a namespace of its own, that no object is corrected more than three
// times: the benchmark measures restoration, not the back-off. A short run on one object shows the
// back-off separately.
//
// It reports the latency's median, p90, p99 and max, and the API requests per correction:
// meshguard's own count (client-go's rest_client_requests_total) and kube-apiserver's count of
// writes by target (generated objects, profile status, events). Nothing here asserts a time.
//
//	make bench                          # 200 edits
//	MESHGUARD_BENCH_EDITS=50 make bench # fewer
func BenchmarkDriftRestore(b *testing.B) {
	ctx := b.Context()
	dir, err := os.MkdirTemp("", "meshguard-bench-")
	if err != nil {
		b.Fatal(err)
	}
	e, err := startEnvironment(ctx, dir, io.Discard)
	if err != nil {
		b.Fatalf("start the environment (logs in %s): %v", dir, err)
	}
	b.Cleanup(func() {
		if err := e.stop(); err != nil {
			b.Error(err)
		}
		if b.Failed() {
			b.Logf("logs kept in %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})

	// Profiles: enough that each PeerAuthentication is corrected at most benchCorrectionsPerObject
	// times, plus one for the back-off run.
	const profile = "baseline"
	pa := profile + "-mtls"
	targets := (plannedIterations() + benchCorrectionsPerObject - 1) / benchCorrectionsPerObject
	namespaces := make([]string, targets+1)
	var manifests strings.Builder
	for i := range namespaces {
		namespaces[i] = fmt.Sprintf("bench-%03d", i)
		if err := e.createNamespace(ctx, namespaces[i]); err != nil {
			b.Fatal(err)
		}
		manifests.WriteString("---\n" + profileManifest(namespaces[i], profile, benchProfile))
	}
	fightNamespace, namespaces := namespaces[targets], namespaces[:targets]
	if _, stderr, err := e.kubectl(ctx, strings.NewReader(manifests.String()), "apply", "--server-side", "-f", "-"); err != nil {
		b.Fatalf("kubectl apply the profiles: %v: %s", err, stderr)
	}
	timeout := fmt.Sprintf("--timeout=%ds", 60+2*len(namespaces))
	if _, stderr, err := e.kubectl(ctx, nil, "wait", "--for=condition=Ready", "msp", "--all", "-A", timeout); err != nil {
		b.Fatalf("the profiles did not become Ready: %v: %s", err, stderr)
	}
	w, err := startWatch(ctx, e, pa)
	if err != nil {
		b.Fatal(err)
	}
	defer w.stop()

	settle(ctx, e)
	before, err := takeCounts(ctx, e)
	if err != nil {
		b.Fatal(err)
	}
	var edits, deletions []time.Duration
	i := 0
	for b.Loop() {
		i++
		ns := namespaces[(i-1)%len(namespaces)]
		latency, err := editAndWait(ctx, e, w, ns, pa, i)
		if err != nil {
			b.Fatalf("edit %d of %s/%s: %v", i, ns, pa, err)
		}
		if i%benchDeleteEvery == 0 {
			deletions = append(deletions, latency)
		} else {
			edits = append(edits, latency)
		}
	}
	b.StopTimer()
	settle(ctx, e)
	after, err := takeCounts(ctx, e)
	if err != nil {
		b.Fatal(err)
	}
	all := append(append([]time.Duration(nil), edits...), deletions...)
	report(b, os.Stdout, len(namespaces), all, edits, deletions, after.minus(before))

	// The back-off: mode edits of one object, back to back.
	var fight []time.Duration
	for j := 1; j <= benchFightEdits; j++ {
		latency, err := editAndWait(ctx, e, w, fightNamespace, pa, 2*j-1) // odd: a mode edit
		if err != nil {
			b.Fatalf("back-off run, edit %d: %v", j, err)
		}
		fight = append(fight, latency)
	}
	fmt.Printf("back-off from a competing writer: %d mode edits of %s/%s back to back, each restored after\n", len(fight), fightNamespace, pa)
	for j, d := range fight {
		fmt.Printf("  edit %d: %s\n", j+1, ms(d))
	}
	fmt.Println()
}

const (
	// benchCorrectionsPerObject stays below meshguard's back-off threshold.
	benchCorrectionsPerObject = 3
	// benchFightEdits shows the first steps of the back-off (2s, 4s).
	benchFightEdits = 6
)

// plannedIterations is the N of -benchtime Nx, or 200.
func plannedIterations() int {
	if f := flag.Lookup("test.benchtime"); f != nil {
		if n, err := strconv.Atoi(strings.TrimSuffix(f.Value.String(), "x")); err == nil && strings.HasSuffix(f.Value.String(), "x") && n > 0 {
			return n
		}
	}
	return 200
}

// editAndWait makes edit number i of the PeerAuthentication (a deletion every benchDeleteEvery
// edits, else a mode edit) and returns the time until the watch saw it restored.
func editAndWait(ctx context.Context, e *environment, w *paWatch, ns, name string, i int) (time.Duration, error) {
	client := e.dynamic.Resource(gvrPeerAuthentication).Namespace(ns)
	var start time.Time
	var done func(watchEvent) bool
	if i%benchDeleteEvery == 0 {
		if err := client.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			return 0, fmt.Errorf("delete: %w", err)
		}
		start = time.Now()
		deleted := false
		done = func(ev watchEvent) bool {
			if ev.namespace != ns {
				return false
			}
			if ev.typ == watch.Deleted {
				deleted = true
				return false
			}
			return deleted && ev.mode == "STRICT"
		}
	} else {
		mode := "PERMISSIVE"
		if i%2 == 0 {
			mode = "DISABLE"
		}
		patch := fmt.Sprintf(`{"spec":{"mtls":{"mode":%q}}}`, mode)
		edited, err := client.Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: "bench-editor"})
		if err != nil {
			return 0, fmt.Errorf("patch: %w", err)
		}
		start = time.Now()
		rv, seen := edited.GetResourceVersion(), false
		done = func(ev watchEvent) bool {
			if ev.namespace != ns {
				return false
			}
			if !seen {
				seen = ev.resourceVersion == rv
				return false
			}
			return ev.typ != watch.Deleted && ev.mode == "STRICT"
		}
	}
	restored, err := w.waitFor(ctx, 60*time.Second, done)
	if err != nil {
		return 0, err
	}
	return max(restored.Sub(start), 0), nil
}

// watchEvent is what the benchmark needs of one watch event on the PeerAuthentication.
type watchEvent struct {
	typ             watch.EventType
	namespace       string
	resourceVersion string
	mode            string
	at              time.Time
}

// paWatch follows the PeerAuthentications of one name in every namespace, re-watching from the last resourceVersion when the API
// server ends the watch.
type paWatch struct {
	events chan watchEvent
	cancel context.CancelFunc
	errs   chan error
}

func startWatch(ctx context.Context, e *environment, name string) (*paWatch, error) {
	client := e.dynamic.Resource(gvrPeerAuthentication)
	list, err := client.List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &paWatch{events: make(chan watchEvent, 4096), cancel: cancel, errs: make(chan error, 1)}
	rv := list.GetResourceVersion()
	go func() {
		defer close(w.events)
		for ctx.Err() == nil {
			wi, err := client.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name, ResourceVersion: rv})
			if err != nil {
				if ctx.Err() == nil {
					w.errs <- fmt.Errorf("watch: %w", err)
				}
				return
			}
			for ev := range wi.ResultChan() {
				at := time.Now()
				u, ok := ev.Object.(*unstructured.Unstructured)
				if !ok {
					continue // a watch error or bookmark: re-watch from the last version seen
				}
				rv = u.GetResourceVersion()
				mode, _, _ := unstructured.NestedString(u.Object, "spec", "mtls", "mode")
				w.events <- watchEvent{typ: ev.Type, namespace: u.GetNamespace(), resourceVersion: rv, mode: mode, at: at}
			}
			wi.Stop()
		}
	}()
	return w, nil
}

// waitFor returns the time of the first event done accepts.
func (w *paWatch) waitFor(ctx context.Context, timeout time.Duration, done func(watchEvent) bool) (time.Time, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case ev, ok := <-w.events:
			if !ok {
				return time.Time{}, fmt.Errorf("the watch ended")
			}
			if done(ev) {
				return ev.at, nil
			}
		case err := <-w.errs:
			return time.Time{}, err
		case <-t.C:
			return time.Time{}, fmt.Errorf("not restored within %s", timeout)
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

func (w *paWatch) stop() { w.cancel() }

// counts are the counters the benchmark reads before and after the edits.
type counts struct {
	// manager counts meshguard's requests by method (client-go's rest_client_requests_total,
	// every target and response code; GET includes lists and watches).
	manager map[string]float64
	// server counts kube-apiserver's write requests (apiserver_request_total) by target.
	server map[string]float64
	// detected and corrected are meshguard's drift counters, summed over namespaces.
	detected, corrected float64
}

// Targets of write requests, as kube-apiserver counts them.
const (
	targetChildren = "generated objects"
	targetStatus   = "profile status"
	targetEvents   = "events"
	targetConflict = "profile status refused (409 Conflict)"
)

// readPrefix marks kube-apiserver's read counts in counts.server.
const readPrefix = "read "

var writeVerbs = map[string]bool{"POST": true, "PUT": true, "PATCH": true, "APPLY": true, "DELETE": true, "DELETECOLLECTION": true}

func takeCounts(ctx context.Context, e *environment) (counts, error) {
	c := counts{manager: map[string]float64{}, server: map[string]float64{}}
	text, err := e.scrapeMetrics(ctx)
	if err != nil {
		return c, err
	}
	for _, s := range testenv.ParseMetrics(text) {
		switch s.Name {
		case "rest_client_requests_total":
			c.manager[s.Labels["method"]] += s.Value
		case "meshguard_drift_detected_total":
			c.detected += s.Value
		case "meshguard_drift_corrected_total":
			c.corrected += s.Value
		}
	}
	text, err = e.apiServerMetrics(ctx)
	if err != nil {
		return c, fmt.Errorf("kube-apiserver metrics: %w", err)
	}
	children := map[string]bool{}
	for _, gvr := range generatedResources {
		children[gvr.Group+"/"+gvr.Resource] = true
	}
	for _, s := range testenv.ParseMetrics(text) {
		if s.Name != "apiserver_request_total" || s.Labels["dry_run"] != "" {
			continue
		}
		if v := s.Labels["verb"]; v == "GET" || v == "LIST" {
			res := s.Labels["resource"]
			if s.Labels["subresource"] != "" {
				res += "/" + s.Labels["subresource"]
			}
			c.server[readPrefix+v+" "+res] += s.Value
			continue
		}
		if !writeVerbs[s.Labels["verb"]] {
			continue
		}
		res := s.Labels["group"] + "/" + s.Labels["resource"]
		switch {
		case children[res]:
			c.server[targetChildren+" "+s.Labels["verb"]] += s.Value
		case res == v1alpha1.GroupVersion.Group+"/meshsecurityprofiles" && s.Labels["subresource"] == "status":
			if s.Labels["code"] == "409" {
				c.server[targetConflict] += s.Value
			} else {
				c.server[targetStatus] += s.Value
			}
		case s.Labels["resource"] == "events":
			c.server[targetEvents] += s.Value
		}
	}
	return c, nil
}

func (c counts) minus(o counts) counts {
	d := counts{manager: map[string]float64{}, server: map[string]float64{}, detected: c.detected - o.detected, corrected: c.corrected - o.corrected}
	for k, v := range c.manager {
		d.manager[k] = v - o.manager[k]
	}
	for k, v := range c.server {
		d.server[k] = v - o.server[k]
	}
	return d
}

// settle waits until meshguard has stopped writing (its write counter unchanged for two
// seconds, at most thirty), so that the counts include the status patches and events of the
// last correction.
func settle(ctx context.Context, e *environment) {
	total := func() float64 {
		text, err := e.scrapeMetrics(ctx)
		if err != nil {
			return math.NaN()
		}
		v := 0.0
		for _, s := range testenv.ParseMetrics(text) {
			if s.Name == "rest_client_requests_total" && writeVerbs[s.Labels["method"]] {
				v += s.Value
			}
		}
		return v
	}
	last, stable, deadline := total(), time.Now(), time.Now().Add(30*time.Second)
	for time.Now().Before(deadline) && time.Since(stable) < 2*time.Second {
		time.Sleep(250 * time.Millisecond)
		if v := total(); v != last {
			last, stable = v, time.Now()
		}
	}
}

// report prints the latency and write tables and reports the figures as benchmark metrics.
func report(b *testing.B, out io.Writer, profiles int, all, edits, deletions []time.Duration, d counts) {
	n := float64(len(all))
	if n == 0 {
		return
	}
	fmt.Fprintf(out, "\nmeshguard drift restoration: %d edits (%d spec.mtls.mode edits, %d deletions) of the PeerAuthentications of %d profiles of 7 objects each, in turn\n",
		len(all), len(edits), len(deletions), profiles)
	fmt.Fprintln(out, "latency: from the edit's API response to the watch event of the restored object")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tn\tmedian\tp90\tp99\tmax\t")
	for _, row := range []struct {
		name string
		d    []time.Duration
	}{{"all", all}, {"mode edits", edits}, {"deletions", deletions}} {
		if len(row.d) == 0 {
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t\n", row.name, len(row.d),
			ms(quantile(row.d, 0.5)), ms(quantile(row.d, 0.9)), ms(quantile(row.d, 0.99)), ms(quantile(row.d, 1)))
	}
	_ = tw.Flush()

	fmt.Fprintln(out, "\nAPI requests during the edits (the benchmark's own edits excluded)")
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\ttotal\tper correction\t")
	managerWrites := 0.0
	for _, m := range sortedKeys(d.manager) {
		if writeVerbs[m] {
			managerWrites += d.manager[m]
		}
	}
	fmt.Fprintf(tw, "meshguard, writes (rest_client_requests_total)\t%.0f\t%.2f\t\n", managerWrites, managerWrites/n)
	for _, m := range sortedKeys(d.manager) {
		if writeVerbs[m] && d.manager[m] != 0 {
			fmt.Fprintf(tw, "  %s\t%.0f\t%.2f\t\n", m, d.manager[m], d.manager[m]/n)
		}
	}
	fmt.Fprintf(tw, "meshguard, reads (GET: get, list, watch)\t%.0f\t%.2f\t\n", d.manager["GET"], d.manager["GET"]/n)
	// The benchmark itself patched the PeerAuthentication once per mode edit and deleted it once
	// per deletion; kube-apiserver counts those too.
	d.server[targetChildren+" PATCH"] -= float64(len(edits))
	d.server[targetChildren+" DELETE"] -= float64(len(deletions))
	children := 0.0
	for _, k := range sortedKeys(d.server) {
		if strings.HasPrefix(k, targetChildren) {
			children += d.server[k]
		}
	}
	fmt.Fprintf(tw, "kube-apiserver: %s\t%.0f\t%.2f\t\n", targetChildren, children, children/n)
	for _, k := range sortedKeys(d.server) {
		if strings.HasPrefix(k, targetChildren) && d.server[k] != 0 {
			fmt.Fprintf(tw, "  %s\t%.0f\t%.2f\t\n", strings.TrimPrefix(k, targetChildren+" "), d.server[k], d.server[k]/n)
		}
	}
	for _, k := range []string{targetStatus, targetConflict, targetEvents} {
		fmt.Fprintf(tw, "kube-apiserver: %s\t%.0f\t%.2f\t\n", k, d.server[k], d.server[k]/n)
	}
	for _, k := range sortedKeys(d.server) {
		if strings.HasPrefix(k, readPrefix) && d.server[k] > 0 {
			fmt.Fprintf(tw, "kube-apiserver: %s\t%.0f\t%.2f\t\n", strings.TrimPrefix(k, readPrefix), d.server[k], d.server[k]/n)
		}
	}
	_ = tw.Flush()
	fmt.Fprintf(out, "\nmeshguard counted %.0f drifts detected and %.0f corrected for %d edits\n\n", d.detected, d.corrected, len(all))

	b.ReportMetric(msf(quantile(all, 0.5)), "median-ms")
	b.ReportMetric(msf(quantile(all, 0.9)), "p90-ms")
	b.ReportMetric(msf(quantile(all, 0.99)), "p99-ms")
	b.ReportMetric(msf(quantile(all, 1)), "max-ms")
	b.ReportMetric(managerWrites/n, "writes/correction")
	b.ReportMetric(children/n, "object-writes/correction")
}

// quantile returns the q-quantile (nearest rank) of the durations.
func quantile(d []time.Duration, q float64) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", msf(d)) }

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
