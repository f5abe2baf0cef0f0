package scale

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/meshguard/meshguard/test/testenv"
)

// controllerName is the profile controller's name in controller-runtime's metrics.
const controllerName = "meshsecurityprofile"

// manager is the built meshguard binary running against the cluster, as a user runs it: one
// run after another (start, stop, start with other arguments) of testenv's harness.
type manager struct {
	bin, dir, kubeconfig string
	args                 []string
	// pprof serves Go's profiles (--pprof-bind-address, which older managers lack).
	pprof bool
	// run is the current (or last) run.
	run *testenv.Manager
}

// managerArgs are the client limits and workers of one run; qps < 0 removes the client-side limit.
func managerArgs(qps float64, burst, workers int, extra []string) []string {
	return append([]string{
		"--kube-api-qps=" + strconv.FormatFloat(qps, 'g', -1, 64),
		"--kube-api-burst=" + strconv.Itoa(burst),
		"--max-concurrent-reconciles=" + strconv.Itoa(workers),
	}, extra...)
}

// start runs the manager and waits until it serves /readyz.
func (m *manager) start(ctx context.Context) (err error) {
	m.run, err = testenv.StartReadyManager(ctx, testenv.ManagerConfig{
		Bin: m.bin, Kubeconfig: m.kubeconfig, Dir: m.dir, Name: "scale", Args: m.args, Pprof: m.pprof,
	}, 2*time.Minute)
	return err
}

// stop interrupts the manager as a pod's termination does: an error if it had exited (a crash)
// or does not exit cleanly; nothing when it never started.
func (m *manager) stop() error {
	if m.run == nil {
		return nil
	}
	return m.run.Stop()
}

// running says whether a run of the manager is still going.
func (m *manager) running() bool { return m.run != nil && !m.run.Exited() }

func (m *manager) pid() int { return m.run.Pid() }

// controllerState is what the manager's own metrics say about the profile controller.
type controllerState struct {
	reconciles, depth, active float64
	heapInuse                 float64
}

func (m *manager) state(ctx context.Context) (controllerState, error) {
	body, err := m.run.Metrics(ctx)
	if err != nil {
		return controllerState{}, err
	}
	s := testenv.ParseMetrics(body)
	metricSum := func(name string, match map[string]string) float64 {
		v, _ := testenv.SumMetric(s, name, match)
		return v
	}
	return controllerState{
		reconciles: metricSum("controller_runtime_reconcile_total", map[string]string{"controller": controllerName}),
		depth:      metricSum("workqueue_depth", map[string]string{"name": controllerName}),
		active:     metricSum("controller_runtime_active_workers", map[string]string{"controller": controllerName}),
		heapInuse:  metricSum("go_memstats_heap_inuse_bytes", nil),
	}, nil
}

// waitIdle waits until the manager has run at least minReconciles reconciles in total and then
// nothing was queued or running for settle. It returns the state and when the last work ended.
func (m *manager) waitIdle(ctx context.Context, minReconciles float64, settle, timeout time.Duration) (controllerState, time.Time, error) {
	deadline := time.Now().Add(timeout)
	var last controllerState
	lastChange := time.Now()
	for {
		s, err := m.state(ctx)
		if err != nil {
			return s, lastChange, err
		}
		if s.reconciles != last.reconciles || s.depth != 0 || s.active != 0 {
			lastChange = time.Now()
		}
		last = s
		if s.reconciles >= minReconciles && s.depth == 0 && s.active == 0 && time.Since(lastChange) >= settle {
			return s, lastChange, nil
		}
		if time.Now().After(deadline) {
			return s, lastChange, fmt.Errorf("the manager was not idle after %s (%.0f of at least %.0f reconciles, queue %.0f, active %.0f)",
				timeout, s.reconciles, minReconciles, s.depth, s.active)
		}
		select {
		case <-ctx.Done():
			return s, lastChange, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// profile saves a pprof profile of the manager (kind "profile?seconds=N" or "heap") to file.
func (m *manager) profile(ctx context.Context, kind, file string) error {
	return m.run.Profile(ctx, kind, file)
}
