package effective

import (
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

func pod(name string, containers []string, ann map[string]string) corev1.Pod {
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNamespace, Annotations: ann}}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c})
	}
	return p
}

func TestUncoveredPods(t *testing.T) {
	g := NewWithT(t)
	done := pod("job-done", []string{"app"}, nil)
	done.Status.Phase = corev1.PodSucceeded
	pods := []corev1.Pod{
		pod("meshed", []string{"app", "istio-proxy"}, nil),
		pod("plain", []string{"app"}, map[string]string{"sidecar.istio.io/inject": "false"}),
		pod("skips", []string{"app", "istio-proxy"}, map[string]string{"traffic.sidecar.istio.io/excludeInboundPorts": "8080"}),
		done,
	}
	p := profile(withMTLS(v1alpha1.MTLSStrict))
	got := UncoveredPods(p, pods, true)
	g.Expect(got).To(HaveLen(2))
	g.Expect(got[0].Name).To(Equal("plain"))
	g.Expect(got[0].Weakens).To(ContainSubstring("has no Istio proxy"))
	g.Expect(got[1].Name).To(Equal("skips"))
	g.Expect(got[1].Weakens).To(ContainSubstring(`excludeInboundPorts: "8080"`))

	// A namespace that does not ask for injection: pods without a proxy are not said to have
	// escaped, but a proxy skipping ports is.
	got = UncoveredPods(p, pods, false)
	g.Expect(got).To(HaveLen(1))
	g.Expect(got[0].Name).To(Equal("skips"))

	var many []corev1.Pod
	for i := 0; i < 30; i++ {
		many = append(many, pod(fmt.Sprintf("p%02d", i), []string{"app"}, nil))
	}
	got = UncoveredPods(p, many, true)
	g.Expect(got).To(HaveLen(maxPodRows))
	g.Expect(got[maxPodRows-1].Name).To(Equal("(11 more pods)"))
}

func TestNamespaceMeshed(t *testing.T) {
	g := NewWithT(t)
	g.Expect(NamespaceMeshed(v1alpha1.MeshIstio, map[string]string{"istio-injection": "enabled"}, nil)).To(BeTrue())
	g.Expect(NamespaceMeshed(v1alpha1.MeshIstio, map[string]string{"istio.io/rev": "canary"}, nil)).To(BeTrue())
	g.Expect(NamespaceMeshed(v1alpha1.MeshIstio, map[string]string{"istio.io/dataplane-mode": "ambient"}, nil)).To(BeTrue())
	g.Expect(NamespaceMeshed(v1alpha1.MeshIstio, map[string]string{"istio-injection": "disabled"}, nil)).To(BeFalse())
	g.Expect(NamespaceMeshed(v1alpha1.MeshLinkerd, nil, map[string]string{"linkerd.io/inject": "enabled"})).To(BeTrue())
	g.Expect(NamespaceMeshed(v1alpha1.MeshLinkerd, map[string]string{"istio-injection": "enabled"}, nil)).To(BeFalse())
}
