package scale

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/uuid"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/meshguard/meshguard/test/testenv"
)

const (
	kyvernoNamespace = "kyverno"
	kyvernoPod       = "kyverno-background-controller-bench"
	kyvernoPolicy    = "meshguard-bench"
	// kyvernoPolicyLabel is the label Kyverno puts on what a policy generated.
	kyvernoPolicyLabel = "generate.kyverno.io/policy-name"
)

var gvrClusterPolicy = schema.GroupVersionResource{Group: "kyverno.io", Version: "v1", Resource: "clusterpolicies"}

// kyvernoModule is hack/kyverno, the nested module that pins Kyverno.
func kyvernoModule() string { return filepath.Join(testenv.RepoRoot(), "hack", "kyverno") }

// kyvernoVersion is the github.com/kyverno/kyverno version pinned in hack/kyverno/go.mod.
func kyvernoVersion() (string, error) {
	f, err := os.Open(filepath.Join(kyvernoModule(), "go.mod"))
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if fields := strings.Fields(s.Text()); len(fields) >= 2 && fields[0] == "github.com/kyverno/kyverno" {
			return fields[1], nil
		}
	}
	return "", fmt.Errorf("github.com/kyverno/kyverno not pinned in hack/kyverno/go.mod")
}

// kyvernoBinary is the configured binary, or the one hack/build-kyverno.sh builds; "" and a reason
// when there is none.
func kyvernoBinary(configured string) (string, string) {
	if configured != "" {
		return configured, ""
	}
	v, err := kyvernoVersion()
	if err != nil {
		return "", err.Error()
	}
	bin := filepath.Join(testenv.RepoRoot(), "bin", "kyverno-"+v, "background-controller")
	if _, err := os.Stat(bin); err != nil {
		return "", "not built (make kyverno, about 10 minutes)"
	}
	return bin, ""
}

// kyvernoCRDDirs are Kyverno's CRDs, from the module the binary is built from.
func kyvernoCRDDirs(ctx context.Context) ([]string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "github.com/kyverno/kyverno")
	cmd.Dir = kyvernoModule()
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("find the Kyverno module (go list -m in hack/kyverno): %w", err)
	}
	root := filepath.Join(strings.TrimSpace(string(out)), "config", "crds")
	var dirs []string
	for _, d := range []string{"kyverno", "policies.kyverno.io", "policyreport", "reports"} {
		dirs = append(dirs, filepath.Join(root, d))
	}
	return dirs, nil
}

// kyvernoPolicyFor is a ClusterPolicy with one generate rule per object render produces,
// generateExisting into every namespace labelled for the scenario, kept in sync as meshguard keeps
// its objects (synchronize).
func kyvernoPolicyFor(scenario string) (*unstructured.Unstructured, error) {
	objs, err := rendered("template", uuid.NewUUID())
	if err != nil {
		return nil, err
	}
	var rules []any
	for _, o := range objs {
		data := map[string]any{"metadata": map[string]any{"labels": toAny(o.GetLabels())}}
		for k, v := range o.Object {
			if k != "apiVersion" && k != "kind" && k != "metadata" {
				data[k] = v
			}
		}
		rules = append(rules, map[string]any{
			"name": strings.ToLower(o.GetKind()) + "-" + o.GetName(),
			"match": map[string]any{"any": []any{map[string]any{"resources": map[string]any{
				"kinds":    []any{"Namespace"},
				"selector": map[string]any{"matchLabels": map[string]any{benchLabel: scenario}},
			}}}},
			"generate": map[string]any{
				"generateExisting": true,
				"synchronize":      true,
				"apiVersion":       o.GetAPIVersion(),
				"kind":             o.GetKind(),
				"name":             o.GetName(),
				"namespace":        "{{request.object.metadata.name}}",
				"data":             data,
			},
		})
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
		"metadata": map[string]any{"name": kyvernoPolicy},
		"spec":     map[string]any{"background": true, "rules": rules},
	}}, nil
}

func toAny(m map[string]string) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// kyverno is Kyverno's background controller running out of cluster against the local API server.
type kyverno struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  string
}

// startKyverno installs Kyverno's CRDs and configuration and starts its background controller
// with the given limits and workers; it returns once the controller holds its leader lease.
func startKyverno(ctx context.Context, c *cluster, dir, bin string, qps float64, burst, workers int) (*kyverno, error) {
	crdDirs, err := kyvernoCRDDirs(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := envtest.InstallCRDs(c.cfg, envtest.CRDInstallOptions{Paths: crdDirs, ErrorIfPathMissing: true}); err != nil {
		return nil, fmt.Errorf("install Kyverno's CRDs: %w", err)
	}
	if err := c.createNamespaces(ctx, []string{kyvernoNamespace}, nil, false); err != nil {
		return nil, err
	}
	// Kyverno refuses to start without its configuration ConfigMaps; empty ones mean defaults.
	for _, name := range []string{"kyverno", "kyverno-metrics"} {
		_, err := c.clientset.CoreV1().ConfigMaps(kyvernoNamespace).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, err
		}
	}
	k := &kyverno{log: filepath.Join(dir, "kyverno.log")}
	logf, err := os.Create(k.log)
	if err != nil {
		return nil, err
	}
	k.cmd = exec.Command(bin,
		"--kubeconfig="+c.kubeconfig,
		"--genWorkers="+strconv.Itoa(workers),
		"--clientRateLimitQPS="+strconv.FormatFloat(qps, 'g', -1, 64),
		"--clientRateLimitBurst="+strconv.Itoa(burst),
		// No listener is opened beyond loopback: metrics off, profiling off (its default).
		"--disableMetrics=true",
		"--controllerRuntimeMetricsAddress=0",
	)
	k.cmd.Env = append(os.Environ(),
		"KYVERNO_NAMESPACE="+kyvernoNamespace, "KYVERNO_POD_NAME="+kyvernoPod,
		"KYVERNO_SERVICEACCOUNT_NAME=kyverno-background-controller", "KYVERNO_DEPLOYMENT=kyverno-background-controller",
		"INIT_CONFIG=kyverno", "METRICS_CONFIG=kyverno-metrics")
	k.cmd.Stdout, k.cmd.Stderr = logf, logf
	if err := k.cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("start Kyverno: %w", err)
	}
	k.done = make(chan struct{})
	go func() { k.err = k.cmd.Wait(); _ = logf.Close(); close(k.done) }()

	deadline := time.Now().Add(3 * time.Minute)
	for {
		select {
		case <-k.done:
			return nil, fmt.Errorf("kyverno exited before it led: %v (log: %s)", k.err, k.log)
		case <-ctx.Done():
			k.stop()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		lease, err := c.clientset.CoordinationV1().Leases(kyvernoNamespace).Get(ctx, "kyverno-background-controller", metav1.GetOptions{})
		if err == nil && lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity == kyvernoPod {
			return k, nil
		}
		if time.Now().After(deadline) {
			k.stop()
			return nil, fmt.Errorf("kyverno did not take its leader lease within 3 minutes (log: %s)", k.log)
		}
	}
}

func (k *kyverno) stop() {
	if k.cmd == nil || k.cmd.Process == nil {
		return
	}
	select {
	case <-k.done:
		return
	default:
	}
	_ = k.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-k.done:
	case <-time.After(20 * time.Second):
		_ = k.cmd.Process.Kill()
		<-k.done
	}
}

// kyvernoConverge creates the policy and waits until Kyverno generated every object in every
// namespace of the scenario; it returns the time from the policy's creation.
func kyvernoConverge(ctx context.Context, c *cluster, k *kyverno, scenario string, namespaces []string, perNS int, timeout time.Duration) (time.Duration, error) {
	pol, err := kyvernoPolicyFor(scenario)
	if err != nil {
		return 0, err
	}
	want := len(namespaces) * perNS
	wanted := sets.New(namespaces...)
	// One watch per generated resource, each counting the objects in the scenario's namespaces.
	objs, err := rendered("template", uuid.NewUUID())
	if err != nil {
		return 0, err
	}
	gvrs := map[schema.GroupVersionResource]bool{}
	for _, o := range objs {
		gvr, err := resourceOf(o)
		if err != nil {
			return 0, err
		}
		gvrs[gvr] = true
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	counts := make(chan int, 1024)
	errs := make(chan error, len(gvrs))
	for gvr := range gvrs {
		go func() {
			last := -1
			errs <- c.watchUntil(ctx, gvr, "", kyvernoPolicyLabel+"="+kyvernoPolicy, func(m map[string]*unstructured.Unstructured) bool {
				n := 0
				for _, u := range m {
					if wanted.Has(u.GetNamespace()) {
						n++
					}
				}
				if n != last {
					select {
					case counts <- n - max(last, 0):
					case <-ctx.Done():
					}
					last = n
				}
				return false
			})
		}()
	}
	start := time.Now()
	if _, err := c.dynamic.Resource(gvrClusterPolicy).Create(ctx, pol, metav1.CreateOptions{}); err != nil {
		return 0, fmt.Errorf("create the ClusterPolicy: %w", err)
	}
	total := 0
	for total < want {
		select {
		case d := <-counts:
			total += d
		case <-k.done:
			return 0, fmt.Errorf("kyverno exited: %v (log: %s)", k.err, k.log)
		case <-ctx.Done():
			return 0, fmt.Errorf("kyverno generated %d of %d objects within %s (log: %s)", total, want, timeout, k.log)
		}
	}
	return time.Since(start), nil
}
