package scale

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

func TestMain(m *testing.M) {
	// envtest logs through controller-runtime; the processes under test log to files of their own.
	ctrllog.SetLogger(logr.Discard())
	os.Exit(m.Run())
}

// BenchmarkScale is `make bench`: every scenario at each MESHGUARD_SCALE_N (default 100) on a
// control plane of its own, then one table. Parameters: MESHGUARD_SCALE_N, _QPS, _BURST, _WORKERS,
// _RUN, _MANAGER_ARGS, _KYVERNO, _PPROF (see Config). Nothing here asserts a time.
func BenchmarkScale(b *testing.B) {
	cfgs, err := FromEnv()
	if err != nil {
		b.Fatal(err)
	}
	var results []*Result
	for b.Loop() {
		results = results[:0]
		for _, cfg := range cfgs {
			dir, err := os.MkdirTemp("", "meshguard-scale-")
			if err != nil {
				b.Fatal(err)
			}
			res, err := Run(b.Context(), cfg, dir, os.Stderr)
			if err != nil {
				b.Fatalf("N=%d (logs in %s): %v", cfg.N, dir, err)
			}
			_ = os.RemoveAll(dir)
			results = append(results, res)
		}
	}
	Print(os.Stdout, results)
}

// TestHarnessSmoke runs every scenario at N = 10 so that the harness cannot rot: the references
// write exactly what render produces, meshguard converges, the quiet windows are measured, drift is
// restored and the weakening policy is tried. It asserts no timing. Kyverno runs only when its
// binary was built (make kyverno).
func TestHarnessSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a control plane")
	}
	cfg := DefaultConfig()
	cfg.N, cfg.LoadProfiles, cfg.DriftEdits, cfg.WeakenTries = 10, 10, 5, 3
	cfg.WeakenTimeout = 20 * time.Second
	cfg.Timeout = 5 * time.Minute
	var log strings.Builder
	res, err := Run(t.Context(), cfg, t.TempDir(), &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	t.Log(log.String())
	want := cfg.N * res.ObjectsPerNS
	if res.ObjectsPerNS != 7 {
		t.Errorf("the bench profile renders %d objects, want 7", res.ObjectsPerNS)
	}
	for name, c := range map[string]Convergence{"meshguard": res.Meshguard, "meshguard unlimited": res.MeshguardUnlim,
		"bare": res.Bare, "bare unlimited": res.BareUnlim} {
		if c.Objects != want || c.Duration <= 0 {
			t.Errorf("%s: %d objects in %s, want %d objects", name, c.Objects, c.Duration, want)
		}
	}
	if res.Kyverno.Skipped == "" && res.Kyverno.Objects != want {
		t.Errorf("Kyverno: %d objects, want %d", res.Kyverno.Objects, want)
	}
	if res.Meshguard.RSS == 0 || res.HeapInuse == 0 {
		t.Errorf("manager memory not measured: RSS %d, heap %d", res.Meshguard.RSS, res.HeapInuse)
	}
	if res.Resync.Reconciles < cfg.N {
		t.Errorf("the resync ran %d reconciles, want at least one per profile (%d)", res.Resync.Reconciles, cfg.N)
	}
	if res.Restart.Reconciles < cfg.N || res.Restart.Duration <= 0 {
		t.Errorf("the restart ran %d reconciles in %s, want every profile re-verified", res.Restart.Reconciles, res.Restart.Duration)
	}
	if res.Converge.Requests.Writes() < want {
		t.Errorf("the API server counted %d writes while meshguard converged, want at least one per object (%d): %s",
			res.Converge.Requests.Writes(), want, res.Converge.Requests)
	}
	if len(res.Drift.Samples) != cfg.DriftEdits {
		t.Errorf("%d drift samples, want %d", len(res.Drift.Samples), cfg.DriftEdits)
	}
	if len(res.Weaken.Samples) != cfg.WeakenTries || res.Weaken.Missed != 0 {
		t.Errorf("a weakening policy was reported in %d of %d tries (waiting %s each; the periodic recheck is 5 minutes): %s",
			len(res.Weaken.Samples), cfg.WeakenTries, cfg.WeakenTimeout, latency(res.Weaken))
	}
	// Nothing written at rest, and nothing read object by object, as the API server counts it.
	for name, w := range map[string]Window{"a resync": res.Resync, "a restart": res.Restart} {
		if w.Requests.Writes() != 0 || w.Requests.Gets() != 0 {
			t.Errorf("%s of converged profiles made %d writes and %d GETs, want none: %s", name, w.Requests.Writes(), w.Requests.Gets(), w.Requests)
		}
	}
	// (A status patch computed from a profile the cache had not yet updated is retried after a GET
	// of the profile: that is not a read of a generated object.)
	for k, v := range res.Converge.Requests {
		if strings.HasPrefix(k, "GET ") && k != "GET meshsecurityprofiles" && v > 0 {
			t.Errorf("creating %d profiles read generated objects one by one (%s=%v), want none (the caches know they do not exist): %s",
				cfg.N, k, v, res.Converge.Requests)
		}
	}
	var table strings.Builder
	Print(&table, []*Result{res})
	t.Log("\n" + table.String())
}

func must(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}
