package controllers_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// ambientWaypointNamespace makes a namespace ambient with a service waypoint in front of app=api:
// the Service api bound by the namespace's istio.io/use-waypoint, the waypoint Gateway, and a pod
// istio-cni captured.
func ambientWaypointNamespace() string {
	ns := newNamespace()
	nsObj := &corev1.Namespace{}
	Expect(k8s.Get(ctx, client.ObjectKey{Name: ns}, nsObj)).To(Succeed())
	nsObj.Labels["istio.io/dataplane-mode"] = "ambient"
	nsObj.Labels["istio.io/use-waypoint"] = "waypoint"
	Expect(k8s.Update(ctx, nsObj)).To(Succeed())
	Expect(k8s.Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "api"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "api"}, Ports: []corev1.ServicePort{{Port: 8080}}},
	})).To(Succeed())
	Expect(k8s.Create(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
		"metadata": map[string]any{"namespace": ns, "name": "waypoint"},
		"spec": map[string]any{
			"gatewayClassName": "istio-waypoint",
			"listeners":        []any{map[string]any{"name": "mesh", "port": int64(15008), "protocol": "HBONE"}},
		},
	}})).To(Succeed())
	Expect(k8s.Create(ctx, apiPod(ns, "api-0", map[string]string{"ambient.istio.io/redirection": "enabled"}))).To(Succeed())
	return ns
}

var _ = Describe("Expectations and weakening in ambient mode", func() {
	It("answer expectations at the waypoint with the facts render used, and report a foreign ALLOW bound to the waypoint's Service", func() {
		ns := ambientWaypointNamespace()
		p := profile(ns, "p", withAllowFrom("web", "frontend/web"),
			withExpectation("web-to-api", "frontend", v1alpha1.ExpectAllowed),
			withExpectation("others-to-api", "other", v1alpha1.ExpectDenied))
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionExpectationsMet), "10s").Should(Equal("True/AllMet"))
		st := getProfile(p).Status.Expectations
		Expect(st).To(HaveLen(2))
		Expect(st[1].Name).To(Equal("others-to-api"))
		// The waypoint decided: the controller's data plane facts (Services, the waypoint Gateway)
		// reached explain, which the Pods and Namespace alone would not have told it.
		Expect(st[1].Layer).To(Equal("authorization (waypoint)"))

		By("reporting a foreign ALLOW bound to the Service the waypoint serves, without default-deny")
		open := foreign("AuthorizationPolicy", ns, "open-api", map[string]any{
			"targetRefs": []any{map[string]any{"kind": "Service", "name": "api"}},
			"rules":      []any{map[string]any{"from": []any{map[string]any{"source": map[string]any{"namespaces": []any{"other"}}}}}},
		})
		Expect(k8s.Create(ctx, open)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionEffective), "10s").Should(Equal("False/Weakened"))
		Expect(getProfile(p).Status.ExternalPolicies).To(ContainElement(HaveField("Weakens", ContainSubstring("authorization.rules[web]"))))
		Eventually(condition(p, v1alpha1.ConditionExpectationsMet), "10s").Should(Equal("False/ExpectationNotMet"))
	})
})
