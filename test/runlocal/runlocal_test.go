// Package runlocal runs `make run-local`'s script (hack/run-local.sh) on a hostile laptop: the
// ports it used to take are busy, a previous run is still running or died and left its processes
// behind, and the manager exits at start. The script must come up anyway or fail loudly, never say
// "meshguard is running" when it is not, and never leave a process behind.
package runlocal

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/meshguard/meshguard/test/testenv"
)

// running is what the script prints once every process it started is checked alive.
const running = "meshguard is running on the local control plane"

// script is one run of hack/run-local.sh with its own directory (testenv's process harness);
// output is stdout and stderr.
type script struct {
	*testenv.Process
	mu  sync.Mutex
	out bytes.Buffer
}

func (s *script) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.Write(p)
}

func (s *script) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// start runs the script with dir as MESHGUARD_LOCAL_DIR and extra environment variables.
func start(t *testing.T, dir string, env ...string) *script {
	t.Helper()
	assets, err := testenv.AssetsDir()
	if err != nil {
		t.Fatal(err)
	}
	s := &script{}
	cmd := exec.Command("bash", filepath.Join(testenv.RepoRoot(), "hack", "run-local.sh"))
	cmd.Dir = testenv.RepoRoot()
	cmd.Env = append(os.Environ(), "KUBEBUILDER_ASSETS="+assets, "MESHGUARD_LOCAL_DIR="+dir)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = s, s
	if s.Process, err = testenv.StartProcess(cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Interrupt(2 * time.Minute) })
	return s
}

// waitFor waits until the output contains text or the script exits; it reports which.
func (s *script) waitFor(text string) bool {
	for {
		if strings.Contains(s.output(), text) {
			return true
		}
		select {
		case <-s.Done():
			return strings.Contains(s.output(), text)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// wait waits for the script to exit and returns its exit code.
func (s *script) wait() int { return s.Wait() }

// recorded reads the processes the script recorded in dir/processes (dir/processes.stopped once
// it stopped them): name → pid.
func recorded(t *testing.T, dir string) map[string]int {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "processes"))
	if os.IsNotExist(err) {
		f, err = os.Open(filepath.Join(dir, "processes.stopped"))
	}
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	out := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		pid, err := strconv.Atoi(fields[1])
		if err != nil {
			t.Fatalf("processes: %q: %v", sc.Text(), err)
		}
		out[fields[0]] = pid
	}
	return out
}

// processAlive: the pid names a running process (not a zombie waiting for its parent).
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}

// occupy listens on a local port, as another program of the laptop does, when it is free.
func occupy(t *testing.T, port int) {
	t.Helper()
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Logf("port %d is taken already: %v", port, err)
		return
	}
	t.Cleanup(func() { _ = l.Close() })
}

// reserve binds the port without listening on it: a connection is refused, so the port looks
// free to the script, but the manager's bind fails with "address already in use" (the race of a
// port taken between the check and the bind, made certain).
func reserve(t *testing.T, port int) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Logf("port %d is taken already: %v", port, err)
	}
}

func skipWithoutControlPlane(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	assets, err := testenv.AssetsDir()
	if err != nil {
		t.Skip(err)
	}
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kubectl"} {
		if _, err := os.Stat(filepath.Join(assets, b)); err != nil {
			t.Skipf("%s not in %s: run hack/build-controlplane.sh", b, assets)
		}
	}
}

// One control plane at a time on a small machine: the three scenarios run in sequence in one test.
func TestRunLocalOnAHostileLaptop(t *testing.T) {
	skipWithoutControlPlane(t)

	t.Run("it comes up while ports 8080 and 8081 are taken, refuses a second run, and cleans up after a run that was killed", func(t *testing.T) {
		g := NewWithT(t)
		occupy(t, 8080)
		reserve(t, 8081) // looks free, cannot be bound: the first manager exits and the next ports are tried
		dir := t.TempDir()

		first := start(t, dir)
		g.Expect(first.waitFor(running)).To(BeTrue(), "the script comes up despite the busy ports:\n%s", first.output())
		g.Expect(first.output()).To(ContainSubstring("ports 8080/8081 are taken"), "it says which ports it used instead")
		g.Expect(first.output()).To(ContainSubstring("a port was taken before the manager bound it: choosing others"))
		procs := recorded(t, dir)
		g.Expect(procs).To(HaveKey("localcluster"))
		g.Expect(procs).To(HaveKey("manager"))
		g.Expect(procs).To(HaveKey("etcd"))
		g.Expect(procs).To(HaveKey("kube-apiserver"))

		second := start(t, dir)
		g.Expect(second.wait()).NotTo(Equal(0), "a second run on the same directory is refused")
		g.Expect(second.output()).To(ContainSubstring(fmt.Sprintf("a previous make run-local (pid %d) is still running", first.Pid())))
		g.Expect(second.output()).NotTo(ContainSubstring(running))
		for name, pid := range procs {
			g.Expect(processAlive(pid)).To(BeTrue(), "the refused run leaves the first run's %s alone", name)
		}

		// The first script dies without cleaning up: its processes are orphans.
		first.Kill()
		g.Expect(processAlive(procs["manager"])).To(BeTrue(), "killing the script alone leaves the manager running")

		third := start(t, dir)
		g.Expect(third.waitFor(running)).To(BeTrue(), "the next run comes up:\n%s", third.output())
		g.Expect(third.output()).To(ContainSubstring("stopping processes left running by a previous make run-local"))
		for name, pid := range procs {
			g.Expect(processAlive(pid)).To(BeFalse(), "the previous run's %s (pid %d) was stopped", name, pid)
		}
		procs = recorded(t, dir)

		g.Expect(third.Signal(syscall.SIGINT)).To(Succeed())
		g.Expect(third.wait()).To(Equal(0), "Ctrl-C stops it cleanly:\n%s", third.output())
		for name, pid := range procs {
			g.Expect(processAlive(pid)).To(BeFalse(), "Ctrl-C stopped %s (pid %d)", name, pid)
		}
	})

	t.Run("a manager that exits at start makes it fail with the manager's log, and nothing is left running", func(t *testing.T) {
		g := NewWithT(t)
		dir := t.TempDir()
		s := start(t, dir, "MESHGUARD_LOCAL_MANAGER_ARGS=--no-such-flag")
		g.Expect(s.wait()).NotTo(Equal(0))
		out := s.output()
		g.Expect(out).To(ContainSubstring("the manager exited at start"))
		g.Expect(out).To(ContainSubstring("last lines of " + filepath.Join(dir, "manager.log")))
		g.Expect(out).To(ContainSubstring("manager: unknown flag: --no-such-flag"), "the log's tail is printed")
		g.Expect(out).NotTo(ContainSubstring(running))
		procs := recorded(t, dir)
		g.Expect(procs).To(HaveKey("manager"))
		for name, pid := range procs {
			g.Expect(processAlive(pid)).To(BeFalse(), "%s (pid %d) was stopped", name, pid)
		}
	})
}
