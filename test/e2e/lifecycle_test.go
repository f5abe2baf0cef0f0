package e2e

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

var _ = Describe("a profile's life cycle", func() {
	It("reads as Current to kstatus once converged, and again after a spec change", func(ctx SpecContext) {
		ns := newNamespace(ctx, "kstatus")
		applyProfile(ctx, ns, "baseline", strictProfile)

		By("computing kstatus from the profile read as unstructured, as Argo CD, Flux and kpt do")
		expectKstatus := func(want status.Status) {
			GinkgoHelper()
			Eventually(func(g Gomega) {
				u, err := env.dynamic.Resource(gvrProfile).Namespace(ns).Get(ctx, "baseline", metav1.GetOptions{})
				g.Expect(err).NotTo(HaveOccurred())
				res, err := status.Compute(u)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(res.Status).To(Equal(want), "kstatus: %s", res.Message)
			}).WithContext(ctx).Should(Succeed())
		}
		expectKstatus(status.CurrentStatus)
		p := expectReady(ctx, ns, "baseline")
		Expect(p.Generation).To(BeEquivalentTo(1))

		By("changing the spec: mTLS Permissive")
		applyProfile(ctx, ns, "baseline", `  mtls:
    mode: Permissive
  authorization:
    defaultDeny: true
  networkPolicy:
    defaultDeny: [Ingress]
`)
		expectKstatus(status.CurrentStatus)
		p = expectReady(ctx, ns, "baseline")
		Expect(p.Generation).To(BeEquivalentTo(2), "the change made a new generation, and Current is for it")
		pa := generatedName(ctx, ns, "baseline", "PeerAuthentication")
		Eventually(func(g Gomega) {
			g.Expect(peerAuthenticationMode(ctx, g, ns, pa)).To(Equal("PERMISSIVE"))
		}).WithContext(ctx).Should(Succeed())
	})

	It("garbage-collects every generated object when the profile is deleted", func(ctx SpecContext) {
		ns := newNamespace(ctx, "gc")
		applyProfile(ctx, ns, "baseline", strictProfile)
		expectReady(ctx, ns, "baseline")
		objs, err := generatedObjects(ctx, ns, "baseline")
		Expect(err).NotTo(HaveOccurred())
		Expect(kindNames(objs)).To(ContainElements(
			ContainSubstring("PeerAuthentication/"), ContainSubstring("AuthorizationPolicy/"), ContainSubstring("NetworkPolicy/"),
		), "the profile generated objects of each kind")

		By("deleting the profile with kubectl")
		kubectl(ctx, "", "delete", "msp", "baseline", "-n", ns)
		_, err = getProfile(ctx, ns, "baseline")
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the profile is gone: %v", err)

		By("waiting for kube-controller-manager's garbage collector to follow the ownerReferences")
		Eventually(func(g Gomega) {
			objs, err := generatedObjects(ctx, ns, "baseline")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(kindNames(objs)).To(BeEmpty())
		}).WithContext(ctx).Should(Succeed())
	})
})
