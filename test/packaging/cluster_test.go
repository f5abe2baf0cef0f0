package packaging

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/meshguard/meshguard/test/testenv"
)

// cluster is the local control plane every test of this package shares (etcd and kube-apiserver
// with meshguard's CRD, the real Istio CRDs and the Prometheus Operator's ServiceMonitor and
// PrometheusRule CRDs), started once in TestMain.
var cluster struct {
	env       *testenv.Cluster
	clientset kubernetes.Interface
	dynamic   dynamic.Interface
	mapper    meta.ResettableRESTMapper
}

// root is meshguard's repository.
var root = testenv.RepoRoot()

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "meshguard-packaging-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	monitoringCRDs, err := prometheusOperatorCRDs(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "packaging:", err)
		return 1
	}
	c, err := testenv.StartCluster(testenv.Istio, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "packaging: start the cluster:", err)
		return 1
	}
	defer c.Stop()
	if _, err := envtest.InstallCRDs(c.Config, envtest.CRDInstallOptions{Paths: monitoringCRDs, ErrorIfPathMissing: true}); err != nil {
		fmt.Fprintln(os.Stderr, "packaging: install the Prometheus Operator CRDs:", err)
		return 1
	}
	cluster.env = c
	if cluster.clientset, err = kubernetes.NewForConfig(c.Config); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if cluster.dynamic, err = dynamic.NewForConfig(c.Config); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dc, err := discovery.NewDiscoveryClientForConfig(c.Config)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cluster.mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	return m.Run()
}

// prometheusOperatorCRDs generates the ServiceMonitor and PrometheusRule CRDs from the Prometheus
// Operator's own API types (github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring,
// the version go.mod pins) with controller-gen, as the Prometheus Operator generates them: the
// module proxy here does not serve the module that holds the YAML files.
func prometheusOperatorCRDs(dir string) ([]string, error) {
	out := filepath.Join(dir, "monitoring-crds")
	cmd := exec.Command("go", "tool", "controller-gen", "crd:crdVersions=v1,maxDescLen=0",
		"paths=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1",
		"output:crd:dir="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("controller-gen the monitoring.coreos.com CRDs: %w\n%s", err, b)
	}
	var paths []string
	for _, n := range []string{"monitoring.coreos.com_servicemonitors.yaml", "monitoring.coreos.com_prometheusrules.yaml"} {
		paths = append(paths, filepath.Join(out, n))
	}
	return paths, nil
}

// ensureNamespace creates a namespace (for real: server-side dry-run of namespaced objects needs
// their namespace to exist), with labels when given.
func ensureNamespace(t *testing.T, name string, labels map[string]string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	_, err := cluster.clientset.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

// dryRunApply sends every object to the API server as a server-side apply with dryRun=All: the
// API server decodes, defaults, validates (OpenAPI schema, CEL rules) and admits it, and writes
// nothing. It returns one error per object that was refused.
func dryRunApply(t *testing.T, objs []*unstructured.Unstructured) []error {
	t.Helper()
	var errs []error
	for _, u := range objs {
		gvk := u.GroupVersionKind()
		m, err := cluster.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			cluster.mapper.Reset()
			if m, err = cluster.mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
				errs = append(errs, fmt.Errorf("%s %s: the API server does not serve it: %w", gvk, u.GetName(), err))
				continue
			}
		}
		var ri dynamic.ResourceInterface = cluster.dynamic.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			if u.GetNamespace() == "" {
				errs = append(errs, fmt.Errorf("%s %s: namespaced, but has no namespace", gvk.Kind, u.GetName()))
				continue
			}
			ri = cluster.dynamic.Resource(m.Resource).Namespace(u.GetNamespace())
		}
		_, err = ri.Apply(context.Background(), u.GetName(), u, metav1.ApplyOptions{FieldManager: "meshguard-packaging-test", Force: true, DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s/%s: %w", gvk.Kind, u.GetNamespace(), u.GetName(), err))
		}
	}
	return errs
}

// kinds lists objects as Kind/namespace/name, for messages.
func kinds(objs []*unstructured.Unstructured) string {
	var s []string
	for _, u := range objs {
		s = append(s, u.GetKind()+"/"+u.GetNamespace()+"/"+u.GetName())
	}
	return strings.Join(s, ", ")
}
