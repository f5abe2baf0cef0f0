// Package noistio runs meshguard against a cluster without the Istio (or Linkerd) CRDs: the
// profile must say so in its status, keep applying NetworkPolicies, and not crash the manager.
package noistio

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/controllers"
	"github.com/meshguard/meshguard/internal/render"
	"github.com/meshguard/meshguard/test/testenv"
)

func TestWithoutIstioCRDsNetworkPoliciesAreStillApplied(t *testing.T) {
	g := NewWithT(t)
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	env, err := testenv.New(testenv.NoMesh)
	g.Expect(err).NotTo(HaveOccurred())
	cfg, err := env.Start()
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { g.Expect(env.Stop()).To(Succeed()) }()

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"},
		Cache: controllers.CacheOptions(), Client: controllers.ClientOptions()})
	g.Expect(err).NotTo(HaveOccurred())
	r := &controllers.MeshSecurityProfileReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: scheme,
		Recorder: mgr.GetEventRecorder("meshguard"), RenderOptions: render.DefaultOptions()}
	g.Expect(r.SetupWithManager(mgr, controller.Options{})).To(Succeed(), "the manager starts without the mesh CRDs")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = mgr.Start(ctx) }()

	k8s, err := client.New(cfg, client.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}})).To(Succeed())
	p := &v1alpha1.MeshSecurityProfile{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "p"},
		Spec: v1alpha1.MeshSecurityProfileSpec{NetworkPolicy: &v1alpha1.NetworkPolicySpec{
			DefaultDeny: []v1alpha1.PolicyDirection{v1alpha1.DirectionIngress}}}}
	g.Expect(k8s.Create(ctx, p)).To(Succeed())

	g.Eventually(func() error {
		return k8s.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "p-default-deny"}, &networkingv1.NetworkPolicy{})
	}, 20*time.Second, 100*time.Millisecond).Should(Succeed())
	g.Eventually(func() string {
		cur := &v1alpha1.MeshSecurityProfile{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(p), cur); err != nil {
			return err.Error()
		}
		c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionPoliciesApplied)
		if c == nil || cur.Status.ObservedGeneration != cur.Generation {
			return ""
		}
		return c.Reason + ": " + c.Message
	}, 20*time.Second, 100*time.Millisecond).Should(HavePrefix(v1alpha1.ReasonIstioNotInstalled + ": the Istio CRDs are not installed"))

	cur := &v1alpha1.MeshSecurityProfile{}
	g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(p), cur)).To(Succeed())
	g.Expect(meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionFalse))
	g.Expect(meta.IsStatusConditionTrue(cur.Status.Conditions, v1alpha1.ConditionReconciling)).To(BeTrue(), "it waits for the CRDs, it is not stalled")
	states := map[string]v1alpha1.ResourceState{}
	for _, r := range cur.Status.Resources {
		states[r.Kind] = r.State
	}
	g.Expect(states).To(HaveKeyWithValue("PeerAuthentication", v1alpha1.ResourcePending))
	g.Expect(states).To(HaveKeyWithValue("NetworkPolicy", v1alpha1.ResourceInSync))
}
