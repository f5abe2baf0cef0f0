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
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/test/integration/inprocess"
	"github.com/meshguard/meshguard/test/testenv"
)

func TestWithoutIstioCRDsNetworkPoliciesAreStillApplied(t *testing.T) {
	g := NewWithT(t)
	env, err := testenv.New(testenv.NoMesh)
	g.Expect(err).NotTo(HaveOccurred())
	cfg, err := env.Start()
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { g.Expect(env.Stop()).To(Succeed()) }()

	mg, err := inprocess.Start(cfg, inprocess.Options{})
	g.Expect(err).NotTo(HaveOccurred(), "the manager starts without the mesh CRDs")
	defer func() { _ = mg.Stop() }()
	ctx, k8s := context.Background(), mg.Client
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
