package controllers_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/controllers"
	"github.com/meshguard/meshguard/internal/certs/certstest"
	"github.com/meshguard/meshguard/internal/render"
	"github.com/meshguard/meshguard/test/testenv"
)

// The suite runs meshguard's reconciler in a manager against a real kube-apiserver and etcd with
// meshguard's CRD and the real Istio and Linkerd CRDs. Each test works in a namespace of its own.
var (
	cfg     *rest.Config
	k8s     client.Client
	env     *envtest.Environment
	ctx     context.Context
	cancel  context.CancelFunc
	scheme  = runtime.NewScheme()
	nsCount int
	// clk is the reconciler's clock: real time plus an offset that certificate tests move.
	clk = &offsetClock{}
	// istioCA is the suite's Istio CA (istio-system/istio-ca-secret); every test namespace gets its
	// root in istio-ca-root-cert, as istiod would publish it.
	istioCA *certstest.Cert
	// writes logs the reconciler's API writes per namespace (writes_test.go).
	writes = &writeLog{}
)

type offsetClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *offsetClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *offsetClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

func (c *offsetClock) Set(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset = d
}

func TestControllers(t *testing.T) {
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(20 * time.Second)
	SetDefaultEventuallyPollingInterval(100 * time.Millisecond)
	RunSpecs(t, "controllers integration")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))

	var err error
	env, err = testenv.New(testenv.Istio | testenv.Linkerd | testenv.GatewayAPI)
	Expect(err).NotTo(HaveOccurred())
	cfg, err = env.Start()
	Expect(err).NotTo(HaveOccurred())
	k8s, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	istioCA, err = certstest.MintCA(certstest.WithSubject("Istio test root"))
	Expect(err).NotTo(HaveOccurred())
	Expect(k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "istio-system"}})).To(Succeed())
	Expect(k8s.Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "istio-system", Name: "istio-ca-secret"},
		Data:       map[string][]byte{"ca-cert.pem": istioCA.CertPEM, "ca-key.pem": istioCA.KeyPEM},
	})).To(Succeed())

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:  scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
		Cache:   controllers.CacheOptions(),
		Client:  controllers.ClientOptions(),
	})
	Expect(err).NotTo(HaveOccurred())
	r := &controllers.MeshSecurityProfileReconciler{
		Client:        &countingClient{Client: mgr.GetClient(), log: writes},
		APIReader:     mgr.GetAPIReader(),
		Scheme:        mgr.GetScheme(),
		Recorder:      mgr.GetEventRecorder("meshguard"),
		RenderOptions: render.DefaultOptions(),
		Clock:         clk,
		// Short, so that a moved clock is noticed quickly; production uses 5 minutes.
		CertificateRecheck: 2 * time.Second,
	}
	// The floors first, in the reverse order of main.go: no reconciler depends on another's setup.
	Expect(controllers.SetupFloors(mgr, r, controller.Options{MaxConcurrentReconciles: 2, SkipNameValidation: ptrTrue()})).To(Succeed())
	Expect(r.SetupWithManager(mgr, controller.Options{MaxConcurrentReconciles: 2, SkipNameValidation: ptrTrue()})).To(Succeed())
	ctx, cancel = context.WithCancel(context.Background())
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
})

var _ = AfterSuite(func() {
	if cancel != nil {
		cancel()
	}
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})

func ptrTrue() *bool { b := true; return &b }

// newNamespace creates a namespace for one test.
func newNamespace() string {
	nsCount++
	name := fmt.Sprintf("t%d-%d", GinkgoParallelProcess(), nsCount)
	Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
	Expect(k8s.Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: "istio-ca-root-cert"},
		Data:       map[string]string{"root-cert.pem": string(istioCA.CertPEM)},
	})).To(Succeed())
	return name
}
