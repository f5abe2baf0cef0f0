package faults

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshguard/meshguard/test/testenv"
)

// The manager runs as in test/e2e, as the service account `make deploy` binds to meshguard's
// ClusterRole (and the leader election Role in its namespace): testenv.Cluster.Deploy.
const (
	deployNamespace = testenv.DeployNamespace
	leaseName       = "meshguard.security.meshguard.dev"
)

// env is the control plane the scenarios break, with meshguard deployed.
type env struct {
	dir                string
	cluster            *testenv.Cluster
	managerBin         string
	adminKubeconfig    string
	managerKubeconfig  string
	managerConfig      *rest.Config // meshguard's service account, straight to the API server
	client             client.Client
	clientset          kubernetes.Interface
	dynamic            dynamic.Interface
	cas                *testenv.MeshCAs
	apiServerRestarts  int
	etcdRestarts       int
	managersStarted    int
	managersKilled     int
	istioCRDsReapplied int

	mu     sync.Mutex
	stored map[string]any // storedSpec's cache
}

// startEnv builds the manager, starts the cluster (etcd, kube-apiserver, kube-controller-manager
// for garbage collection and namespace deletion), deploys meshguard's RBAC and creates the
// meshes' CAs. No manager runs yet: each scenario starts the ones it needs.
func startEnv(ctx context.Context, dir string) (_ *env, retErr error) {
	e := &env{dir: dir}
	defer func() {
		if retErr != nil {
			e.stop()
		}
	}()
	s, err := testenv.StartStack(ctx, dir, testenv.StackOptions{IstioCASubject: "meshguard faults Istio root"})
	if err != nil {
		return nil, err
	}
	e.cluster = s.Cluster
	e.managerBin, e.adminKubeconfig, e.managerKubeconfig, e.managerConfig = s.ManagerBin, s.Cluster.AdminKubeconfig, s.ManagerKubeconfig, s.ManagerConfig
	e.client, e.clientset, e.dynamic, e.cas = s.Client, s.Clientset, s.Dynamic, s.CAs
	return e, nil
}

func (e *env) stop() {
	if e.cluster != nil {
		e.cluster.Stop()
	}
}

// createNamespace creates a namespace with Istio's root certificate ConfigMap, as istiod does.
func (e *env) createNamespace(ctx context.Context, name string) error {
	return e.cas.CreateNamespace(ctx, e.client, name, nil)
}

// --- the control plane's processes ---

// pidOf finds the process of the control plane whose command line carries arg (its own
// temporary directory): envtest does not expose the processes it runs.
func pidOf(binary, arg string) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, d := range entries {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) == 0 || filepath.Base(args[0]) != binary {
			continue
		}
		for _, a := range args[1:] {
			if strings.Contains(a, arg) {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("no %s process with %q", binary, arg)
}

// killAndWait SIGKILLs a process started by envtest and waits until envtest has reaped it.
func killAndWait(pid int) error {
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill %d: %w", pid, err)
	}
	for i := 0; i < 300; i++ {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("process %d still there 30s after SIGKILL", pid)
}

// killAPIServer SIGKILLs kube-apiserver (no graceful shutdown, in-flight requests cut).
func (e *env) killAPIServer() error {
	pid, err := pidOf("kube-apiserver", e.cluster.Env.ControlPlane.APIServer.CertDir)
	if err != nil {
		return err
	}
	return killAndWait(pid)
}

// startAPIServer starts kube-apiserver again on the same port, certificates and etcd: envtest
// keeps its certificate directory and users as long as Stop is not called.
func (e *env) startAPIServer() error {
	e.apiServerRestarts++
	return e.cluster.Env.ControlPlane.APIServer.Start()
}

// killEtcd SIGKILLs etcd; its data directory stays (envtest removes it only in Stop).
func (e *env) killEtcd() error {
	pid, err := pidOf("etcd", e.cluster.Env.ControlPlane.Etcd.DataDir)
	if err != nil {
		return err
	}
	return killAndWait(pid)
}

// startEtcd starts etcd again on the same URL and data directory.
func (e *env) startEtcd() error {
	e.etcdRestarts++
	return e.cluster.Env.ControlPlane.Etcd.Start()
}

// --- meshguard's processes ---

// manager is one run of the built binary (testenv's harness).
type manager struct{ *testenv.Manager }

// startManager runs the built binary with a kubeconfig (meshguard's service account unless
// another is given) and the metrics and probe endpoints on free local ports. It does not wait for
// the manager to be ready: a scenario may start it while the API server is down.
func (e *env) startManager(t testing.TB, name, kubeconfig string, args ...string) *manager {
	t.Helper()
	if kubeconfig == "" {
		kubeconfig = e.managerKubeconfig
	}
	e.managersStarted++
	m, err := testenv.StartManager(testenv.ManagerConfig{
		Bin: e.managerBin, Kubeconfig: kubeconfig, Dir: e.dir, Name: fmt.Sprintf("%02d-%s", e.managersStarted, name), Args: args,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !m.Exited() {
			_ = m.Stop()
		}
	})
	return &manager{m}
}

// leads says whether the manager holds the leader election Lease, from its own metrics.
func (m *manager) leads(ctx context.Context) bool {
	if m.Exited() {
		return false
	}
	code, body, err := testenv.HTTPGet(ctx, m.MetricsURL)
	if err != nil || code != http.StatusOK {
		return false
	}
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "leader_election_master_status{") && strings.Contains(line, `name="`+leaseName+`"`) {
			return strings.HasSuffix(strings.TrimSpace(line), " 1")
		}
	}
	return false
}

// logErrors counts the error lines of the manager's log: controller-runtime's (JSON, level
// error) and client-go's klog lines (E0102 15:04:05...), each with the lines that contain match
// (all when match is empty).
func (m *manager) logErrors(match string) (n int, sample []string) {
	f, err := os.Open(m.LogPath)
	if err != nil {
		return 0, nil
	}
	defer func() { _ = f.Close() }()
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		line := s.Text()
		isErr := strings.Contains(line, `"level":"error"`) || (len(line) > 5 && line[0] == 'E' && isDigits(line[1:5]))
		if !isErr || (match != "" && !strings.Contains(line, match)) {
			continue
		}
		n++
		if len(sample) < 3 {
			sample = append(sample, truncate(line, 400))
		}
	}
	return n, sample
}

// driftCorrections counts the drift meshguard reported correcting (objects restored or
// recreated): in a scenario where nobody but meshguard writes its objects, any is a false alarm
// (an event, a metric and a write).
func (m *manager) driftCorrections() (n int, sample []string) {
	f, err := os.Open(m.LogPath)
	if err != nil {
		return 0, nil
	}
	defer func() { _ = f.Close() }()
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		line := s.Text()
		if strings.Contains(line, `"msg":"restored drifted object"`) || strings.Contains(line, `"msg":"recreated deleted object"`) {
			n++
			if len(sample) < 3 {
				sample = append(sample, truncate(line, 600))
			}
		}
	}
	return n, sample
}

// expectNoDrift fails the test if the managers corrected drift nobody caused.
func expectNoDrift(t *testing.T, ms ...*manager) {
	t.Helper()
	for _, m := range ms {
		if n, sample := m.driftCorrections(); n > 0 {
			t.Errorf("manager %s corrected drift %d times although nobody else wrote its objects, e.g.:\n%s", m.Name, n, strings.Join(sample, "\n"))
		}
	}
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// proxyKubeconfig writes a kubeconfig that sends the manager to a plain-HTTP local proxy (the
// proxy adds meshguard's credentials on its way to the API server).
func (e *env) proxyKubeconfig(name, url string) (string, error) {
	cfg := clientcmdConfig(url)
	path := filepath.Join(e.dir, name+".kubeconfig")
	return path, os.WriteFile(path, cfg, 0o600)
}

func clientcmdConfig(server string) []byte {
	c := clientcmdapi.NewConfig()
	c.Clusters["proxy"] = &clientcmdapi.Cluster{Server: server}
	c.AuthInfos["proxy"] = &clientcmdapi.AuthInfo{}
	c.Contexts["proxy"] = &clientcmdapi.Context{Cluster: "proxy", AuthInfo: "proxy"}
	c.CurrentContext = "proxy"
	b, _ := clientcmd.Write(*c)
	return b
}

// figures collects the numbers a run reports (printed at the end, never asserted as timings).
type figures struct {
	mu    sync.Mutex
	lines []string
}

func (f *figures) add(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lines = append(f.lines, fmt.Sprintf(format, args...))
}
