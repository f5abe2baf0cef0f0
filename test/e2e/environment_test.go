package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/test/testenv"
)

// The manager runs as the service account that `kubectl apply -k config/default` (make deploy)
// creates and binds to meshguard's ClusterRole (testenv.Cluster.Deploy): outside the cluster, but
// with exactly the permissions it has inside.
const (
	deployNamespace = testenv.DeployNamespace
	// identityEnv set to "admin" runs the manager as a cluster administrator instead of as the
	// deployed service account, to tell RBAC problems from others.
	identityEnv = "MESHGUARD_E2E_IDENTITY"
	// linkerdNamespace holds Linkerd's trust anchor and identity issuer, as linkerd install does.
	linkerdNamespace = testenv.LinkerdNamespace
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
// It is plain Go (errors, no Gomega) so that the Ginkgo suite and the benchmark share it; the
// processes are run by the one harness, testenv.
type environment struct {
	dir     string
	cluster *testenv.Cluster
	// managerBin is the manager binary built from the repository.
	managerBin string
	// adminKubeconfig is a kubeconfig file of a cluster administrator (the user's kubectl).
	adminKubeconfig string
	// managerKubeconfig is a kubeconfig file of meshguard's service account.
	managerKubeconfig string
	// log also receives the manager's output.
	log io.Writer

	client    client.Client
	clientset kubernetes.Interface
	dynamic   dynamic.Interface

	// cas are the meshes' CAs; Istio's root is in every test namespace.
	cas *testenv.MeshCAs

	manager *testenv.Manager
}

// startEnvironment builds the manager, starts the cluster, deploys meshguard's CRD and RBAC, creates
// the meshes' CAs, starts the manager and waits until it is ready. Logs of the manager go to log and
// to a file in dir. On error, what was started is stopped.
func startEnvironment(ctx context.Context, dir string, log io.Writer) (_ *environment, retErr error) {
	e := &environment{dir: dir, log: log}
	defer func() {
		if retErr != nil {
			_ = e.stop()
		}
	}()

	// The built binary, the cluster, the meshes' CAs, then meshguard's CRD and RBAC; with
	// identityEnv=admin the manager runs as a cluster administrator (only to tell RBAC problems
	// from others).
	s, err := testenv.StartStack(ctx, dir, testenv.StackOptions{
		IstioCASubject: "meshguard e2e Istio root", AsAdmin: os.Getenv(identityEnv) == "admin"})
	if err != nil {
		return nil, err
	}
	e.managerBin, e.cluster, e.adminKubeconfig, e.managerKubeconfig = s.ManagerBin, s.Cluster, s.Cluster.AdminKubeconfig, s.ManagerKubeconfig
	e.client, e.clientset, e.dynamic, e.cas = s.Client, s.Clientset, s.Dynamic, s.CAs

	if err := e.startManager(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

// createNamespace creates a namespace with Istio's root certificate ConfigMap in it, as istiod
// publishes it into every namespace. An existing namespace is fine (the samples create theirs).
func (e *environment) createNamespace(ctx context.Context, name string) error {
	return e.cas.CreateNamespace(ctx, e.client, name, nil)
}

// startManager runs the built binary as a user would, with the service account's kubeconfig and
// the metrics and probe endpoints on free local ports, and waits for /readyz.
func (e *environment) startManager(ctx context.Context) (err error) {
	e.manager, err = testenv.StartReadyManager(ctx, testenv.ManagerConfig{
		Bin: e.managerBin, Kubeconfig: e.managerKubeconfig, Dir: e.dir, Name: "e2e", Output: e.log,
	}, 60*time.Second)
	return err
}

// stopManager interrupts the manager as Ctrl-C or a pod's termination does, and returns an error
// unless it exits with status 0 within 30 seconds.
func (e *environment) stopManager() error {
	if e.manager == nil {
		return nil
	}
	return e.manager.Stop()
}

// stop stops the manager, then the cluster; it returns the manager's shutdown error.
func (e *environment) stop() error {
	err := e.stopManager()
	if e.cluster != nil {
		e.cluster.Stop()
	}
	return err
}

// kubectl runs the control plane's kubectl as the administrator, from the repository root (so
// that paths such as config/samples work), with stdin when it is not nil.
func (e *environment) kubectl(ctx context.Context, stdin io.Reader, args ...string) (string, string, error) {
	return e.cluster.Kubectl(ctx, e.adminKubeconfig, stdin, args...)
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
	return e.manager.Metrics(ctx)
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
