package testenv

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
	"strings"
	"syscall"
	"time"
)

// The one harness for the built manager binary, used by test/e2e, test/faults, test/scale and
// test/runlocal (as Cluster API's test/framework is for its providers): build it, start it with
// arguments on free local ports, wait for /readyz, stop, kill, scrape its metrics and read its log.

// BuildManager builds the module's main package into dir/manager with the toolchain that runs the
// tests, as a user builds it.
func BuildManager(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "manager")
	build := exec.CommandContext(ctx, GoBinary(), "build", "-o", bin, ".")
	build.Dir = RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build the manager: %w\n%s", err, out)
	}
	return bin, nil
}

// ManagerConfig says how to run the manager.
type ManagerConfig struct {
	// Bin is the binary (BuildManager).
	Bin string
	// Kubeconfig is the file the manager finds the API server and its identity in.
	Kubeconfig string
	// Dir receives the log, manager-<Name>-<random>.log.
	Dir  string
	Name string
	// Args are added after the listener flags the harness sets.
	Args []string
	// Pprof serves Go's profiles on a free port too (--pprof-bind-address).
	Pprof bool
	// Output also receives the log when set.
	Output io.Writer
}

// Manager is one run of the manager binary.
type Manager struct {
	Name       string
	LogPath    string
	MetricsURL string
	ReadyzURL  string
	PprofURL   string
	Started    time.Time
	*Process
}

// ErrPortTaken says the manager exited because a listener's port, free when it was chosen, was
// taken before the manager bound it: test packages start control planes and managers on random
// ports at the same time.
var ErrPortTaken = errors.New("a listener's port was taken before the manager bound it")

// StartManager starts the manager with its metrics and probe endpoints (and pprof) on free
// loopback ports and returns at once, ready or not (a scenario may start it while the API server is
// down). AwaitReady waits for it; StartReadyManager does both and chooses other ports when one
// was taken in between.
func StartManager(cfg ManagerConfig) (*Manager, error) {
	addrs, err := FreeAddresses(3)
	if err != nil {
		return nil, err
	}
	m := &Manager{
		Name:       cfg.Name,
		MetricsURL: "http://" + addrs[0] + "/metrics",
		ReadyzURL:  "http://" + addrs[1] + "/readyz",
	}
	args := []string{"--metrics-bind-address=" + addrs[0], "--health-probe-bind-address=" + addrs[1]}
	if cfg.Pprof {
		m.PprofURL = "http://" + addrs[2] + "/debug/pprof/"
		args = append(args, "--pprof-bind-address="+addrs[2])
	}
	logf, err := os.CreateTemp(cfg.Dir, "manager-"+cfg.Name+"-*.log")
	if err != nil {
		return nil, err
	}
	m.LogPath = logf.Name()
	cmd := exec.Command(cfg.Bin, append(args, cfg.Args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+cfg.Kubeconfig)
	var out io.Writer = logf
	if cfg.Output != nil {
		out = io.MultiWriter(logf, cfg.Output)
	}
	cmd.Stdout, cmd.Stderr = out, out
	m.Started = time.Now()
	if m.Process, err = StartProcess(cmd, logf); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("start the manager: %w", err)
	}
	return m, nil
}

// StartReadyManager starts the manager and waits until it is ready; a port lost between choosing
// and binding it is chosen again, at most three times.
func StartReadyManager(ctx context.Context, cfg ManagerConfig, timeout time.Duration) (*Manager, error) {
	var err error
	for range 3 {
		var m *Manager
		if m, err = StartManager(cfg); err != nil {
			return nil, err
		}
		if err = m.AwaitReady(ctx, timeout); err == nil {
			return m, nil
		}
		m.Kill()
		if !errors.Is(err, ErrPortTaken) {
			return nil, err
		}
	}
	return nil, err
}

// AwaitReady waits until /readyz answers 200. If the manager exits first, the error carries the
// last lines of its log (the log may live in a directory that is gone when the test ends) and is
// ErrPortTaken when a listener's port was taken.
func (m *Manager) AwaitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-m.done:
			tail := m.LogTail(40)
			if strings.Contains(tail, "address already in use") {
				return fmt.Errorf("%w: %s", ErrPortTaken, tail)
			}
			return fmt.Errorf("manager %s exited before it was ready: %v (log %s):\n%s", m.Name, m.err, m.LogPath, tail)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		// Ready, and serving metrics too: the metrics listener is bound after the probes', and a
		// port lost to another process could otherwise answer /readyz for a manager that exited.
		if code, _, err := HTTPGet(ctx, m.ReadyzURL); err == nil && code == http.StatusOK {
			if _, _, err := HTTPGet(ctx, m.MetricsURL); err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("manager %s not ready within %s at %s (log %s):\n%s", m.Name, timeout, m.ReadyzURL, m.LogPath, m.LogTail(40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop interrupts the manager as Ctrl-C or a pod's termination does: an error unless it exits 0
// within 30 seconds (then it is killed) or if it had exited already.
func (m *Manager) Stop() error {
	if m.Exited() {
		return fmt.Errorf("manager %s had already exited: %v", m.Name, m.Err())
	}
	if err := m.Interrupt(30 * time.Second); err != nil {
		return fmt.Errorf("manager %s: %w", m.Name, err)
	}
	if m.Err() != nil {
		return fmt.Errorf("manager %s did not exit cleanly on SIGINT: %w", m.Name, m.Err())
	}
	return nil
}

// Process is a command the tests start and stop as a user would: the manager, or a script
// (test/runlocal) that runs one.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// StartProcess starts cmd; closers (its log files) are closed once it has ended.
func StartProcess(cmd *exec.Cmd, closers ...io.Closer) (*Process, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		for _, c := range closers {
			_ = c.Close()
		}
		close(p.done)
	}()
	return p, nil
}

// Exited says whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Done is closed when the process has ended; Err then says how.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is the process's exit error once it has ended.
func (p *Process) Err() error { return p.err }

// Wait waits for the process to end and returns its exit code (-1 if it could not run).
func (p *Process) Wait() int {
	<-p.done
	if p.err == nil {
		return 0
	}
	var exit *exec.ExitError
	if errors.As(p.err, &exit) {
		return exit.ExitCode()
	}
	return -1
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Signal sends the process a signal (SIGTERM as the kubelet does, for example) without waiting.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Kill SIGKILLs the process (no shutdown, nothing released, in-flight writes cut) and waits for it.
func (p *Process) Kill() {
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Interrupt sends SIGINT and waits for the process to end; after timeout it is killed and
// Interrupt says so. Nothing when it has ended already.
func (p *Process) Interrupt(timeout time.Duration) error {
	if p.Exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("did not exit within %s of SIGINT", timeout)
	}
}

// Metrics returns the manager's Prometheus metrics in the text format.
func (m *Manager) Metrics(ctx context.Context) (string, error) {
	code, body, err := HTTPGet(ctx, m.MetricsURL)
	if err != nil {
		return "", err
	}
	if code != http.StatusOK {
		return "", fmt.Errorf("GET %s: HTTP %d", m.MetricsURL, code)
	}
	return body, nil
}

// Profile saves a pprof profile of the manager (kind "profile?seconds=N", "heap") to file.
func (m *Manager) Profile(ctx context.Context, kind, file string) error {
	if m.PprofURL == "" {
		return fmt.Errorf("manager %s serves no pprof (ManagerConfig.Pprof)", m.Name)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.PprofURL+kind, nil)
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
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// LogTail returns the last n lines of the manager's log.
func (m *Manager) LogTail(n int) string { return LogTail(m.LogPath, n) }

// LogTail returns the last n lines of a log file, or why it cannot.
func LogTail(path string, n int) string {
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

// HTTPGet gets url within 10 seconds and returns the status code and body.
func HTTPGet(ctx context.Context, url string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }() // read to the end below; a close error changes nothing
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// FreeAddresses returns n distinct loopback addresses whose ports were free a moment ago. All n
// listeners are held until all are chosen, so the n differ; another process can still take one
// before the manager binds it (StartReadyManager chooses again then).
func FreeAddresses(n int) ([]string, error) {
	out := make([]string, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer func() { _ = l.Close() }()
		out = append(out, l.Addr().String())
	}
	return out, nil
}

// FreeAddress returns one loopback address whose port was free a moment ago.
func FreeAddress() (string, error) {
	a, err := FreeAddresses(1)
	if err != nil {
		return "", err
	}
	return a[0], nil
}

// GoBinary is the go command that runs the tests (so that what they build uses the same
// toolchain), or go from PATH.
func GoBinary() string {
	if root := os.Getenv("GOROOT"); root != "" {
		if p := filepath.Join(root, "bin", "go"); fileExists(p) {
			return p
		}
	}
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
