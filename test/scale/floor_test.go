package scale

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/certs/certstest"
	"github.com/meshguard/meshguard/test/integration/inprocess"
	"github.com/meshguard/meshguard/test/testenv"
)

// BenchmarkFloorFanOut compares one ClusterMeshSecurityProfile selecting N namespaces with N
// MeshSecurityProfiles of the same body (7 generated objects per namespace), on a fresh control
// plane each, with the same manager (profiles and floor controllers, 4 workers, 50 QPS):
//
//   - profiles: N namespaces, then one profile in each; until every profile is Ready.
//   - floor-existing: N labelled namespaces, then the cluster profile; until its status counts N Ready.
//   - floor-new: the cluster profile, then N labelled namespaces; until its status counts N Ready.
//
// N is MESHGUARD_SCALE_N (default 100). Timings are reported, never asserted.
func BenchmarkFloorFanOut(b *testing.B) {
	n := 100
	if v, err := strconv.Atoi(os.Getenv("MESHGUARD_SCALE_N")); err == nil && v > 0 {
		n = v
	}
	for _, mode := range []string{"profiles", "floor-existing", "floor-new"} {
		b.Run(mode, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				fanOut(b, mode, n)
			}
		})
	}
}

func fanOut(b *testing.B, mode string, n int) {
	scheme := inprocess.Scheme()
	env, err := testenv.New(testenv.Istio)
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := env.Start()
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	cfg.QPS, cfg.Burst = 50, 100 // the manager's defaults
	k8s, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ca, err := certstest.MintCA()
	if err != nil {
		b.Fatal(err)
	}
	must(b, k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "istio-system"}}))
	must(b, k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "istio-system", Name: "istio-ca-secret"},
		Data: map[string][]byte{"ca-cert.pem": ca.CertPEM}}))

	mg, err := inprocess.Start(cfg, inprocess.Options{Scheme: scheme, Floors: true,
		Controller: controller.Options{MaxConcurrentReconciles: 4, SkipNameValidation: ptrTrue()}})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = mg.Stop() }()

	floor := &v1alpha1.ClusterMeshSecurityProfile{ObjectMeta: metav1.ObjectMeta{Name: "floor"}}
	floor.Spec.NamespaceSelector = metav1.LabelSelector{MatchLabels: map[string]string{"floor": "scale"}}
	floor.Spec.MeshSecurityProfileSpec = fullProfile("x").Spec
	namespaces := func() {
		for j := 0; j < n; j++ {
			ns := fmt.Sprintf("scale-%d", j)
			nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
			if mode != "profiles" {
				nsObj.Labels = map[string]string{"floor": "scale"}
			}
			// The root certificate first, as istiod publishes it: the namespace is Ready at once.
			must(b, k8s.Create(ctx, nsObj))
			must(b, k8s.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "istio-ca-root-cert"},
				Data: map[string]string{"root-cert.pem": string(ca.CertPEM)}}))
		}
	}

	var start time.Time
	switch mode {
	case "profiles":
		namespaces()
		start = time.Now()
		for j := 0; j < n; j++ {
			must(b, k8s.Create(ctx, fullProfile(fmt.Sprintf("scale-%d", j))))
		}
	case "floor-existing":
		namespaces()
		start = time.Now()
		must(b, k8s.Create(ctx, floor))
	case "floor-new":
		must(b, k8s.Create(ctx, floor))
		start = time.Now()
		namespaces()
	}
	created := time.Since(start)
	ready := func() int {
		if mode == "profiles" {
			var list v1alpha1.MeshSecurityProfileList
			must(b, k8s.List(ctx, &list))
			c := 0
			for _, p := range list.Items {
				if p.Status.ObservedGeneration == p.Generation && meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionReady) {
					c++
				}
			}
			return c
		}
		c := &v1alpha1.ClusterMeshSecurityProfile{}
		must(b, k8s.Get(ctx, client.ObjectKey{Name: "floor"}, c))
		return int(c.Status.ReadyNamespaces)
	}
	for ready() < n {
		if time.Since(start) > 20*time.Minute {
			b.Fatalf("%s: only %d of %d namespaces Ready after 20 minutes", mode, ready(), n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	total := time.Since(start)
	b.ReportMetric(total.Seconds(), "s/all-ready")
	b.ReportMetric(float64(n*7)/total.Seconds(), "objects/s")
	fmt.Printf("%s: %d namespaces, %d generated objects: created in %s, all Ready after %s\n",
		mode, n, n*7, created.Round(time.Millisecond), total.Round(time.Millisecond))
}

func ptrTrue() *bool { t := true; return &t }

// BenchmarkFloorNewNamespace measures how long a namespace created with a matching label waits
// for its floor: from the Namespace's creation to the floor's PeerAuthentication and default-deny
// NetworkPolicy being readable, for 20 namespaces created one after the other (polled every 10 ms).
func BenchmarkFloorNewNamespace(b *testing.B) {
	scheme := inprocess.Scheme()
	env, err := testenv.New(testenv.Istio)
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := env.Start()
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	cfg.QPS, cfg.Burst = 50, 100
	k8s, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mg, err := inprocess.Start(cfg, inprocess.Options{Scheme: scheme, Floors: true,
		Controller: controller.Options{MaxConcurrentReconciles: 4, SkipNameValidation: ptrTrue()}})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = mg.Stop() }()

	floor := &v1alpha1.ClusterMeshSecurityProfile{ObjectMeta: metav1.ObjectMeta{Name: "floor"}}
	floor.Spec.NamespaceSelector = metav1.LabelSelector{MatchLabels: map[string]string{"floor": "scale"}}
	floor.Spec.MeshSecurityProfileSpec = fullProfile("x").Spec
	must(b, k8s.Create(ctx, floor))
	time.Sleep(2 * time.Second) // caches synced

	for i := 0; i < b.N; i++ {
		var waits []time.Duration
		for j := 0; j < 20; j++ {
			ns := fmt.Sprintf("new-%d-%d", i, j)
			start := time.Now()
			must(b, k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"floor": "scale"}}}))
			for {
				pa := &unstructured.Unstructured{}
				pa.SetAPIVersion("security.istio.io/v1")
				pa.SetKind("PeerAuthentication")
				np := &networkingv1.NetworkPolicy{}
				if k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "floor-mtls"}, pa) == nil &&
					k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "floor-default-deny"}, np) == nil {
					break
				}
				if time.Since(start) > time.Minute {
					b.Fatalf("namespace %s has no floor after a minute", ns)
				}
				time.Sleep(10 * time.Millisecond)
			}
			waits = append(waits, time.Since(start))
		}
		sort.Slice(waits, func(a, c int) bool { return waits[a] < waits[c] })
		b.ReportMetric(waits[len(waits)/2].Seconds()*1000, "ms/median")
		b.ReportMetric(waits[len(waits)-1].Seconds()*1000, "ms/max")
		fmt.Printf("new labelled namespace → floor objects readable: median %s, max %s (20 namespaces)\n",
			waits[len(waits)/2].Round(time.Millisecond), waits[len(waits)-1].Round(time.Millisecond))
	}
}
