// Command manager runs the meshguard operator, or, as `manager render -f profile.yaml`, prints
// the objects a MeshSecurityProfile would generate, or, as `manager explain`, says whether a
// request gets through the policies, layer by layer.
package main

import (
	"errors"
	goflag "flag"
	"fmt"
	"os"
	"strings"
	"time"

	flag "github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/controllers"
	"github.com/meshguard/meshguard/internal/buildinfo"
	"github.com/meshguard/meshguard/internal/cli"
	"github.com/meshguard/meshguard/internal/clusterfacts"
	"github.com/meshguard/meshguard/internal/clusterlabel"
	"github.com/meshguard/meshguard/internal/render"
)

func main() {
	if code, ran := cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr); ran {
		os.Exit(code)
	}
	os.Exit(run())
}

func run() int {
	var (
		metricsAddr, probeAddr  string
		pprofAddr               string
		leaderElect             bool
		leaderElectionNS        string
		secureMetrics           bool
		qps                     float64
		burst, workers, applies int
		opts                    = clusterfacts.Defaults()
		certRecheck             time.Duration
		maxRetryBackoff         time.Duration
		clusterName             string
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "address the Prometheus metrics endpoint binds to; 0 disables it")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "address the /healthz and /readyz probes bind to")
	flag.StringVar(&clusterName, "cluster-name", "", "adds the label cluster=<name> to every metric meshguard serves, so that a central Prometheus tells clusters apart (docs/multi-cluster.md); empty: no label")
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
	flag.IntVar(&applies, "max-concurrent-applies", controllers.DefaultApplyConcurrency, "objects of one profile applied in parallel (the client-side limit still bounds all requests together)")
	opts.Bind(flag.CommandLine)
	flag.DurationVar(&certRecheck, "certificate-recheck-interval", controllers.DefaultCertificateRecheck, "longest time between two checks of a profile's mesh CA certificates; changes of the CA Secrets and ConfigMaps are watched and checked at once, this bounds what a missed event could cost")
	flag.DurationVar(&maxRetryBackoff, "max-retry-backoff", controllers.DefaultMaxRetryBackoff, "longest wait before a failed reconcile is tried again (1m to 5m): after an API server outage every profile is retried within this time of its end")
	zapOpts := zap.Options{}
	goFlags := goflag.NewFlagSet("zap", goflag.ContinueOnError)
	zapOpts.BindFlags(goFlags)
	flag.CommandLine.AddGoFlagSet(goFlags)
	flag.Usage = func() {
		fmt.Fprint(os.Stderr, cli.Usage())
		flag.PrintDefaults()
	}
	// A mistyped flag gets one line naming it, not the whole usage (which would push the error
	// out of a log's tail): `manager --help` prints the usage.
	flag.CommandLine.Init("manager", flag.ContinueOnError)
	if err := flag.CommandLine.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "manager: %v (manager --help lists the flags)\n", err)
		return 2
	}
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "manager: unexpected argument %q: the controller takes flags only (manager --help)\n", flag.Arg(0))
		return 2
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("setup")
	if err := controllers.CheckMaxRetryBackoff(maxRetryBackoff); err != nil {
		log.Error(err, "invalid flag")
		return 1
	}
	if applies < 1 {
		log.Error(fmt.Errorf("--max-concurrent-applies=%d: must be at least 1", applies), "invalid flag")
		return 1
	}
	if err := opts.Validate(); err != nil {
		log.Error(err, "invalid cluster facts")
		return 2
	}
	ctx := ctrl.SetupSignalHandler()

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))

	cfg, err := ctrl.GetConfig()
	if err != nil {
		log.Error(err, "no kubeconfig")
		return 1
	}
	limitRequests(cfg, qps, burst)
	if clusterName != "" {
		// Before the manager exists: its metrics server serves ctrlmetrics.Registry.
		ctrlmetrics.Registry = clusterlabel.Wrap(ctrlmetrics.Registry, clusterName)
	}
	ctrlmetrics.Registry.MustRegister(buildinfo.Collector())
	build := buildinfo.Get()
	log.Info("meshguard build", "version", build.Version, "commit", build.Commit)
	log.Info("API client limits", "qps", cfg.QPS, "burst", cfg.Burst, "workers", workers, "maxRetryBackoff", maxRetryBackoff.String())

	// Started while the API server is down or failing, the manager waits for it (alive, not ready)
	// instead of exiting: setting up reads what the API server serves.
	stopProbes, err := controllers.WaitingProbes(probeAddr)
	if err != nil {
		log.Error(err, "cannot serve the probes")
		return 1
	}
	err = controllers.WaitForAPIServer(ctx, cfg, 10*time.Second, log)
	stopProbes()
	if err != nil {
		log.Error(err, "stopped before the API server was available")
		return 1
	}

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
		RenderOptions:      render.Options{Facts: opts},
		MeshguardNamespace: meshguardNamespace(),
		CertificateRecheck: certRecheck,
		MaxRetryBackoff:    maxRetryBackoff,
		ApplyConcurrency:   applies,
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
	if err := mgr.Start(ctx); err != nil {
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

// meshguardNamespace is the namespace meshguard runs in, which cluster floors leave alone unless
// they opt in: the pod's own (the service account's namespace file Kubernetes mounts), else
// meshguard-system, the namespace the chart, kustomize and OLM install into.
func meshguardNamespace() string {
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b))
	}
	return "meshguard-system"
}
