package scale

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/certs"
	"github.com/meshguard/meshguard/internal/certs/certstest"
	"github.com/meshguard/meshguard/test/testenv"
)

var (
	gvrProfile            = v1alpha1.GroupVersion.WithResource("meshsecurityprofiles")
	gvrPeerAuthentication = schema.GroupVersionResource{Group: "security.istio.io", Version: "v1", Resource: "peerauthentications"}
)

// cluster is the run's control plane: etcd and kube-apiserver with meshguard's and Istio's CRDs.
// No kube-controller-manager runs: nothing here is deleted, and its requests would blur the counts.
type cluster struct {
	env        *envtest.Environment
	cfg        *rest.Config // the harness's own client: no client-side limit
	kubeconfig string       // a cluster administrator's kubeconfig file, for the processes under test
	clientset  kubernetes.Interface
	dynamic    dynamic.Interface
	rootCA     *certstest.Cert
}

func startCluster(dir string) (_ *cluster, retErr error) {
	env, err := testenv.New(testenv.Istio)
	if err != nil {
		return nil, err
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("start etcd and kube-apiserver: %w", err)
	}
	c := &cluster{env: env}
	defer func() {
		if retErr != nil {
			c.stop()
		}
	}()
	c.cfg = rest.CopyConfig(cfg)
	c.cfg.QPS, c.cfg.Burst = -1, 0 // the harness must never be what slows a run down
	user, err := env.AddUser(envtest.User{Name: "bench-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("add admin user: %w", err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return nil, err
	}
	c.kubeconfig = filepath.Join(dir, "admin.kubeconfig")
	if err := os.WriteFile(c.kubeconfig, kc, 0o600); err != nil {
		return nil, err
	}
	if c.clientset, err = kubernetes.NewForConfig(c.cfg); err != nil {
		return nil, err
	}
	if c.dynamic, err = dynamic.NewForConfig(c.cfg); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *cluster) stop() {
	if c.env != nil {
		_ = c.env.Stop()
	}
}

// createMeshCA creates Istio's self-signed CA Secret in istio-system, as istiod does.
func (c *cluster) createMeshCA(ctx context.Context) error {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	cl, err := client.New(c.cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	cas, err := testenv.CreateMeshCAs(ctx, cl, "meshguard scale Istio root", false)
	if err != nil {
		return err
	}
	c.rootCA = cas.IstioRoot
	return nil
}

// createNamespaces creates the namespaces with the labels, in parallel; withRoot adds Istio's
// root certificate ConfigMap to each, as istiod does in every namespace.
func (c *cluster) createNamespaces(ctx context.Context, names []string, labels map[string]string, withRoot bool) error {
	return parallel(ctx, 8, len(names), func(ctx context.Context, i int) error {
		_, err := c.clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: names[i], Labels: labels}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create namespace %s: %w", names[i], err)
		}
		if !withRoot {
			return nil
		}
		_, err = c.clientset.CoreV1().ConfigMaps(names[i]).Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: certs.IstioRootConfigMap},
			Data:       map[string]string{certs.IstioRootConfigMapKey: string(c.rootCA.CertPEM)},
		}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %s/%s: %w", names[i], certs.IstioRootConfigMap, err)
		}
		return nil
	})
}

// apiRequests scrapes the kube-apiserver's own request counters.
func (c *cluster) apiRequests(ctx context.Context) (Requests, error) {
	b, err := c.clientset.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver /metrics: %w", err)
	}
	return requestsFrom(testenv.ParseMetrics(string(b))), nil
}

// watchUntil lists and watches a resource (namespace "" for all, label selector sel) and calls
// done with every object seen so far after each change, until it returns true or ctx ends.
func (c *cluster) watchUntil(ctx context.Context, gvr schema.GroupVersionResource, ns, sel string, done func(objs map[string]*unstructured.Unstructured) bool) error {
	ri := c.dynamic.Resource(gvr).Namespace(ns)
	lw := &toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = sel
			return ri.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = sel
			return ri.Watch(ctx, o)
		},
	}
	objs := map[string]*unstructured.Unstructured{}
	var mu sync.Mutex
	_, err := watchtools.UntilWithSync(ctx, lw, &unstructured.Unstructured{}, nil, func(ev watch.Event) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		u, ok := ev.Object.(*unstructured.Unstructured)
		if !ok {
			return false, nil
		}
		key := u.GetNamespace() + "/" + u.GetName()
		if ev.Type == watch.Deleted {
			delete(objs, key)
		} else {
			objs[key] = u
		}
		return done(objs), nil
	})
	return err
}

// parallel runs f for 0..n-1 on at most workers goroutines and returns the first error.
func parallel(ctx context.Context, workers, n int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(ctx, i); err != nil {
					errs <- err
					cancel()
					return
				}
			}
		}()
	}
	func() {
		defer close(next)
		for i := 0; i < n; i++ {
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	return ctx.Err()
}

// names returns prefix-0 … prefix-(n-1).
func names(prefix string, from, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, from+i)
	}
	return out
}

// loadAverage is /proc/loadavg's three averages.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], "/")
}

// rss is a process's resident memory in bytes (VmRSS), 0 when unknown.
func rss(pid int) uint64 { return procStatus(pid, "VmRSS:") }

// peakRSS is the highest resident memory of a process so far (VmHWM), 0 when unknown.
func peakRSS(pid int) uint64 { return procStatus(pid, "VmHWM:") }

// procStatus reads one "<field> N kB" line of /proc/<pid>/status, in bytes.
func procStatus(pid int, field string) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field) {
			var kb uint64
			if _, err := fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, field)), "%d kB", &kb); err == nil {
				return kb << 10
			}
		}
	}
	return 0
}
