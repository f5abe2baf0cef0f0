// Command manager runs the meshguard operator, or, as `manager render -f profile.yaml`, prints
// the objects a MeshSecurityProfile would generate, or, as `manager explain`, says whether a
// request gets through the policies, layer by layer.
package main

import (
	"flag"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/controllers"
	"github.com/meshguard/meshguard/internal/cli"
	"github.com/meshguard/meshguard/internal/render"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "render" {
		os.Exit(cli.Render(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "explain" {
		os.Exit(cli.Explain(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "suggest" {
		os.Exit(cli.Suggest(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(run())
}

func run() int {
	var (
		metricsAddr, probeAddr string
		pprofAddr              string
		leaderElect            bool
		leaderElectionNS       string
		secureMetrics          bool
		qps                    float64
		burst, workers         int
		opts                   = render.DefaultOptions()
		certRecheck            time.Duration
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "address the Prometheus metrics endpoint binds to; 0 disables it")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "address the /healthz and /readyz probes bind to")
	flag.StringVar(&pprofAddr, "pprof-bind-address", "0", "address Go's pprof endpoints (/debug/pprof/) bind to, for profiling (make bench); 0 disables them")
	flag.BoolVar(&leaderElect, "leader-elect", false, "elect a leader so that only one replica reconciles")
	flag.StringVar(&leaderElectionNS, "leader-election-namespace", "", "namespace of the leader election Lease (default: the pod's own namespace; needed outside a cluster)")
	flag.BoolVar(&secureMetrics, "metrics-secure", false, "serve metrics over HTTPS, only to clients the API server authenticates and authorizes for GET /metrics (the deployment turns it on)")
	// One budget for all requests (limitRequests). 200/s lets a thousand new profiles (about 9 requests
	// each) converge at the speed a small API server sustains anyway (docs/performance.md) while a
	// runaway loop stays bounded; the API server's priority and fairness does the rest.
	flag.Float64Var(&qps, "kube-api-qps", 200, "client-side rate limit for all requests to the API server, in requests per second; 0 or less: no client-side limit")
	flag.IntVar(&burst, "kube-api-burst", 400, "client-side burst for all requests to the API server")
	flag.IntVar(&workers, "max-concurrent-reconciles", 4, "profiles reconciled in parallel")
	flag.StringVar(&opts.TrustDomain, "trust-domain", opts.TrustDomain, "mesh trust domain for workload identities when a profile sets none")
	flag.StringVar(&opts.IstioNamespace, "istio-namespace", opts.IstioNamespace, "namespace of istiod and the Istio CA")
	flag.StringVar(&opts.IstioRootNamespace, "istio-root-namespace", "", "Istio's meshConfig.rootNamespace, whose policies are mesh-wide (default: --istio-namespace); profiles there are refused")
	flag.StringVar(&opts.LinkerdNamespace, "linkerd-namespace", opts.LinkerdNamespace, "namespace of the Linkerd control plane")
	flag.DurationVar(&certRecheck, "certificate-recheck-interval", controllers.DefaultCertificateRecheck, "longest time between two checks of a profile's mesh CA certificates; changes of the CA Secrets and ConfigMaps are watched and checked at once, this bounds what a missed event could cost")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("setup")

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))

	cfg, err := ctrl.GetConfig()
	if err != nil {
		log.Error(err, "no kubeconfig")
		return 1
	}
	limitRequests(cfg, qps, burst)
	log.Info("API client limits", "qps", cfg.QPS, "burst", cfg.Burst, "workers", workers)

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsOptions(metricsAddr, secureMetrics),
		HealthProbeBindAddress:  probeAddr,
		PprofBindAddress:        pprofAddr,
		LeaderElection:          leaderElect,
		LeaderElectionID:        "meshguard.security.meshguard.dev",
		LeaderElectionNamespace: leaderElectionNS,
		// A replica that stops (rolling update, drain) releases the Lease, so the other takes over
		// within a retry period instead of waiting for the Lease to expire. Safe: run returns as
		// soon as the manager has stopped.
		LeaderElectionReleaseOnCancel: true,
		Cache:                         controllers.CacheOptions(),
		Client:                        controllers.ClientOptions(),
	})
	if err != nil {
		log.Error(err, "cannot create manager")
		return 1
	}
	r := &controllers.MeshSecurityProfileReconciler{
		Client:             mgr.GetClient(),
		APIReader:          mgr.GetAPIReader(),
		Scheme:             mgr.GetScheme(),
		Recorder:           mgr.GetEventRecorder("meshguard"),
		RenderOptions:      opts,
		CertificateRecheck: certRecheck,
	}
	if err := r.SetupWithManager(mgr, controller.Options{MaxConcurrentReconciles: workers}); err != nil {
		log.Error(err, "cannot set up controller")
		return 1
	}
	if err := controllers.SetupFloors(mgr, r, controller.Options{MaxConcurrentReconciles: workers}); err != nil {
		log.Error(err, "cannot set up the cluster floor controllers")
		return 1
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		log.Error(err, "cannot add health check")
		return 1
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		log.Error(err, "cannot add ready check")
		return 1
	}
	log.Info("starting meshguard", "trustDomain", opts.TrustDomain, "istioNamespace", opts.IstioNamespace, "linkerdNamespace", opts.LinkerdNamespace)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "manager stopped")
		return 1
	}
	return 0
}

// limitRequests makes --kube-api-qps/--kube-api-burst one budget for every request the manager
// makes. controller-runtime builds a REST client per resource kind, and client-go gives each
// client a token bucket of its own unless the config carries one: without a shared limiter,
// --kube-api-qps=50 allowed 50 requests per second per kind. A qps of 0 or less turns the
// client-side limit off (the API server's priority and fairness still applies).
func limitRequests(cfg *rest.Config, qps float64, burst int) {
	if qps <= 0 {
		cfg.QPS, cfg.Burst, cfg.RateLimiter = -1, 0, nil
		return
	}
	cfg.QPS, cfg.Burst = float32(qps), burst
	cfg.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(cfg.QPS, burst)
}

// metricsOptions serve the metrics endpoint; secure, it is HTTPS (a self-signed certificate unless
// one is mounted) and every request is checked with TokenReview and SubjectAccessReview, as the
// kubebuilder scaffold does.
func metricsOptions(addr string, secure bool) metricsserver.Options {
	opts := metricsserver.Options{BindAddress: addr}
	if secure {
		opts.SecureServing = true
		opts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	return opts
}
