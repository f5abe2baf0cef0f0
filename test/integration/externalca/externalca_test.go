// Package externalca runs meshguard with --istio-ca=external against a cluster where Istio's CA
// is outside the cluster (cert-manager istio-csr, Vault): neither cacerts nor istio-ca-secret
// exists, only the roots published to each namespace. The profile must be Ready, with the CA
// reported External, and still fail closed when the namespace has no roots.
package externalca

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/certs/certstest"
	"github.com/meshguard/meshguard/internal/clusterfacts"
	"github.com/meshguard/meshguard/internal/render"
	"github.com/meshguard/meshguard/test/integration/inprocess"
	"github.com/meshguard/meshguard/test/testenv"
)

func TestAProfileWithAnExternalIstioCAIsReadyWithTheCAReportedExternal(t *testing.T) {
	g := NewWithT(t)
	env, err := testenv.New(testenv.Istio)
	g.Expect(err).NotTo(HaveOccurred())
	cfg, err := env.Start()
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { g.Expect(env.Stop()).To(Succeed()) }()

	facts := clusterfacts.Defaults()
	facts.IstioCA = clusterfacts.IstioCAExternal
	mg, err := inprocess.Start(cfg, inprocess.Options{RenderOptions: &render.Options{Facts: facts}})
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = mg.Stop() }()
	ctx, k8s := context.Background(), mg.Client
	// istio-system exists (istiod runs there) but holds no CA Secret: istio-csr signs.
	root, err := certstest.MintCA(certstest.WithSubject("Vault root for istio-csr"))
	g.Expect(err).NotTo(HaveOccurred())
	for _, ns := range []string{"istio-system", "shop", "bare"} {
		g.Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	}
	g.Expect(k8s.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "istio-ca-root-cert"},
		Data: map[string]string{"root-cert.pem": string(root.CertPEM)}})).To(Succeed())

	profile := func(ns string) *v1alpha1.MeshSecurityProfile {
		p := &v1alpha1.MeshSecurityProfile{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "baseline"},
			Spec: v1alpha1.MeshSecurityProfileSpec{MTLS: &v1alpha1.MTLSSpec{Mode: v1alpha1.MTLSStrict}}}
		g.Expect(k8s.Create(ctx, p)).To(Succeed())
		return p
	}
	conditions := func(p *v1alpha1.MeshSecurityProfile) func() map[string]string {
		return func() map[string]string {
			cur := &v1alpha1.MeshSecurityProfile{}
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(p), cur); err != nil || cur.Status.ObservedGeneration != cur.Generation {
				return nil
			}
			out := map[string]string{}
			for _, c := range []string{v1alpha1.ConditionReady, v1alpha1.ConditionCertificatesHealthy} {
				if got := meta.FindStatusCondition(cur.Status.Conditions, c); got != nil {
					out[c] = string(got.Status) + "/" + got.Reason
				}
			}
			return out
		}
	}

	shop := profile("shop")
	g.Eventually(conditions(shop), 30*time.Second, 100*time.Millisecond).Should(Equal(map[string]string{
		v1alpha1.ConditionReady:               "True/" + v1alpha1.ReasonSucceeded,
		v1alpha1.ConditionCertificatesHealthy: "True/" + v1alpha1.ReasonCertExternal,
	}))
	cur := &v1alpha1.MeshSecurityProfile{}
	g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(shop), cur)).To(Succeed())
	g.Expect(cur.Status.Certificates).To(ConsistOf(HaveField("Source", ContainSubstring("shop/istio-ca-root-cert"))),
		"only the namespace's roots are inspected; no CA Secret is reported missing")
	g.Expect(meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionCertificatesHealthy).Message).To(ContainSubstring("external"))

	// Fail closed: a namespace without the roots cannot verify its peers.
	bare := profile("bare")
	g.Eventually(conditions(bare), 30*time.Second, 100*time.Millisecond).Should(Equal(map[string]string{
		v1alpha1.ConditionReady:               "False/" + v1alpha1.ReasonCertNotFound,
		v1alpha1.ConditionCertificatesHealthy: "False/" + v1alpha1.ReasonCertNotFound,
	}))
}
