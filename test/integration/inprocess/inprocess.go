// Package inprocess runs meshguard's reconcilers in a controller-runtime manager inside the test
// process, against a control plane of test/testenv: the one way the integration tests and the
// floor benchmarks start them (the built binary is test/testenv's Manager).
package inprocess

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/controllers"
	"github.com/meshguard/meshguard/internal/render"
)

// Options say what runs.
type Options struct {
	// Scheme of the manager and the test's client; nil: Scheme().
	Scheme *runtime.Scheme
	// RenderOptions are the reconciler's cluster facts; the zero value: render.DefaultOptions().
	RenderOptions *render.Options
	// Floors also runs the ClusterMeshSecurityProfile controllers (controllers.SetupFloors).
	Floors bool
	// Controller are the controllers' options (workers, name validation).
	Controller controller.Options
	// KindPoll is how often a profile waiting for CRDs looks again (0: the reconciler's default).
	KindPoll time.Duration
	// CertificateRecheck is the longest wait before a profile is looked at again (0: the default).
	CertificateRecheck time.Duration
	// WrapClient wraps the reconcilers' client (to count or fail writes); nil: none.
	WrapClient func(client.Client) client.Client
}

// Scheme holds client-go's kinds and meshguard's.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(v1alpha1.AddToScheme(s))
	return s
}

// Meshguard is a running manager with meshguard's reconcilers, and a client for the test.
type Meshguard struct {
	// Client reads and writes through the API server directly (no cache), as a user would.
	Client client.Client
	// Profiles is the MeshSecurityProfile reconciler.
	Profiles *controllers.MeshSecurityProfileReconciler
	cancel   context.CancelFunc
	done     chan error
}

// Start sets up the reconcilers on a new manager for cfg (with meshguard's cache and client
// options, as main.go does) and starts it in the background.
func Start(cfg *rest.Config, opts Options) (*Meshguard, error) {
	scheme := opts.Scheme
	if scheme == nil {
		scheme = Scheme()
	}
	ro := render.DefaultOptions()
	if opts.RenderOptions != nil {
		ro = *opts.RenderOptions
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"},
		Cache: controllers.CacheOptions(), Client: controllers.ClientOptions()})
	if err != nil {
		return nil, fmt.Errorf("manager: %w", err)
	}
	c := mgr.GetClient()
	if opts.WrapClient != nil {
		c = opts.WrapClient(c)
	}
	r := &controllers.MeshSecurityProfileReconciler{Client: c, APIReader: mgr.GetAPIReader(), Scheme: scheme,
		Recorder: mgr.GetEventRecorder("meshguard"), RenderOptions: ro, KindPoll: opts.KindPoll,
		CertificateRecheck: opts.CertificateRecheck}
	if err := r.SetupWithManager(mgr, opts.Controller); err != nil {
		return nil, fmt.Errorf("profile reconciler: %w", err)
	}
	if opts.Floors {
		if err := controllers.SetupFloors(mgr, r, opts.Controller); err != nil {
			return nil, fmt.Errorf("floor reconcilers: %w", err)
		}
	}
	k8s, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Meshguard{Client: k8s, Profiles: r, cancel: cancel, done: make(chan error, 1)}
	go func() { m.done <- mgr.Start(ctx) }()
	return m, nil
}

// Stop stops the manager and waits for it (at most 30 s); it returns the manager's error.
func (m *Meshguard) Stop() error {
	m.cancel()
	select {
	case err := <-m.done:
		return err
	case <-time.After(30 * time.Second):
		return fmt.Errorf("the manager did not stop within 30s")
	}
}
