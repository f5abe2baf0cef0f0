package controllers_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/test/testenv"
)

// apiPod is a pod labelled app=api with the given annotations (no scheduler runs: it stays
// Pending, which is all classification reads).
func apiPod(ns, name string, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": "api"}, Annotations: annotations},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app:1"}}},
	}
}

func withL7Rule(rule string) profileOption {
	return func(p *v1alpha1.MeshSecurityProfile) {
		if p.Spec.Authorization == nil {
			p.Spec.Authorization = &v1alpha1.AuthorizationSpec{}
		}
		p.Spec.Authorization.Rules = append(p.Spec.Authorization.Rules, v1alpha1.AuthorizationRule{
			Name: rule, Action: v1alpha1.ActionAllow,
			Selector: &v1alpha1.WorkloadSelector{MatchLabels: map[string]string{"app": "api"}},
			From:     &v1alpha1.RuleSource{ServiceAccounts: []v1alpha1.ServiceAccountRef{"frontend/web"}},
			To:       &v1alpha1.RuleTarget{Methods: []string{"GET"}},
		})
	}
}

var _ = Describe("Istio ambient data plane", func() {
	It("is not Ready while an L7 rule selects ambient pods without a waypoint, and is once they run sidecars", func() {
		ns := newNamespace()
		pod := apiPod(ns, "api-0", map[string]string{"ambient.istio.io/redirection": "enabled"})
		Expect(k8s.Create(ctx, pod)).To(Succeed())
		p := profile(ns, "p", withL7Rule("web-reads"))
		Expect(k8s.Create(ctx, p)).To(Succeed())

		Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("False/Unenforceable"))
		cur := getProfile(p)
		Expect(cur.Status.DataPlane).To(Equal(&v1alpha1.DataPlaneStatus{Ambient: 1}))
		Expect(condMessage(cur, v1alpha1.ConditionReady)).To(ContainSubstring("authorization.rules[web-reads]"))
		Expect(condMessage(cur, v1alpha1.ConditionReady)).To(ContainSubstring("api-0"))
		// The fail-closed placeholder: an ALLOW policy with no rules admits nothing, and carries
		// no field ztunnel cannot enforce.
		Eventually(func() any {
			ap, err := child(gvkAP, ns, "p-rule-web-reads")
			if err != nil {
				return err.Error()
			}
			rules, found, _ := unstructured.NestedSlice(ap.Object, "spec", "rules")
			return []any{found, len(rules)}
		}).Should(Equal([]any{false, 0}))

		// The pod moves to a sidecar: re-rendered within seconds, with the rule as written.
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(pod), pod)).To(Succeed())
		pod.Annotations = map[string]string{"sidecar.istio.io/status": `{"containers":["istio-proxy"]}`}
		Expect(k8s.Update(ctx, pod)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionReady), "10s").Should(Equal("True/Succeeded"))
		ap, err := child(gvkAP, ns, "p-rule-web-reads")
		Expect(err).NotTo(HaveOccurred())
		rules, _, _ := unstructured.NestedSlice(ap.Object, "spec", "rules")
		Expect(rules).To(HaveLen(1))
		Expect(rules[0]).To(HaveKeyWithValue("to", ConsistOf(HaveKeyWithValue("operation", HaveKeyWithValue("methods", ConsistOf("GET"))))))
		Expect(getProfile(p).Status.Enforcement).To(ContainElement(v1alpha1.RuleEnforcementStatus{
			Rule: "authorization.rules[web-reads]", EnforcedBy: v1alpha1.EnforcedBySidecar, Pods: []string{"api-0"}, PodCount: 1,
		}))
	})

	It("re-renders within seconds when a waypoint is added: the L7 rule moves to the waypoint with a ztunnel policy admitting only it", func() {
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
		Expect(k8s.Create(ctx, apiPod(ns, "api-0", map[string]string{"ambient.istio.io/redirection": "enabled"}))).To(Succeed())
		p := profile(ns, "p", withL7Rule("web-reads"))
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("False/Unenforceable"))

		gw := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
			"metadata": map[string]any{"namespace": ns, "name": "waypoint"},
			"spec": map[string]any{
				"gatewayClassName": "istio-waypoint",
				"listeners":        []any{map[string]any{"name": "mesh", "port": int64(15008), "protocol": "HBONE"}},
			},
		}}
		Expect(k8s.Create(ctx, gw)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionReady), "10s").Should(Equal("True/Succeeded"))
		ap, err := child(gvkAP, ns, "p-rule-web-reads-waypoint")
		Expect(err).NotTo(HaveOccurred())
		Expect(ap.Object["spec"]).To(HaveKeyWithValue("targetRefs", ConsistOf(map[string]any{"kind": "Service", "name": "api"})))
		_, hasSelector := ap.Object["spec"].(map[string]any)["selector"]
		Expect(hasSelector).To(BeFalse())
		zt, err := child(gvkAP, ns, "p-rule-web-reads-ztunnel")
		Expect(err).NotTo(HaveOccurred())
		Expect(zt.Object["spec"]).To(HaveKeyWithValue("rules", ConsistOf(HaveKeyWithValue("from", ConsistOf(HaveKeyWithValue("source",
			Or(HaveKeyWithValue("serviceAccounts", ConsistOf(ns+"/waypoint")), HaveKeyWithValue("principals", ConsistOf("cluster.local/ns/"+ns+"/sa/waypoint")))))))))
		Eventually(resourceState(p, "AuthorizationPolicy", "p-rule-web-reads")).Should(Equal("absent"), "the placeholder is pruned")
		Expect(getProfile(p).Status.DataPlane).To(Equal(&v1alpha1.DataPlaneStatus{Waypoint: 1, Waypoints: []string{ns + "/waypoint"}}))
	})

	It("is not Ready while Istio reports WaypointAccepted=False on a generated policy, and is again once it does not", func() {
		ns := newNamespace()
		Expect(k8s.Create(ctx, apiPod(ns, "api-0", map[string]string{"ambient.istio.io/redirection": "enabled"}))).To(Succeed())
		p := profile(ns, "p", withAllowFrom("web", "frontend/web"))
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))
		Expect(getProfile(p).Status.Enforcement).To(ContainElement(v1alpha1.RuleEnforcementStatus{
			Rule: "authorization.rules[web]", EnforcedBy: v1alpha1.EnforcedByZtunnel, Pods: []string{"api-0"}, PodCount: 1,
		}))

		setIstioConditions := func(conds []any) {
			ap, err := child(gvkAP, ns, "p-rule-web")
			Expect(err).NotTo(HaveOccurred())
			Expect(unstructured.SetNestedSlice(ap.Object, conds, "status", "conditions")).To(Succeed())
			Expect(k8s.Status().Update(ctx, ap)).To(Succeed())
		}
		setIstioConditions([]any{map[string]any{
			"type": "WaypointAccepted", "status": "False", "reason": "AncestorNotBound", "message": "Service api is not bound to a waypoint",
		}})
		Eventually(condition(p, v1alpha1.ConditionReady), "10s").Should(Equal("False/Unenforceable"))
		Expect(condMessage(getProfile(p), v1alpha1.ConditionReady)).To(ContainSubstring("WaypointAccepted=False (AncestorNotBound)"))

		setIstioConditions([]any{map[string]any{"type": "WaypointAccepted", "status": "True", "reason": "Accepted"}})
		Eventually(condition(p, v1alpha1.ConditionReady), "10s").Should(Equal("True/Succeeded"))
	})
})

var _ = Describe("The ambient sample (config/samples/ambient)", func() {
	It("becomes Ready with its L7 rule at the waypoint", func() {
		var objs []*unstructured.Unstructured
		for _, f := range []string{"namespace.yaml", "reviews.yaml"} {
			b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "samples", "ambient", f))
			Expect(err).NotTo(HaveOccurred())
			r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
			for {
				doc, err := r.Read()
				if errors.Is(err, io.EOF) {
					break
				}
				Expect(err).NotTo(HaveOccurred())
				u := &unstructured.Unstructured{}
				Expect(yaml.Unmarshal(doc, &u.Object)).To(Succeed())
				if len(u.Object) > 0 {
					objs = append(objs, u)
				}
			}
		}
		for _, o := range objs {
			Expect(k8s.Create(ctx, o)).To(Succeed(), "%s %s", o.GetKind(), o.GetName())
		}
		Expect(k8s.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: "reviews", Name: "istio-ca-root-cert"},
			Data:       map[string]string{"root-cert.pem": string(istioCA.CertPEM)},
		})).To(Succeed())
		p := &v1alpha1.MeshSecurityProfile{ObjectMeta: metav1.ObjectMeta{Namespace: "reviews", Name: "reviews"}}
		Eventually(condition(p, v1alpha1.ConditionReady)).Should(Equal("True/Succeeded"))
		Expect(getProfile(p).Status.Enforcement).To(ContainElement(HaveField("EnforcedBy", v1alpha1.EnforcedByWaypoint)))
		_, err := child(gvkAP, "reviews", "reviews-rule-productpage-reads-waypoint")
		Expect(err).NotTo(HaveOccurred())
	})
})

// condMessage returns the message of a condition.
func condMessage(p *v1alpha1.MeshSecurityProfile, t string) string {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Message
		}
	}
	return ""
}
