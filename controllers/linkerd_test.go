package controllers_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/certs/certstest"
)

const inboundPolicy = "config.linkerd.io/default-inbound-policy"

func namespaceAnnotation(ns, key string) func() string {
	return func() string {
		n := &corev1.Namespace{}
		Expect(k8s.Get(ctx, client.ObjectKey{Name: ns}, n)).To(Succeed())
		v, ok := n.Annotations[key]
		if !ok {
			return "(none)"
		}
		return v
	}
}

var _ = Describe("Linkerd default inbound policy on the Namespace", Ordered, func() {
	BeforeAll(func() {
		anchor, err := certstest.MintCA(certstest.WithSubject("linkerd anchor"))
		Expect(err).NotTo(HaveOccurred())
		issuer, err := certstest.MintIntermediate(anchor, certstest.WithSubject("linkerd issuer"))
		Expect(err).NotTo(HaveOccurred())
		linkerdCA(anchor, issuer)
	})

	It("is applied, changed with the profile, and removed when the profile goes", func() {
		ns := newNamespace()
		p := profile(ns, "p", withMesh(v1alpha1.MeshLinkerd), withMTLS(v1alpha1.MTLSStrict))
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(namespaceAnnotation(ns, inboundPolicy)).Should(Equal("all-authenticated"))
		Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))
		Expect(resourceState(p, "Namespace", ns)()).To(Equal("InSync"))

		cur := getProfile(p)
		cur.Spec.MTLS.Mode = v1alpha1.MTLSPermissive
		Expect(k8s.Update(ctx, cur)).To(Succeed())
		Eventually(namespaceAnnotation(ns, inboundPolicy)).Should(Equal("all-unauthenticated"))

		By("keeping others' annotations and removing only meshguard's on deletion")
		n := &corev1.Namespace{}
		Expect(k8s.Get(ctx, client.ObjectKey{Name: ns}, n)).To(Succeed())
		n.Annotations["team"] = "payments"
		Expect(k8s.Update(ctx, n)).To(Succeed())
		Expect(k8s.Delete(ctx, getProfile(p))).To(Succeed())
		Eventually(namespaceAnnotation(ns, inboundPolicy)).Should(Equal("(none)"))
		Expect(namespaceAnnotation(ns, "team")()).To(Equal("payments"))
		Eventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(p), &v1alpha1.MeshSecurityProfile{}))
		}).Should(BeTrue(), "the finalizer is released")
	})

	It("reports an existing value set by someone else and does not overwrite it", func() {
		ns := newNamespace()
		n := &corev1.Namespace{}
		Expect(k8s.Get(ctx, client.ObjectKey{Name: ns}, n)).To(Succeed())
		n.Annotations = map[string]string{inboundPolicy: "all-unauthenticated"}
		Expect(k8s.Update(ctx, n, client.FieldOwner("platform-team"))).To(Succeed())

		p := profile(ns, "p", withMesh(v1alpha1.MeshLinkerd), withMTLS(v1alpha1.MTLSStrict))
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionPoliciesApplied)).Should(Equal("False/Conflict"))
		Expect(resourceState(p, "Namespace", ns)()).To(Equal("Conflict"))
		Expect(getProfile(p).Status.Resources).To(ContainElement(HaveField("Message", ContainSubstring("platform-team"))))
		Consistently(namespaceAnnotation(ns, inboundPolicy), "1s").Should(Equal("all-unauthenticated"))
	})

	It("says which running meshed pods still carry the older policy", func() {
		ns := newNamespace()
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-0", Labels: map[string]string{"linkerd.io/control-plane-ns": "linkerd"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "linkerd-proxy", Image: "proxy",
				Env: []corev1.EnvVar{{Name: "LINKERD2_PROXY_INBOUND_DEFAULT_POLICY", Value: "all-unauthenticated"}}}}},
		}
		Expect(k8s.Create(ctx, pod)).To(Succeed())
		p := profile(ns, "p", withMesh(v1alpha1.MeshLinkerd), withMTLS(v1alpha1.MTLSStrict))
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionPoliciesApplied)).Should(Equal("False/RestartRequired"))
		Expect(getProfile(p).Status.Resources).To(ContainElement(HaveField("Message", ContainSubstring("web-0 (all-unauthenticated, from its proxy environment)"))))
		Expect(namespaceAnnotation(ns, inboundPolicy)()).To(Equal("all-authenticated"))
	})

	It("refuses JWT on a Linkerd profile at admission", func() {
		ns := newNamespace()
		p := profile(ns, "p", withMesh(v1alpha1.MeshLinkerd))
		p.Spec.RequestAuthentication = &v1alpha1.RequestAuthenticationSpec{Issuers: []v1alpha1.JWTIssuer{{Issuer: "https://auth.example.com"}}}
		err := k8s.Create(ctx, p)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("requestAuthentication"))
	})
})
