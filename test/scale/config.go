package scale

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Scenario names select parts of a run (MESHGUARD_SCALE_RUN).
const (
	// RunMeshguard: convergence at the limited setting, memory, resync, restart and start-up.
	RunMeshguard = "meshguard"
	// RunMeshguardUnlimited: convergence with no client-side limit.
	RunMeshguardUnlimited = "meshguard-unlimited"
	// RunDrift: drift edit→restore while 100 other profiles are created.
	RunDrift = "drift"
	// RunWeaken: a weakening foreign policy → externalPolicies and Effective=False.
	RunWeaken = "weaken"
	// RunBare: the bare client-go writer at the limited setting.
	RunBare = "bare"
	// RunBareUnlimited: the bare writer with no client-side limit.
	RunBareUnlimited = "bare-unlimited"
	// RunKyverno: Kyverno's background controller at the limited setting.
	RunKyverno = "kyverno"
)

// AllScenarios is the default selection, in the order they run.
var AllScenarios = []string{RunMeshguard, RunDrift, RunWeaken, RunMeshguardUnlimited, RunBare, RunBareUnlimited, RunKyverno}

// Config are the parameters of a run. FromEnv reads them from MESHGUARD_SCALE_* variables.
type Config struct {
	// N is the number of namespaces, each with one full Istio profile (MESHGUARD_SCALE_N; a
	// comma-separated list runs each N on a control plane of its own).
	N int
	// QPS and Burst are the client-side limits given equally to meshguard, the bare writer and
	// Kyverno (MESHGUARD_SCALE_QPS, MESHGUARD_SCALE_BURST; default: the manager's own defaults).
	QPS   float64
	Burst int
	// Workers is the concurrency of all three: meshguard's --max-concurrent-reconciles, the bare
	// writer's goroutines and Kyverno's --genWorkers (MESHGUARD_SCALE_WORKERS).
	Workers int
	// Run selects scenarios (MESHGUARD_SCALE_RUN, comma-separated; default all).
	Run map[string]bool
	// LoadProfiles are created while drift edits run (100).
	LoadProfiles int
	// DriftEdits, WeakenTries: samples of the latency scenarios (MESHGUARD_SCALE_DRIFT_EDITS, 30;
	// MESHGUARD_SCALE_WEAKEN_TRIES, 50).
	DriftEdits, WeakenTries int
	// WeakenTimeout is how long one weakening try waits (MESHGUARD_SCALE_WEAKEN_TIMEOUT, 10s);
	// after three misses in a row the scenario stops.
	WeakenTimeout time.Duration
	// ManagerArgs are extra flags for the manager (MESHGUARD_SCALE_MANAGER_ARGS), for measuring
	// what one setting buys.
	ManagerArgs []string
	// ManagerBin is a prebuilt manager to measure instead of building this tree's
	// (MESHGUARD_SCALE_MANAGER), for comparing commits.
	ManagerBin string
	// KyvernoBin is Kyverno's background-controller (MESHGUARD_SCALE_KYVERNO; default
	// bin/kyverno-<pinned version>/background-controller). Missing: the Kyverno column is skipped.
	KyvernoBin string
	// ProfileDir receives pprof CPU (during convergence) and heap profiles of the manager
	// (MESHGUARD_SCALE_PPROF); empty: none.
	ProfileDir string
	// Timeout bounds each wait for convergence (MESHGUARD_SCALE_TIMEOUT, 30m).
	Timeout time.Duration
}

// DefaultConfig is a run at N = 100 with the manager's default limits and workers (main.go).
func DefaultConfig() Config {
	run := map[string]bool{}
	for _, s := range AllScenarios {
		run[s] = true
	}
	return Config{N: 100, QPS: 200, Burst: 400, Workers: 4, Run: run, LoadProfiles: 100,
		DriftEdits: 30, WeakenTries: 50, WeakenTimeout: 10 * time.Second, Timeout: 30 * time.Minute}
}

// FromEnv returns DefaultConfig with the MESHGUARD_SCALE_* variables applied, one per N.
func FromEnv() ([]Config, error) {
	c := DefaultConfig()
	var errs []string
	ns := []int{c.N}
	if v := os.Getenv("MESHGUARD_SCALE_N"); v != "" {
		ns = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				errs = append(errs, fmt.Sprintf("MESHGUARD_SCALE_N=%q: want whole numbers of at least 1, comma-separated", v))
				break
			}
			ns = append(ns, n)
		}
	}
	intVar := func(name string, dst *int) {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				errs = append(errs, fmt.Sprintf("%s=%q: want a whole number", name, v))
				return
			}
			*dst = n
		}
	}
	burstSet := os.Getenv("MESHGUARD_SCALE_BURST") != ""
	if v := os.Getenv("MESHGUARD_SCALE_QPS"); v != "" {
		q, err := strconv.ParseFloat(v, 64)
		if err != nil || q <= 0 {
			errs = append(errs, fmt.Sprintf("MESHGUARD_SCALE_QPS=%q: want a positive number (the unlimited runs are separate columns)", v))
		} else {
			c.QPS = q
			if !burstSet {
				c.Burst = int(2 * q)
			}
		}
	}
	intVar("MESHGUARD_SCALE_BURST", &c.Burst)
	intVar("MESHGUARD_SCALE_WORKERS", &c.Workers)
	intVar("MESHGUARD_SCALE_DRIFT_EDITS", &c.DriftEdits)
	intVar("MESHGUARD_SCALE_WEAKEN_TRIES", &c.WeakenTries)
	for _, d := range []struct {
		name string
		dst  *time.Duration
	}{{"MESHGUARD_SCALE_WEAKEN_TIMEOUT", &c.WeakenTimeout}, {"MESHGUARD_SCALE_TIMEOUT", &c.Timeout}} {
		if v := os.Getenv(d.name); v != "" {
			t, err := time.ParseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s=%q: %v", d.name, v, err))
			} else {
				*d.dst = t
			}
		}
	}
	if v := os.Getenv("MESHGUARD_SCALE_RUN"); v != "" {
		c.Run = map[string]bool{}
		known := map[string]bool{}
		for _, s := range AllScenarios {
			known[s] = true
		}
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			if !known[s] {
				errs = append(errs, fmt.Sprintf("MESHGUARD_SCALE_RUN: unknown scenario %q (known: %s)", s, strings.Join(AllScenarios, ", ")))
				continue
			}
			c.Run[s] = true
		}
	}
	c.ManagerArgs = strings.Fields(os.Getenv("MESHGUARD_SCALE_MANAGER_ARGS"))
	c.KyvernoBin = os.Getenv("MESHGUARD_SCALE_KYVERNO")
	c.ManagerBin = os.Getenv("MESHGUARD_SCALE_MANAGER")
	c.ProfileDir = os.Getenv("MESHGUARD_SCALE_PPROF")
	if c.Workers == 0 {
		errs = append(errs, "MESHGUARD_SCALE_WORKERS must be at least 1")
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("scale harness configuration: %s", strings.Join(errs, "; "))
	}
	out := make([]Config, len(ns))
	for i, n := range ns {
		out[i] = c
		out[i].N = n
	}
	return out, nil
}
