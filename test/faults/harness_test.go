package faults

import (
	"bufio"
	"bytes"
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
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/certs/certstest"
	"github.com/meshguard/meshguard/test/testenv"
)

// The identity meshguard runs with, as in test/e2e: the service account `make deploy` binds to
// meshguard's ClusterRole (and the leader election Role in its namespace).
const (
	deployNamespace      = "meshguard-system"
	deployServiceAccount = "meshguard-controller-manager"
	istioNamespace       = "istio-system"
	linkerdNamespace     = "linkerd"
	leaseName            = "meshguard.security.meshguard.dev"
)

// env is the control plane the scenarios break, with meshguard deployed.
type env struct {
	dir                string
	cluster            *testenv.Cluster
	kubectlBin         string
	managerBin         string
	adminKubeconfig    string
	managerKubeconfig  string
	managerConfig      *rest.Config // meshguard's service account, straight to the API server
	client             client.Client
	clientset          kubernetes.Interface
	dynamic            dynamic.Interface
	rootCA             *certstest.Cert
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
	e.managerBin = filepath.Join(dir, "manager")
	build := exec.CommandContext(ctx, goBinary(), "build", "-o", e.managerBin, ".")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build the manager: %w\n%s", err, out)
	}
	c, err := testenv.StartCluster(testenv.Istio|testenv.Linkerd, dir)
	if err != nil {
		return nil, fmt.Errorf("start the cluster: %w", err)
	}
	e.cluster = c
	e.kubectlBin = filepath.Join(c.Env.BinaryAssetsDirectory, "kubectl")
	e.adminKubeconfig = filepath.Join(dir, "admin.kubeconfig")
	if err := os.WriteFile(e.adminKubeconfig, c.KubeConfig, 0o600); err != nil {
		return nil, err
	}
	// The test's own client is not the subject: no client-side limit (client-go's default is 5 QPS).
	cfg := rest.CopyConfig(c.Config)
	cfg.QPS, cfg.Burst = -1, 0
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	utilruntime.Must(apiextensionsv1.AddToScheme(scheme))
	if e.client, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return nil, err
	}
	if e.clientset, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, err
	}
	if e.dynamic, err = dynamic.NewForConfig(cfg); err != nil {
		return nil, err
	}
	if err := e.createMeshCAs(ctx); err != nil {
		return nil, err
	}
	if _, stderr, err := e.kubectl(ctx, nil, "apply", "--server-side", "--force-conflicts", "-k", "config/default"); err != nil {
		return nil, fmt.Errorf("deploy meshguard with kubectl apply -k config/default: %w: %s", err, stderr)
	}
	sa, err := c.Env.AddUser(envtest.User{
		Name:   "system:serviceaccount:" + deployNamespace + ":" + deployServiceAccount,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + deployNamespace, "system:authenticated"},
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("add the service account user: %w", err)
	}
	e.managerConfig = sa.Config()
	kubeconfig, err := sa.KubeConfig()
	if err != nil {
		return nil, err
	}
	e.managerKubeconfig = filepath.Join(dir, "manager.kubeconfig")
	return e, os.WriteFile(e.managerKubeconfig, kubeconfig, 0o600)
}

func (e *env) stop() {
	if e.cluster != nil {
		e.cluster.Stop()
	}
}

// createMeshCAs creates Istio's self-signed CA and Linkerd's trust anchor and issuer, as their
// installations do, so that certificate health does not keep profiles from Ready.
func (e *env) createMeshCAs(ctx context.Context) error {
	ca, err := certstest.MintCA(certstest.WithSubject("meshguard faults Istio root"))
	if err != nil {
		return err
	}
	e.rootCA = ca
	anchor, err := certstest.MintCA(certstest.WithSubject("root.linkerd.cluster.local"))
	if err != nil {
		return err
	}
	issuer, err := certstest.MintIntermediate(anchor, certstest.WithSubject("identity.linkerd.cluster.local"))
	if err != nil {
		return err
	}
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: istioNamespace}},
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: istioNamespace, Name: "istio-ca-secret"},
			Type:       "istio.io/ca-root",
			Data:       map[string][]byte{"ca-cert.pem": ca.CertPEM, "ca-key.pem": ca.KeyPEM},
		},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: linkerdNamespace}},
		&corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: linkerdNamespace, Name: "linkerd-identity-trust-roots"},
			Data:       map[string]string{"ca-bundle.crt": string(anchor.CertPEM)},
		},
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: linkerdNamespace, Name: "linkerd-identity-issuer"},
			Type:       corev1.SecretTypeTLS,
			Data:       map[string][]byte{"tls.crt": issuer.CertPEM, "tls.key": issuer.KeyPEM, "ca.crt": anchor.CertPEM},
		},
	} {
		if err := e.client.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %T %s/%s: %w", o, o.GetNamespace(), o.GetName(), err)
		}
	}
	return nil
}

// createNamespace creates a namespace with Istio's root certificate ConfigMap, as istiod does.
func (e *env) createNamespace(ctx context.Context, name string) error {
	if err := e.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: "istio-ca-root-cert"},
		Data:       map[string]string{"root-cert.pem": string(e.rootCA.CertPEM)},
	}
	if err := e.client.Create(ctx, cm); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create ConfigMap %s/istio-ca-root-cert: %w", name, err)
	}
	return nil
}

func (e *env) kubectl(ctx context.Context, stdin io.Reader, args ...string) (string, string, error) {
	cmd := exec.CommandContext(ctx, e.kubectlBin, args...)
	cmd.Dir = testenv.RepoRoot()
	cmd.Env = append(os.Environ(), "KUBECONFIG="+e.adminKubeconfig)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
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

// manager is one run of the built binary.
type manager struct {
	name       string
	cmd        *exec.Cmd
	done       chan struct{}
	err        error
	logPath    string
	metricsURL string
	readyzURL  string
}

// startManager runs the built binary with a kubeconfig (meshguard's service account unless
// another is given) and the metrics and probe endpoints on free local ports.
func (e *env) startManager(t testing.TB, name, kubeconfig string, args ...string) *manager {
	t.Helper()
	if kubeconfig == "" {
		kubeconfig = e.managerKubeconfig
	}
	metricsAddr, probeAddr := freeAddress(t), freeAddress(t)
	e.managersStarted++
	m := &manager{
		name:       name,
		done:       make(chan struct{}),
		logPath:    filepath.Join(e.dir, fmt.Sprintf("manager-%02d-%s.log", e.managersStarted, name)),
		metricsURL: "http://" + metricsAddr + "/metrics",
		readyzURL:  "http://" + probeAddr + "/readyz",
	}
	logf, err := os.Create(m.logPath)
	if err != nil {
		t.Fatal(err)
	}
	m.cmd = exec.Command(e.managerBin, append([]string{
		"--metrics-bind-address=" + metricsAddr,
		"--health-probe-bind-address=" + probeAddr,
	}, args...)...)
	m.cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("start the manager: %v", err)
	}
	go func() { m.err = m.cmd.Wait(); _ = logf.Close(); close(m.done) }()
	t.Cleanup(func() { _ = m.stop() })
	return m
}

// exited says whether the process has ended (a crash, unless the test ended it).
func (m *manager) exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// kill SIGKILLs the manager: no shutdown, nothing released, in-flight writes cut.
func (m *manager) kill() {
	if m.exited() {
		return
	}
	_ = m.cmd.Process.Kill()
	<-m.done
}

// stop interrupts the manager as Ctrl-C or a pod's termination does; an error unless it exits 0.
func (m *manager) stop() error {
	if m.exited() {
		return fmt.Errorf("manager %s had already exited: %v", m.name, m.err)
	}
	_ = m.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-m.done:
		if m.err != nil {
			return fmt.Errorf("manager %s did not exit cleanly on SIGINT: %w", m.name, m.err)
		}
		return nil
	case <-time.After(30 * time.Second):
		m.kill()
		return fmt.Errorf("manager %s did not exit within 30s of SIGINT", m.name)
	}
}

// leads says whether the manager holds the leader election Lease, from its own metrics.
func (m *manager) leads(ctx context.Context) bool {
	if m.exited() {
		return false
	}
	code, body, err := httpGet(ctx, m.metricsURL)
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
	f, err := os.Open(m.logPath)
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
	f, err := os.Open(m.logPath)
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
			t.Errorf("manager %s corrected drift %d times although nobody else wrote its objects, e.g.:\n%s", m.name, n, strings.Join(sample, "\n"))
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

// --- small helpers ---

func httpGet(ctx context.Context, url string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
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

func freeAddress(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

func goBinary() string {
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
