package scale

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/meshguard/meshguard/test/testenv"
)

// controllerName is the profile controller's name in controller-runtime's metrics.
const controllerName = "meshsecurityprofile"

// manager is the built meshguard binary running against the cluster, as a user runs it.
type manager struct {
	bin, dir, kubeconfig string
	args                 []string
	cmd                  *exec.Cmd
	done                 chan struct{}
	err                  error
	metricsURL, pprofURL string
	started              time.Time
	runs                 int
	// pprof serves Go's profiles (--pprof-bind-address, which older managers lack).
	pprof bool
}

// buildManager builds the module's main package into dir.
func buildManager(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "manager")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build the manager: %w\n%s", err, out)
	}
	return bin, nil
}

// managerArgs are the client limits and workers of one run; qps < 0 removes the client-side limit.
func managerArgs(qps float64, burst, workers int, extra []string) []string {
	return append([]string{
		"--kube-api-qps=" + strconv.FormatFloat(qps, 'g', -1, 64),
		"--kube-api-burst=" + strconv.Itoa(burst),
		"--max-concurrent-reconciles=" + strconv.Itoa(workers),
	}, extra...)
}

// errPortTaken says the manager exited because a listener's port, free when it was chosen, was
// taken before the manager bound it (other test packages start control planes on random ports
// at the same time).
var errPortTaken = errors.New("a listener's port was taken before the manager bound it")

// start runs the manager and waits until it serves /readyz; a port lost to another process
// between choosing and binding it is chosen again (at most three times).
func (m *manager) start(ctx context.Context) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = m.startOnce(ctx); !errors.Is(err, errPortTaken) {
			return err
		}
	}
	return err
}

func (m *manager) startOnce(ctx context.Context) error {
	metricsAddr, err := freeAddress()
	if err != nil {
		return err
	}
	probeAddr, err := freeAddress()
	if err != nil {
		return err
	}
	pprofAddr, err := freeAddress()
	if err != nil {
		return err
	}
	m.metricsURL = "http://" + metricsAddr + "/metrics"
	m.pprofURL = "http://" + pprofAddr + "/debug/pprof/"
	m.runs++
	logf, err := os.Create(filepath.Join(m.dir, fmt.Sprintf("manager-%d.log", m.runs)))
	if err != nil {
		return err
	}
	args := []string{"--metrics-bind-address=" + metricsAddr, "--health-probe-bind-address=" + probeAddr}
	if m.pprof {
		args = append(args, "--pprof-bind-address="+pprofAddr)
	}
	args = append(args, m.args...)
	m.cmd = exec.Command(m.bin, args...)
	m.cmd.Env = append(os.Environ(), "KUBECONFIG="+m.kubeconfig)
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	m.started = time.Now()
	if err := m.cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("start the manager: %w", err)
	}
	m.done = make(chan struct{})
	go func() { m.err = m.cmd.Wait(); _ = logf.Close(); close(m.done) }()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		select {
		case <-m.done:
			// The log lives in the test's temporary directory, which is gone when the test
			// ends: say its last lines here.
			tail := logTail(logf.Name(), 30)
			if strings.Contains(tail, "address already in use") {
				return fmt.Errorf("%w: %s", errPortTaken, tail)
			}
			return fmt.Errorf("the manager exited before it was ready: %v (log: %s):\n%s", m.err, logf.Name(), tail)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if code, _, err := httpGet(ctx, "http://"+probeAddr+"/readyz"); err == nil && code == http.StatusOK {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the manager was not ready within 2 minutes (log: %s)", logf.Name())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop interrupts the manager as a pod's termination does.
func (m *manager) stop() error {
	if m.cmd == nil || m.cmd.Process == nil {
		return nil
	}
	select {
	case <-m.done:
		return fmt.Errorf("the manager had exited: %v", m.err)
	default:
	}
	_ = m.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-m.done:
		return nil
	case <-time.After(30 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
		return fmt.Errorf("the manager did not stop within 30s of SIGINT")
	}
}

func (m *manager) pid() int { return m.cmd.Process.Pid }

// controllerState is what the manager's own metrics say about the profile controller.
type controllerState struct {
	reconciles, depth, active float64
	heapInuse                 float64
}

func (m *manager) state(ctx context.Context) (controllerState, error) {
	code, body, err := httpGet(ctx, m.metricsURL)
	if err != nil {
		return controllerState{}, err
	}
	if code != http.StatusOK {
		return controllerState{}, fmt.Errorf("manager metrics: HTTP %d", code)
	}
	s := parseMetrics(body)
	return controllerState{
		reconciles: metricSum(s, "controller_runtime_reconcile_total", map[string]string{"controller": controllerName}),
		depth:      metricSum(s, "workqueue_depth", map[string]string{"name": controllerName}),
		active:     metricSum(s, "controller_runtime_active_workers", map[string]string{"controller": controllerName}),
		heapInuse:  metricSum(s, "go_memstats_heap_inuse_bytes", nil),
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
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.pprofURL+kind, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	_, err = io.Copy(f, resp.Body)
	return err
}

func httpGet(ctx context.Context, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// freeAddress returns a loopback address with a port nobody listens on.
func freeAddress() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String(), nil
}

// logTail returns the last n lines of a log file, or why it cannot.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
