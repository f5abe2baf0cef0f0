package controllers_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/controllers"
	"github.com/meshguard/meshguard/internal/render"
	"github.com/meshguard/meshguard/test/crds"
	"github.com/meshguard/meshguard/test/testenv"
)

// The suite's cluster has the Gateway API CRDs from the start; this spec needs a cluster of its
// own (a second kube-apiserver and etcd) where they are installed after meshguard started.
var _ = Describe("Istio ambient with the Gateway CRD installed after the start", func() {
	It("watches Gateways once their CRD appears: a waypoint created then moves the L7 rule to it within seconds", func() {
		lenv, err := testenv.New(testenv.Istio)
		Expect(err).NotTo(HaveOccurred())
		lcfg, err := lenv.Start()
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { Expect(lenv.Stop()).To(Succeed()) })
		c, err := client.New(lcfg, client.Options{Scheme: scheme})
		Expect(err).NotTo(HaveOccurred())

		mgr, err := ctrl.NewManager(lcfg, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"},
			Cache: controllers.CacheOptions(), Client: controllers.ClientOptions()})
		Expect(err).NotTo(HaveOccurred())
		r := &controllers.MeshSecurityProfileReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: scheme,
			Recorder: mgr.GetEventRecorder("meshguard"), RenderOptions: render.DefaultOptions(), KindPoll: time.Second}
		opts := controller.Options{MaxConcurrentReconciles: 1, SkipNameValidation: ptrTrue()}
		Expect(controllers.SetupFloors(mgr, r, opts)).To(Succeed())
		Expect(r.SetupWithManager(mgr, opts)).To(Succeed())
		mctx, mcancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer GinkgoRecover()
			defer close(done)
			Expect(mgr.Start(mctx)).To(Succeed())
		}()
		// Registered after lenv.Stop: cleanups run last-in first-out, so the manager stops first.
		DeferCleanup(func() { mcancel(); <-done })

		const ns = "shop"
		Expect(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{
			"istio.io/dataplane-mode": "ambient", "istio.io/use-waypoint": "waypoint",
		}}})).To(Succeed())
		Expect(c.Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "api"},
			Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "api"}, Ports: []corev1.ServicePort{{Port: 8080}}},
		})).To(Succeed())
		Expect(c.Create(ctx, apiPod(ns, "api-0", map[string]string{"ambient.istio.io/redirection": "enabled"}))).To(Succeed())
		p := profile(ns, "p", withL7Rule("web-reads"))
		Expect(c.Create(ctx, p)).To(Succeed())

		rowsOf := func() []v1alpha1.RuleEnforcementStatus {
			cur := &v1alpha1.MeshSecurityProfile{}
			if err := c.Get(ctx, client.ObjectKeyFromObject(p), cur); err != nil {
				return nil
			}
			var out []v1alpha1.RuleEnforcementStatus
			for _, row := range cur.Status.Enforcement {
				if row.Rule == "authorization.rules[web-reads]" {
					row.Reason = ""
					out = append(out, row)
				}
			}
			return out
		}
		// No Gateway kind, no waypoint: the L7 rule cannot be enforced for the ambient pod.
		Eventually(rowsOf).Should(ConsistOf(v1alpha1.RuleEnforcementStatus{
			Rule: "authorization.rules[web-reads]", EnforcedBy: v1alpha1.EnforcedByNone, Pods: []string{"api-0"}, PodCount: 1,
		}))

		gwCRDs, err := crds.GatewayAPICRDs()
		Expect(err).NotTo(HaveOccurred())
		_, err = envtest.InstallCRDs(lcfg, envtest.CRDInstallOptions{CRDs: gwCRDs})
		Expect(err).NotTo(HaveOccurred())
		Expect(c.Create(ctx, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
			"metadata": map[string]any{"namespace": ns, "name": "waypoint"},
			"spec": map[string]any{
				"gatewayClassName": "istio-waypoint",
				"listeners":        []any{map[string]any{"name": "mesh", "port": int64(15008), "protocol": "HBONE"}},
			},
		}})).To(Succeed())

		// The poll (KindPoll, 1s here) finds the kind, the informer's first list brings the
		// waypoint, and the profile is placed again without a restart.
		Eventually(rowsOf, "15s").Should(ConsistOf(
			v1alpha1.RuleEnforcementStatus{Rule: "authorization.rules[web-reads]", EnforcedBy: v1alpha1.EnforcedByWaypoint, Pods: []string{"api-0"}, PodCount: 1},
			v1alpha1.RuleEnforcementStatus{Rule: "authorization.rules[web-reads]", EnforcedBy: v1alpha1.EnforcedByZtunnel, Pods: []string{"api-0"}, PodCount: 1},
		))
	})
})
