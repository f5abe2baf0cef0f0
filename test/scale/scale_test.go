// Package scale measures how long meshguard takes to bring many namespaces to Ready, for
// comparison with generators such as Kyverno (whose issue #1670 reports 56–85 s for 100
// namespaces). It is a benchmark, run by `make bench`; it asserts no timing.
package scale

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/controllers"
	"github.com/meshguard/meshguard/internal/certs/certstest"
	"github.com/meshguard/meshguard/internal/render"
	"github.com/meshguard/meshguard/test/testenv"
)

// BenchmarkNamespacesToReady creates N namespaces with a full profile each (7 generated objects)
// and measures the time until every profile is Ready, and the manager's heap afterwards.
// N is MESHGUARD_SCALE_N (default 100).
func BenchmarkNamespacesToReady(b *testing.B) {
	n := 100
	if v, err := strconv.Atoi(os.Getenv("MESHGUARD_SCALE_N")); err == nil && v > 0 {
		n = v
	}
	scheme := k8sruntime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
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

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"},
		Cache: controllers.CacheOptions(), Client: controllers.ClientOptions()})
	if err != nil {
		b.Fatal(err)
	}
	r := &controllers.MeshSecurityProfileReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: scheme,
		Recorder: mgr.GetEventRecorder("meshguard"), RenderOptions: render.DefaultOptions()}
	must(b, r.SetupWithManager(mgr, controller.Options{MaxConcurrentReconciles: 4}))
	go func() { _ = mgr.Start(ctx) }()

	for i := 0; i < b.N; i++ {
		start := time.Now()
		for j := 0; j < n; j++ {
			ns := fmt.Sprintf("scale-%d-%d", i, j)
			must(b, k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
			must(b, k8s.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "istio-ca-root-cert"},
				Data: map[string]string{"root-cert.pem": string(ca.CertPEM)}}))
			must(b, k8s.Create(ctx, fullProfile(ns)))
		}
		created := time.Since(start)
		for {
			var list v1alpha1.MeshSecurityProfileList
			must(b, k8s.List(ctx, &list))
			ready := 0
			for _, p := range list.Items {
				if p.Status.ObservedGeneration == p.Generation && meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionReady) {
					ready++
				}
			}
			if ready >= n*(i+1) {
				break
			}
			if time.Since(start) > 10*time.Minute {
				b.Fatalf("only %d of %d profiles Ready after 10 minutes", ready, n)
			}
			time.Sleep(100 * time.Millisecond)
		}
		total := time.Since(start)
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(total.Seconds(), "s/all-ready")
		b.ReportMetric(float64(n*7)/total.Seconds(), "objects/s")
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "MiB-heap")
		fmt.Printf("%d namespaces, %d generated objects: created in %s, all Ready after %s; heap in use %.1f MiB (test client, API server client and manager in one process)\n",
			n, n*7, created.Round(time.Millisecond), total.Round(time.Millisecond), float64(ms.HeapInuse)/(1<<20))
	}
}

func fullProfile(ns string) *v1alpha1.MeshSecurityProfile {
	return &v1alpha1.MeshSecurityProfile{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "baseline"},
		Spec: v1alpha1.MeshSecurityProfileSpec{
			MTLS: &v1alpha1.MTLSSpec{Mode: v1alpha1.MTLSStrict},
			Authorization: &v1alpha1.AuthorizationSpec{DefaultDeny: true, Rules: []v1alpha1.AuthorizationRule{{
				Name: "web-reads-api", Action: v1alpha1.ActionAllow,
				Selector: &v1alpha1.WorkloadSelector{MatchLabels: map[string]string{"app": "api"}},
				From:     &v1alpha1.RuleSource{ServiceAccounts: []v1alpha1.ServiceAccountRef{"frontend/web"}},
				To:       &v1alpha1.RuleTarget{Methods: []string{"GET"}, Ports: []int32{8080}},
			}}},
			NetworkPolicy: &v1alpha1.NetworkPolicySpec{
				DefaultDeny: []v1alpha1.PolicyDirection{v1alpha1.DirectionIngress, v1alpha1.DirectionEgress},
				AllowDNS:    true, AllowMeshControlPlane: true,
				Ingress: []v1alpha1.IngressRule{{Name: "web", From: []v1alpha1.NetworkPeer{{Namespaces: []string{"frontend"}}},
					Ports: []v1alpha1.NetworkPort{{Port: 8080, Protocol: "TCP"}}}},
			},
		}}
}

func must(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}
