package controllers_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/certs/certstest"
)

// linkerdCA installs a Linkerd trust anchor and issuer, replacing any earlier ones.
func linkerdCA(anchor, issuer *certstest.Cert) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "linkerd"}}
	if err := k8s.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		Expect(err).NotTo(HaveOccurred())
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "linkerd", Name: "linkerd-identity-trust-roots"}}
	_ = k8s.Delete(ctx, cm)
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "linkerd", Name: "linkerd-identity-issuer"}}
	_ = k8s.Delete(ctx, sec)
	if anchor != nil {
		cm.Data = map[string]string{"ca-bundle.crt": string(anchor.CertPEM)}
		Expect(k8s.Create(ctx, cm)).To(Succeed())
	}
	if issuer != nil {
		sec.Type = corev1.SecretTypeTLS
		sec.Data = map[string][]byte{"tls.crt": issuer.CertPEM, "tls.key": issuer.KeyPEM, "ca.crt": anchor.CertPEM}
		Expect(k8s.Create(ctx, sec)).To(Succeed())
	}
}

var _ = Describe("Certificate health", Ordered, func() {
	AfterEach(func() { clk.Set(0) })

	It("reports a valid Istio CA and the namespace root, and stays Ready", func() {
		ns := newNamespace()
		p := profile(ns, "p", withMTLS(v1alpha1.MTLSStrict))
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionCertificatesHealthy)).Should(Equal("True/Valid"))
		Expect(condition(p, v1alpha1.ConditionReady)()).To(Equal("True/Succeeded"))
		cur := getProfile(p)
		Expect(cur.Status.Certificates).NotTo(BeEmpty())
		for _, c := range cur.Status.Certificates {
			Expect(c.State).To(Equal("Valid"), c.Source)
			Expect(c.Subject).To(ContainSubstring("Istio test root"))
		}
		Expect(cur.Status.NearestCertificateExpiry).NotTo(BeNil())
	})

	It("reports a namespace root that does not match the CA's root, and is not Ready", func() {
		ns := newNamespace()
		other, err := certstest.MintCA(certstest.WithSubject("stale root"))
		Expect(err).NotTo(HaveOccurred())
		cm := &corev1.ConfigMap{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "istio-ca-root-cert"}, cm)).To(Succeed())
		cm.Data["root-cert.pem"] = string(other.CertPEM)
		Expect(k8s.Update(ctx, cm)).To(Succeed())
		p := profile(ns, "p", withMTLS(v1alpha1.MTLSStrict))
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionCertificatesHealthy)).Should(Equal("False/RootMismatch"))
		Expect(condition(p, v1alpha1.ConditionReady)()).To(Equal("False/RootMismatch"))

		By("rechecking as soon as the namespace root is fixed (the ConfigMap is watched)")
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(cm), cm)).To(Succeed())
		cm.Data["root-cert.pem"] = string(istioCA.CertPEM)
		Expect(k8s.Update(ctx, cm)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))
	})

	It("turns ExpiringSoon when the clock crosses minValidity, without any change in the cluster, and keeps Ready", func() {
		now := time.Now()
		anchor, err := certstest.MintCA(certstest.WithSubject("linkerd anchor"), certstest.WithValidity(now.Add(-time.Hour), now.Add(400*24*time.Hour)))
		Expect(err).NotTo(HaveOccurred())
		issuer, err := certstest.MintIntermediate(anchor, certstest.WithSubject("linkerd issuer"), certstest.WithValidity(now.Add(-time.Hour), now.Add(62*24*time.Hour)))
		Expect(err).NotTo(HaveOccurred())
		linkerdCA(anchor, issuer)

		ns := newNamespace()
		p := profile(ns, "p", withMesh(v1alpha1.MeshLinkerd), withMTLS(v1alpha1.MTLSStrict))
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionCertificatesHealthy)).Should(Equal("True/Valid"))

		clk.Set(3 * 24 * time.Hour) // 59 days left < 60 days minValidity
		Eventually(condition(p, v1alpha1.ConditionCertificatesHealthy)).Should(Equal("False/ExpiringSoon"))
		Expect(condition(p, v1alpha1.ConditionReady)()).NotTo(HavePrefix("False/Expiring"), "ExpiringSoon must not block Ready")
		Eventually(func() []string {
			var evs eventsv1.EventList
			Expect(k8s.List(ctx, &evs, client.InNamespace(ns))).To(Succeed())
			var reasons []string
			for _, e := range evs.Items {
				if e.Regarding.Name == "p" && e.Type == "Warning" {
					reasons = append(reasons, e.Reason)
				}
			}
			return reasons
		}).Should(ContainElement("CertificateExpiringSoon"), "a Warning event when a certificate starts expiring soon")

		clk.Set(63 * 24 * time.Hour)
		Eventually(condition(p, v1alpha1.ConditionCertificatesHealthy)).Should(Equal("False/Expired"))
		Expect(condition(p, v1alpha1.ConditionReady)()).To(Equal("False/Expired"))
	})

	It("reports an issuer signed by another root as untrusted", func() {
		anchor, err := certstest.MintCA(certstest.WithSubject("linkerd anchor"))
		Expect(err).NotTo(HaveOccurred())
		rogue, err := certstest.MintCA(certstest.WithSubject("rogue"))
		Expect(err).NotTo(HaveOccurred())
		issuer, err := certstest.MintIntermediate(rogue, certstest.WithSubject("linkerd issuer"))
		Expect(err).NotTo(HaveOccurred())
		linkerdCA(anchor, issuer)
		ns := newNamespace()
		p := profile(ns, "p", withMesh(v1alpha1.MeshLinkerd), withMTLS(v1alpha1.MTLSStrict))
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionCertificatesHealthy)).Should(Equal("False/UntrustedChain"))
		Expect(condition(p, v1alpha1.ConditionReady)()).To(Equal("False/UntrustedChain"))
	})

	It("reports a missing issuer Secret as NotFound", func() {
		anchor, err := certstest.MintCA(certstest.WithSubject("linkerd anchor"))
		Expect(err).NotTo(HaveOccurred())
		linkerdCA(anchor, nil)
		ns := newNamespace()
		p := profile(ns, "p", withMesh(v1alpha1.MeshLinkerd), withMTLS(v1alpha1.MTLSStrict))
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionCertificatesHealthy)).Should(Equal("False/NotFound"))
		cur := getProfile(p)
		found := false
		for _, c := range cur.Status.Certificates {
			if c.State == "NotFound" {
				found = true
				Expect(c.Source).To(ContainSubstring("linkerd-identity-issuer"))
			}
		}
		Expect(found).To(BeTrue())
	})
})
