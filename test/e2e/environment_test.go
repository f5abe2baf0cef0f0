package e2e

import (
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
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/certs/certstest"
	"github.com/meshguard/meshguard/test/testenv"
)

// The identity meshguard runs with: the service account that `kubectl apply -k config/default`
// (make deploy) creates and binds to meshguard's ClusterRole. The manager runs outside the
// cluster, but with exactly the permissions it has inside.
const (
	deployNamespace      = "meshguard-system"
	deployServiceAccount = "meshguard-controller-manager"
	// identityEnv set to "admin" runs the manager as a cluster administrator instead of as the
	// deployed service account, to tell RBAC problems from others.
	identityEnv = "MESHGUARD_E2E_IDENTITY"
	// istioNamespace holds Istio's self-signed CA Secret, as istiod creates it.
	istioNamespace = "istio-system"
	// linkerdNamespace holds Linkerd's trust anchor and identity issuer, as linkerd install does.
	linkerdNamespace = "linkerd"
)

var (
	gvrProfile            = v1alpha1.GroupVersion.WithResource("meshsecurityprofiles")
	gvrPeerAuthentication = schema.GroupVersionResource{Group: "security.istio.io", Version: "v1", Resource: "peerauthentications"}
	// generatedResources are the kinds meshguard may generate that the test cluster serves
	// (Linkerd's CRDs may be unavailable; they are looked up at run time).
	generatedResources = []schema.GroupVersionResource{
		{Group: "networking.k8s.io", Version: "v1", Resource: "networkpolicies"},
		gvrPeerAuthentication,
		{Group: "security.istio.io", Version: "v1", Resource: "requestauthentications"},
		{Group: "security.istio.io", Version: "v1", Resource: "authorizationpolicies"},
		{Group: "policy.linkerd.io", Version: "v1beta3", Resource: "servers"},
		{Group: "policy.linkerd.io", Version: "v1alpha1", Resource: "authorizationpolicies"},
		{Group: "policy.linkerd.io", Version: "v1alpha1", Resource: "meshtlsauthentications"},
		{Group: "policy.linkerd.io", Version: "v1alpha1", Resource: "networkauthentications"},
		{Group: "policy.linkerd.io", Version: "v1beta3", Resource: "httproutes"},
	}
)

// environment is a local control plane with meshguard deployed and the built manager running.
// It is plain Go (errors, no Gomega) so that the Ginkgo suite and the benchmark share it.
type environment struct {
	dir     string
	cluster *testenv.Cluster
	// kubectl is the kubectl binary of the control plane assets.
	kubectlBin string
	// managerBin is the manager binary built from the repository.
	managerBin string
	// adminKubeconfig is a kubeconfig file of a cluster administrator (the user's kubectl).
	adminKubeconfig string
	// managerKubeconfig is a kubeconfig file of meshguard's service account.
	managerKubeconfig string
	metricsURL        string
	readyzURL         string

	client    client.Client
	clientset kubernetes.Interface
	dynamic   dynamic.Interface

	// rootCA is Istio's self-signed root, in istio-system and in every test namespace.
	rootCA *certstest.Cert

	manager     *exec.Cmd
	managerDone chan struct{}
	managerErr  error
	logFile     *os.File
}

// startEnvironment builds the manager, starts the cluster, deploys meshguard's CRD and RBAC, creates
// Istio's CA, starts the manager and waits until it is ready. Logs of the manager go to log and to
// dir/manager.log. On error, what was started is stopped.
func startEnvironment(ctx context.Context, dir string, log io.Writer) (_ *environment, retErr error) {
	e := &environment{dir: dir}
	defer func() {
		if retErr != nil {
			_ = e.stop()
		}
	}()

	// Build the binary a user runs: `go build` of the module's main package.
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
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	if e.client, err = client.New(c.Config, client.Options{Scheme: scheme}); err != nil {
		return nil, err
	}
	if e.clientset, err = kubernetes.NewForConfig(c.Config); err != nil {
		return nil, err
	}
	if e.dynamic, err = dynamic.NewForConfig(c.Config); err != nil {
		return nil, err
	}

	// The meshes are installed first, then meshguard.
	if err := e.createMeshCAs(ctx); err != nil {
		return nil, err
	}
	if os.Getenv(identityEnv) == "admin" {
		// Only to tell RBAC problems from others: the manager runs as a cluster administrator.
		e.managerKubeconfig = e.adminKubeconfig
	} else if err := e.deploy(ctx); err != nil {
		return nil, err
	}

	if err := e.startManager(ctx, log); err != nil {
		return nil, err
	}
	return e, nil
}

// deploy deploys meshguard as `make deploy` does (the Deployment stays without pods: there are no
// nodes) and writes a kubeconfig of its service account, which the manager then runs with.
func (e *environment) deploy(ctx context.Context) error {
	if _, stderr, err := e.kubectl(ctx, nil, "apply", "--server-side", "--force-conflicts", "-k", "config/default"); err != nil {
		return fmt.Errorf("deploy meshguard with kubectl apply -k config/default: %w: %s", err, stderr)
	}
	sa, err := e.cluster.Env.AddUser(envtest.User{
		Name:   "system:serviceaccount:" + deployNamespace + ":" + deployServiceAccount,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + deployNamespace, "system:authenticated"},
	}, nil)
	if err != nil {
		return fmt.Errorf("add the service account user: %w", err)
	}
	kubeconfig, err := sa.KubeConfig()
	if err != nil {
		return err
	}
	e.managerKubeconfig = filepath.Join(e.dir, "manager.kubeconfig")
	return os.WriteFile(e.managerKubeconfig, kubeconfig, 0o600)
}

// createMeshCAs creates what the meshes' installations create: Istio's self-signed CA Secret
// istio-ca-secret in istio-system (each test namespace gets the matching istio-ca-root-cert
// ConfigMap), and Linkerd's trust anchor ConfigMap and identity issuer Secret in linkerd.
func (e *environment) createMeshCAs(ctx context.Context) error {
	ca, err := certstest.MintCA(certstest.WithSubject("meshguard e2e Istio root"))
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
	objs := []client.Object{
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
	}
	for _, o := range objs {
		if err := e.client.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %T %s/%s: %w", o, o.GetNamespace(), o.GetName(), err)
		}
	}
	return nil
}

// createNamespace creates a namespace with Istio's root certificate ConfigMap in it, as istiod
// publishes it into every namespace. An existing namespace is fine (the samples create theirs).
func (e *environment) createNamespace(ctx context.Context, name string) error {
	err := e.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
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

// startManager runs the built binary as a user would, with the service account's kubeconfig and
// the metrics and probe endpoints on free local ports, and waits for /readyz.
func (e *environment) startManager(ctx context.Context, log io.Writer) error {
	metricsAddr, err := freeAddress()
	if err != nil {
		return err
	}
	probeAddr, err := freeAddress()
	if err != nil {
		return err
	}
	e.metricsURL = "http://" + metricsAddr + "/metrics"
	e.readyzURL = "http://" + probeAddr + "/readyz"
	if e.logFile, err = os.Create(filepath.Join(e.dir, "manager.log")); err != nil {
		return err
	}
	e.manager = exec.Command(e.managerBin,
		"--metrics-bind-address="+metricsAddr,
		"--health-probe-bind-address="+probeAddr,
	)
	e.manager.Env = append(os.Environ(), "KUBECONFIG="+e.managerKubeconfig)
	out := io.MultiWriter(e.logFile, log)
	e.manager.Stdout, e.manager.Stderr = out, out
	if err := e.manager.Start(); err != nil {
		return fmt.Errorf("start the manager: %w", err)
	}
	e.managerDone = make(chan struct{})
	go func() { e.managerErr = e.manager.Wait(); close(e.managerDone) }()

	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-e.managerDone:
			return fmt.Errorf("the manager exited before it was ready: %v; last lines of %s:\n%s", e.managerErr, e.logFile.Name(), logTail(e.logFile.Name(), 40))
		default:
		}
		if code, _, err := httpGet(ctx, e.readyzURL); err == nil && code == http.StatusOK {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the manager was not ready within 60s at %s; last lines of %s:\n%s", e.readyzURL, e.logFile.Name(), logTail(e.logFile.Name(), 40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stopManager interrupts the manager as Ctrl-C or a pod's termination does, and returns an error
// unless it exits with status 0 within 30 seconds.
func (e *environment) stopManager() error {
	if e.manager == nil || e.manager.Process == nil {
		return nil
	}
	select {
	case <-e.managerDone:
		return fmt.Errorf("the manager had already exited: %v", e.managerErr)
	default:
	}
	if err := e.manager.Process.Signal(syscall.SIGINT); err != nil {
		return fmt.Errorf("interrupt the manager: %w", err)
	}
	select {
	case <-e.managerDone:
		if e.managerErr != nil {
			return fmt.Errorf("the manager did not exit cleanly on SIGINT: %w", e.managerErr)
		}
		return nil
	case <-time.After(30 * time.Second):
		_ = e.manager.Process.Kill()
		<-e.managerDone
		return errors.New("the manager did not exit within 30s of SIGINT")
	}
}

// stop stops the manager, then the cluster; it returns the manager's shutdown error.
func (e *environment) stop() error {
	err := e.stopManager()
	if e.cluster != nil {
		e.cluster.Stop()
	}
	if e.logFile != nil {
		_ = e.logFile.Close()
	}
	return err
}

// kubectl runs the control plane's kubectl as the administrator, from the repository root (so
// that paths such as config/samples work), with stdin when it is not nil.
func (e *environment) kubectl(ctx context.Context, stdin io.Reader, args ...string) (string, string, error) {
	cmd := exec.CommandContext(ctx, e.kubectlBin, args...)
	cmd.Dir = testenv.RepoRoot()
	cmd.Env = append(os.Environ(), "KUBECONFIG="+e.adminKubeconfig)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// runManager runs the built binary with args (such as render -f ...) and returns its output and
// exit code.
func (e *environment) runManager(ctx context.Context, stdin io.Reader, args ...string) (stdout, stderr string, code int, err error) {
	cmd := exec.CommandContext(ctx, e.managerBin, args...)
	cmd.Dir = testenv.RepoRoot()
	cmd.Stdin = stdin
	var o, s bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &s
	err = cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return o.String(), s.String(), exit.ExitCode(), nil
	}
	return o.String(), s.String(), cmd.ProcessState.ExitCode(), err
}

// scrapeMetrics returns the manager's Prometheus metrics in the text format.
func (e *environment) scrapeMetrics(ctx context.Context) (string, error) {
	code, body, err := httpGet(ctx, e.metricsURL)
	if err != nil {
		return "", err
	}
	if code != http.StatusOK {
		return "", fmt.Errorf("GET %s: HTTP %d", e.metricsURL, code)
	}
	return body, nil
}

// apiServerMetrics returns kube-apiserver's own Prometheus metrics.
func (e *environment) apiServerMetrics(ctx context.Context) (string, error) {
	b, err := e.clientset.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	return string(b), err
}

// servedResources returns the generated kinds the cluster serves.
func (e *environment) servedResources() ([]schema.GroupVersionResource, error) {
	var out []schema.GroupVersionResource
	for _, gvr := range generatedResources {
		list, err := e.clientset.Discovery().ServerResourcesForGroupVersion(gvr.GroupVersion().String())
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, r := range list.APIResources {
			if r.Name == gvr.Resource {
				out = append(out, gvr)
			}
		}
	}
	return out, nil
}

func httpGet(ctx context.Context, url string) (int, string, error) {
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

// freeAddress returns a local address with a port that was free a moment ago. Nothing in the
// suite listens on a fixed port: etcd and kube-apiserver (envtest) and kube-controller-manager
// (--secure-port 0) take free ports too, so the suite runs beside `make run-local` or anything else
// on 8080/8081.
func freeAddress() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// goBinary is the go command that runs the tests (so that the manager is built with the same
// toolchain), or go from PATH.
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

// profileManifest is a MeshSecurityProfile manifest as a user writes it; spec is the YAML of the
// spec, indented by two spaces.
func profileManifest(namespace, name, spec string) string {
	return strings.Join([]string{
		"apiVersion: security.meshguard.dev/v1alpha1",
		"kind: MeshSecurityProfile",
		"metadata:",
		"  name: " + name,
		"  namespace: " + namespace,
		"spec:",
		spec,
	}, "\n") + "\n"
}
