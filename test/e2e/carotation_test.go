package e2e

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/certs/certstest"
)

// The built manager rechecks certificates only every 5 minutes on its own: a CA change must be
// seen at once through its per-object watches (with the deployed, resourceNames-limited RBAC).
var _ = Describe("CA rotation", func() {
	It("rechecks the profiles of the mesh as soon as a CA Secret changes", func(ctx SpecContext) {
		ns := newNamespace(ctx, "carot")
		applyProfile(ctx, ns, "baseline", "spec: {mesh: Linkerd, mtls: {mode: Strict}}\n")
		expectReady(ctx, ns, "baseline")

		issuer := &corev1.Secret{}
		key := client.ObjectKey{Namespace: linkerdNamespace, Name: "linkerd-identity-issuer"}
		Expect(env.client.Get(ctx, key, issuer)).To(Succeed())
		original := issuer.DeepCopy()
		DeferCleanup(func(ctx context.Context) {
			cur := &corev1.Secret{}
			Expect(env.client.Get(ctx, key, cur)).To(Succeed())
			cur.Data = original.Data
			Expect(env.client.Update(ctx, cur)).To(Succeed())
			expectReady(ctx, ns, "baseline")
		})

		rogue, err := certstest.MintCA(certstest.WithSubject("rogue root"))
		Expect(err).NotTo(HaveOccurred())
		bad, err := certstest.MintIntermediate(rogue, certstest.WithSubject("identity.linkerd.cluster.local"))
		Expect(err).NotTo(HaveOccurred())
		issuer.Data = map[string][]byte{"tls.crt": bad.CertPEM, "tls.key": bad.KeyPEM, "ca.crt": rogue.CertPEM}
		Expect(env.client.Update(ctx, issuer)).To(Succeed())

		Eventually(func(g Gomega) {
			p, err := getProfile(ctx, ns, "baseline")
			g.Expect(err).NotTo(HaveOccurred())
			c := findCondition(p.Status.Conditions, v1alpha1.ConditionCertificatesHealthy)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Reason).To(Equal(v1alpha1.ReasonCertUntrustedChain))
		}).WithContext(ctx).WithTimeout(30*time.Second).Should(Succeed(), "seen long before the 5-minute recheck")
	})
})
