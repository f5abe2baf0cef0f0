package scale

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/certs"
	"github.com/meshguard/meshguard/internal/drift"
	"github.com/meshguard/meshguard/test/testenv"
)

// Namespace prefixes, one per scenario, so that no writer ever sees another's objects.
const (
	prefixMeshguard      = "mg"
	prefixMeshguardLoad  = "mgload"
	prefixMeshguardUnlim = "mgu"
	prefixBare           = "bl"
	prefixBareUnlim      = "bu"
	prefixKyverno        = "ky"
)

// harness is one run: a cluster, the manager binary, the configuration, and where logs go.
type harness struct {
	cfg Config
	dir string
	log io.Writer
	c   *cluster
	mgr *manager
	// profiles counts the profiles that exist (what a restart must re-verify).
	profiles int
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(h.log, "[%s] "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// Run runs the selected scenarios at cfg.N on a control plane of its own; logs of the processes
// under test go to dir, progress to log.
func Run(ctx context.Context, cfg Config, dir string, log io.Writer) (res *Result, retErr error) {
	h := &harness{cfg: cfg, dir: dir, log: log}
	res = &Result{Config: cfg, LoadBefore: loadAverage()}
	objs, err := rendered("template", "uid")
	if err != nil {
		return nil, err
	}
	res.ObjectsPerNS = len(objs)

	bin := cfg.ManagerBin
	if bin == "" {
		if bin, err = testenv.BuildManager(ctx, dir); err != nil {
			return nil, err
		}
	}
	if h.c, err = startCluster(dir); err != nil {
		return nil, err
	}
	defer h.c.stop()
	if err := h.c.createMeshCA(ctx); err != nil {
		return nil, err
	}
	// The current build always serves pprof (an older one given by MESHGUARD_SCALE_MANAGER may not).
	h.mgr = &manager{bin: bin, dir: dir, pprof: cfg.ProfileDir != "" || cfg.ManagerBin == "", kubeconfig: h.c.kubeconfig, args: managerArgs(cfg.QPS, cfg.Burst, cfg.Workers, cfg.ManagerArgs)}
	defer func() {
		if h.mgr.running() {
			if err := h.mgr.stop(); err != nil && retErr == nil {
				retErr = err
			}
		}
	}()

	if cfg.Run[RunMeshguard] || cfg.Run[RunDrift] || cfg.Run[RunWeaken] {
		if err := h.meshguard(ctx, res); err != nil {
			return res, err
		}
	}
	if cfg.Run[RunDrift] {
		if err := h.driftUnderLoad(ctx, res); err != nil {
			return res, err
		}
	}
	if cfg.Run[RunWeaken] {
		if err := h.weaken(ctx, res); err != nil {
			return res, err
		}
	}
	if cfg.Run[RunMeshguardUnlimited] {
		if err := h.meshguardUnlimited(ctx, res); err != nil {
			return res, err
		}
	}
	if err := h.mgr.stop(); err != nil {
		return res, err
	}
	if cfg.Run[RunBare] {
		if res.Bare, err = h.bare(ctx, prefixBare, cfg.QPS, cfg.Burst); err != nil {
			return res, err
		}
	}
	if cfg.Run[RunBareUnlimited] {
		if res.BareUnlim, err = h.bare(ctx, prefixBareUnlim, -1, 0); err != nil {
			return res, err
		}
	}
	if cfg.Run[RunKyverno] {
		if res.Kyverno, err = h.kyverno(ctx); err != nil {
			return res, err
		}
	}
	res.LoadAfter = loadAverage()
	return res, nil
}

// meshguard measures convergence at the limited setting, memory, a resync and a restart.
func (h *harness) meshguard(ctx context.Context, res *Result) error {
	nss := names(prefixMeshguard, 0, h.cfg.N)
	if err := h.c.createNamespaces(ctx, nss, nil, true); err != nil {
		return err
	}
	if err := h.mgr.start(ctx); err != nil {
		return err
	}
	if _, _, err := h.mgr.waitIdle(ctx, 0, time.Second, time.Minute); err != nil {
		return err
	}
	h.logf("meshguard: %d profiles, %s", h.cfg.N, strings.Join(h.mgr.args, " "))
	before, err := h.c.apiRequests(ctx)
	if err != nil {
		return err
	}
	st0, err := h.mgr.state(ctx)
	if err != nil {
		return err
	}
	cpuDone := h.startCPUProfile(ctx, "convergence")
	d, err := h.converge(ctx, prefixMeshguard, nss)
	if err != nil {
		return err
	}
	<-cpuDone
	h.profiles += len(nss)
	res.Meshguard = Convergence{Duration: d, Objects: len(nss) * res.ObjectsPerNS}
	h.logf("meshguard: all %d Ready after %s", len(nss), d.Round(time.Millisecond))
	st, _, err := h.mgr.waitIdle(ctx, 0, 2*time.Second, h.cfg.Timeout)
	if err != nil {
		return err
	}
	res.Meshguard.RSS, res.HeapInuse = rss(h.mgr.pid()), uint64(st.heapInuse)
	res.Meshguard.PeakRSS = peakRSS(h.mgr.pid())
	after, err := h.c.apiRequests(ctx)
	if err != nil {
		return err
	}
	// The harness's own profile creations are not meshguard's.
	reqs := after.Minus(before)
	reqs["POST meshsecurityprofiles"] -= float64(len(nss))
	if reqs["POST meshsecurityprofiles"] == 0 {
		delete(reqs, "POST meshsecurityprofiles")
	}
	res.Converge = Window{Duration: d, Reconciles: int(st.reconciles - st0.reconciles), Requests: reqs}
	h.logf("convergence: %s: %s", window(res.Converge), reqs)
	if err := h.verifyObjects(ctx, nss[0], true); err != nil {
		return fmt.Errorf("meshguard's objects: %w", err)
	}
	h.saveProfile(ctx, "heap", "heap-after-convergence")
	if res.RestRSS, res.RestAnon, res.RestHeapInuse, err = h.atRest(ctx); err != nil {
		return err
	}

	if !h.cfg.Run[RunMeshguard] {
		return nil
	}
	if res.Resync, err = h.resync(ctx); err != nil {
		return err
	}
	h.logf("resync: %s: %s", window(res.Resync), res.Resync.Requests)
	if res.Restart, err = h.restart(ctx, h.mgr.args); err != nil {
		return err
	}
	h.logf("restart: %s in %s: %s", window(res.Restart), res.Restart.Duration.Round(time.Millisecond), res.Restart.Requests)
	return nil
}

// converge creates a profile in each namespace and returns the time until every one is Ready with
// observedGeneration current.
func (h *harness) converge(ctx context.Context, scenario string, nss []string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	ready := make(chan error, 1)
	go func() {
		ready <- h.c.watchUntil(ctx, gvrProfile, "", benchLabel+"="+scenario, func(m map[string]*unstructured.Unstructured) bool {
			n := 0
			for _, u := range m {
				if profileReady(u) {
					n++
				}
			}
			return n >= len(nss)
		})
	}()
	start := time.Now()
	err := parallel(ctx, 8, len(nss), func(ctx context.Context, i int) error {
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(benchProfile(nss[i], scenario))
		if err != nil {
			return err
		}
		_, err = h.c.dynamic.Resource(gvrProfile).Namespace(nss[i]).Create(ctx, &unstructured.Unstructured{Object: u}, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("create profiles: %w", err)
	}
	if err := <-ready; err != nil {
		return 0, fmt.Errorf("wait for %d profiles to be Ready (manager log in %s): %w", len(nss), h.dir, err)
	}
	return time.Since(start), nil
}

// profileReady: Ready=True for the current generation.
func profileReady(u *unstructured.Unstructured) bool {
	og, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	return og == u.GetGeneration() && conditionStatus(u, v1alpha1.ConditionReady) == "True"
}

func conditionStatus(u *unstructured.Unstructured, typ string) string {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == typ {
			s, _ := m["status"].(string)
			return s
		}
	}
	return ""
}

// verifyObjects checks that the live objects in ns are those render produces (owned by the
// namespace's profile when owned is set): the references write exactly what meshguard writes.
// Labels named in relabelled are expected to carry another value (Kyverno sets
// app.kubernetes.io/managed-by: kyverno on what it generates, whatever the policy says).
func (h *harness) verifyObjects(ctx context.Context, ns string, owned bool, relabelled ...string) error {
	uid := types.UID("")
	if owned {
		p, err := h.c.dynamic.Resource(gvrProfile).Namespace(ns).Get(ctx, profileName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		uid = p.GetUID()
	}
	want, err := rendered(ns, uid)
	if err != nil {
		return err
	}
	for _, w := range want {
		if !owned {
			w.SetOwnerReferences(nil)
		}
		lbls := w.GetLabels()
		for _, l := range relabelled {
			delete(lbls, l)
		}
		w.SetLabels(lbls)
		gvr, err := resourceOf(w)
		if err != nil {
			return err
		}
		live, err := h.c.dynamic.Resource(gvr).Namespace(ns).Get(ctx, w.GetName(), metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("%s %s/%s: %w", w.GetKind(), ns, w.GetName(), err)
		}
		if changes := drift.Compare(w, live); len(changes) > 0 {
			return fmt.Errorf("%s %s/%s differs from render: %s", w.GetKind(), ns, w.GetName(), drift.Summary(changes, 5))
		}
	}
	return nil
}

// resync makes the manager look at every profile again (a label on Istio's CA Secret, which every
// Istio profile's certificate check watches) and counts what that cost.
func (h *harness) resync(ctx context.Context) (Window, error) {
	before, err := h.c.apiRequests(ctx)
	if err != nil {
		return Window{}, err
	}
	st0, err := h.mgr.state(ctx)
	if err != nil {
		return Window{}, err
	}
	start := time.Now()
	patch := fmt.Sprintf(`{"metadata":{"labels":{"bench.meshguard.dev/resync":"%d"}}}`, start.UnixNano())
	if _, err := h.c.clientset.CoreV1().Secrets("istio-system").Patch(ctx, certs.IstioSelfSignedCASecret, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return Window{}, fmt.Errorf("touch the CA Secret: %w", err)
	}
	st, end, err := h.mgr.waitIdle(ctx, st0.reconciles+float64(h.profiles), 2*time.Second, h.cfg.Timeout)
	if err != nil {
		return Window{}, fmt.Errorf("resync: %w", err)
	}
	after, err := h.c.apiRequests(ctx)
	if err != nil {
		return Window{}, err
	}
	reqs := after.Minus(before)
	reqs["PATCH secrets"]-- // the harness's own touch
	if reqs["PATCH secrets"] == 0 {
		delete(reqs, "PATCH secrets")
	}
	return Window{Duration: end.Sub(start), Reconciles: int(st.reconciles - st0.reconciles), Requests: reqs}, nil
}

// restart stops the manager and starts it with args, and counts what re-verifying every existing
// profile cost, from the process's start until it was idle.
func (h *harness) restart(ctx context.Context, args []string) (Window, error) {
	if err := h.mgr.stop(); err != nil {
		return Window{}, err
	}
	before, err := h.c.apiRequests(ctx)
	if err != nil {
		return Window{}, err
	}
	h.mgr.args = args
	if err := h.mgr.start(ctx); err != nil {
		return Window{}, err
	}
	st, end, err := h.mgr.waitIdle(ctx, float64(h.profiles), 2*time.Second, h.cfg.Timeout)
	if err != nil {
		return Window{}, fmt.Errorf("start-up: %w", err)
	}
	after, err := h.c.apiRequests(ctx)
	if err != nil {
		return Window{}, err
	}
	return Window{Duration: end.Sub(h.mgr.run.Started), Reconciles: int(st.reconciles), Requests: after.Minus(before)}, nil
}

// driftUnderLoad edits generated PeerAuthentications (mode STRICT → PERMISSIVE) one after the
// other while LoadProfiles new profiles are being created, and measures edit → restored.
func (h *harness) driftUnderLoad(ctx context.Context, res *Result) error {
	load := names(prefixMeshguardLoad, 0, h.cfg.LoadProfiles)
	if err := h.c.createNamespaces(ctx, load, nil, true); err != nil {
		return err
	}
	start := time.Now()
	loadDone := make(chan error, 1)
	var loadTook time.Duration
	go func() {
		d, err := h.converge(ctx, prefixMeshguardLoad, load)
		loadTook = d
		loadDone <- err
	}()
	// meshguard backs off from an object corrected again and again; each object is edited at
	// most three times (see test/e2e BenchmarkDriftRestore).
	edits := min(h.cfg.DriftEdits, 3*h.cfg.N)
	for i := 0; i < edits; i++ {
		ns := fmt.Sprintf("%s-%d", prefixMeshguard, i%h.cfg.N)
		d, err := h.editAndWait(ctx, ns)
		if err != nil {
			return fmt.Errorf("drift edit %d in %s: %w", i, ns, err)
		}
		res.Drift.Samples = append(res.Drift.Samples, d)
	}
	editsTook := time.Since(start)
	if err := <-loadDone; err != nil {
		return err
	}
	h.profiles += len(load)
	res.DriftUnderLoad = fmt.Sprintf("edits done at %.1f s, load Ready at %.1f s", editsTook.Seconds(), loadTook.Seconds())
	h.logf("drift: p50 %s p99 %s; %s", res.Drift.Percentile(50), res.Drift.Percentile(99), res.DriftUnderLoad)
	return nil
}

// editAndWait weakens the namespace's generated PeerAuthentication and returns the time from the
// edit's response until a watch sees it STRICT again.
func (h *harness) editAndWait(ctx context.Context, ns string) (time.Duration, error) {
	ri := h.c.dynamic.Resource(gvrPeerAuthentication).Namespace(ns)
	name := profileName + "-mtls"
	edited, err := ri.Patch(ctx, name, types.MergePatchType, []byte(`{"spec":{"mtls":{"mode":"PERMISSIVE"}}}`), metav1.PatchOptions{})
	if err != nil {
		return 0, err
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	w, err := ri.Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String(),
		ResourceVersion: edited.GetResourceVersion()})
	if err != nil {
		return 0, err
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		u, ok := ev.Object.(*unstructured.Unstructured)
		if !ok || ev.Type == watch.Deleted {
			continue
		}
		if mode, _, _ := unstructured.NestedString(u.Object, "spec", "mtls", "mode"); mode == "STRICT" {
			return time.Since(start), nil
		}
	}
	return 0, fmt.Errorf("not restored within a minute")
}

// weaken creates a foreign PeerAuthentication that lowers a workload's mTLS to PERMISSIVE in a
// protected namespace and measures until the profile lists it in externalPolicies with
// Effective=False. Three misses in a row end the scenario.
func (h *harness) weaken(ctx context.Context, res *Result) error {
	misses := 0
	for i := 0; i < h.cfg.WeakenTries; i++ {
		ns := fmt.Sprintf("%s-%d", prefixMeshguard, i%h.cfg.N)
		name := fmt.Sprintf("bench-weak-%d", i)
		d, err := h.weakenOnce(ctx, ns, name)
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			res.Weaken.Missed++
			misses++
		case err != nil:
			return fmt.Errorf("weakening try %d in %s: %w", i, ns, err)
		default:
			res.Weaken.Samples = append(res.Weaken.Samples, d)
			misses = 0
		}
		if misses == 3 {
			res.Weaken.Note = fmt.Sprintf("stopped after 3 misses in a row (each waited %s)", h.cfg.WeakenTimeout)
			break
		}
	}
	h.logf("weaken: %s", latency(res.Weaken))
	return nil
}

func (h *harness) weakenOnce(ctx context.Context, ns, name string) (time.Duration, error) {
	pa := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{
			"selector": map[string]any{"matchLabels": map[string]any{"app": name}},
			"mtls":     map[string]any{"mode": "PERMISSIVE"},
		},
	}}
	wctx, cancel := context.WithTimeout(ctx, h.cfg.WeakenTimeout)
	defer cancel()
	seen := make(chan error, 1)
	var at time.Time
	go func() {
		seen <- h.c.watchUntil(wctx, gvrProfile, ns, benchLabel+"="+prefixMeshguard, func(m map[string]*unstructured.Unstructured) bool {
			p := m[ns+"/"+profileName]
			if p == nil || conditionStatus(p, v1alpha1.ConditionEffective) != "False" {
				return false
			}
			ext, _, _ := unstructured.NestedSlice(p.Object, "status", "externalPolicies")
			for _, e := range ext {
				if em, ok := e.(map[string]any); ok && em["name"] == name && em["kind"] == "PeerAuthentication" {
					at = time.Now()
					return true
				}
			}
			return false
		})
	}()
	ri := h.c.dynamic.Resource(gvrPeerAuthentication).Namespace(ns)
	if _, err := ri.Create(ctx, pa, metav1.CreateOptions{}); err != nil {
		return 0, err
	}
	start := time.Now()
	err := <-seen
	if derr := ri.Delete(ctx, name, metav1.DeleteOptions{}); derr != nil {
		return 0, derr
	}
	if err != nil {
		if wctx.Err() != nil {
			return 0, context.DeadlineExceeded
		}
		return 0, err
	}
	return at.Sub(start), nil
}

// meshguardUnlimited restarts the manager with no client-side limit, waits until it re-verified
// what exists, and measures convergence of N new profiles.
func (h *harness) meshguardUnlimited(ctx context.Context, res *Result) error {
	nss := names(prefixMeshguardUnlim, 0, h.cfg.N)
	if err := h.c.createNamespaces(ctx, nss, nil, true); err != nil {
		return err
	}
	if _, err := h.restart(ctx, managerArgs(-1, h.cfg.Burst, h.cfg.Workers, h.cfg.ManagerArgs)); err != nil {
		return err
	}
	h.logf("meshguard, no client limit: %d profiles", h.cfg.N)
	d, err := h.converge(ctx, prefixMeshguardUnlim, nss)
	if err != nil {
		return err
	}
	h.profiles += len(nss)
	res.MeshguardUnlim = Convergence{Duration: d, Objects: len(nss) * res.ObjectsPerNS}
	h.logf("meshguard, no client limit: all %d Ready after %s", len(nss), d.Round(time.Millisecond))
	return nil
}

// bare runs the bare writer into namespaces of its own.
func (h *harness) bare(ctx context.Context, prefix string, qps float64, burst int) (Convergence, error) {
	nss := names(prefix, 0, h.cfg.N)
	if err := h.c.createNamespaces(ctx, nss, nil, false); err != nil {
		return Convergence{}, err
	}
	d, n, err := bareWrite(ctx, h.c.cfg, qps, burst, h.cfg.Workers, nss)
	if err != nil {
		return Convergence{}, err
	}
	h.logf("bare writer (qps %g): %d objects in %s", qps, n, d.Round(time.Millisecond))
	if err := h.verifyObjects(ctx, nss[len(nss)-1], false); err != nil {
		return Convergence{}, fmt.Errorf("bare writer's objects: %w", err)
	}
	return Convergence{Duration: d, Objects: n}, nil
}

// kyverno runs Kyverno's background controller with a generateExisting ClusterPolicy into
// namespaces of its own.
func (h *harness) kyverno(ctx context.Context) (Convergence, error) {
	bin, why := kyvernoBinary(h.cfg.KyvernoBin)
	if bin == "" {
		h.logf("Kyverno: skipped: %s", why)
		return Convergence{Skipped: why}, nil
	}
	nss := names(prefixKyverno, 0, h.cfg.N)
	if err := h.c.createNamespaces(ctx, nss, map[string]string{benchLabel: prefixKyverno}, false); err != nil {
		return Convergence{}, err
	}
	k, err := startKyverno(ctx, h.c, h.dir, bin, h.cfg.QPS, h.cfg.Burst, h.cfg.Workers)
	if err != nil {
		return Convergence{}, err
	}
	defer k.stop()
	h.logf("Kyverno: leading; creating the ClusterPolicy")
	objs, _ := rendered("template", "uid")
	d, err := kyvernoConverge(ctx, h.c, k, prefixKyverno, nss, len(objs), h.cfg.Timeout)
	if err != nil {
		return Convergence{}, err
	}
	out := Convergence{Duration: d, Objects: len(nss) * len(objs), RSS: rss(k.cmd.Process.Pid), PeakRSS: peakRSS(k.cmd.Process.Pid)}
	h.logf("Kyverno: %d objects in %s, RSS %s", out.Objects, d.Round(time.Millisecond), mib(out.RSS))
	if err := h.verifyObjects(ctx, nss[len(nss)-1], false, v1alpha1.LabelManagedBy); err != nil {
		return Convergence{}, fmt.Errorf("kyverno's objects: %w", err)
	}
	return out, nil
}

// startCPUProfile records the manager's CPU for MESHGUARD_SCALE_PPROF runs; the channel closes
// when the profile is saved (at once without a profile directory).
func (h *harness) startCPUProfile(ctx context.Context, name string) <-chan struct{} {
	done := make(chan struct{})
	if h.cfg.ProfileDir == "" {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		h.saveProfile(ctx, "profile?seconds=30", "cpu-"+name)
	}()
	return done
}

func (h *harness) saveProfile(ctx context.Context, kind, name string) {
	if h.cfg.ProfileDir == "" {
		return
	}
	file := filepath.Join(h.cfg.ProfileDir, fmt.Sprintf("n%d-%s.pprof", h.cfg.N, name))
	if err := h.mgr.profile(ctx, kind, file); err != nil {
		h.logf("pprof %s: %v", kind, err)
		return
	}
	h.logf("pprof: %s", file)
}

// atRest has the manager collect its garbage (pprof's heap?gc=1, saved as heap-at-rest when
// profiles are kept) and returns its RSS and heap in use a second later: what an idle manager holds,
// since the Go runtime collects at least every 2 minutes. Zeros without pprof.
func (h *harness) atRest(ctx context.Context) (rssBytes, anon, heapInuse uint64, err error) {
	if !h.mgr.pprof {
		return 0, 0, 0, nil
	}
	file := filepath.Join(h.dir, "heap-at-rest.pprof")
	if h.cfg.ProfileDir != "" {
		file = filepath.Join(h.cfg.ProfileDir, fmt.Sprintf("n%d-heap-at-rest.pprof", h.cfg.N))
	}
	if err := h.mgr.profile(ctx, "heap?gc=1", file); err != nil {
		return 0, 0, 0, fmt.Errorf("pprof heap?gc=1: %w", err)
	}
	time.Sleep(time.Second)
	st, err := h.mgr.state(ctx)
	if err != nil {
		return 0, 0, 0, err
	}
	return rss(h.mgr.pid()), procStatus(h.mgr.pid(), "RssAnon:"), uint64(st.heapInuse), nil
}
