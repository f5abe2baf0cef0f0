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

func TestCoverage(t *testing.T) {
	tests := []struct {
		name    string
		mesh    v1alpha1.Mesh
		pod     corev1.Pod
		covered map[int32]bool
		why     string
	}{
		{"an Istio pod with a sidecar is covered on every port", v1alpha1.MeshIstio,
			pod("a", []string{"app", "istio-proxy"}, nil), map[int32]bool{8080: true, 1: true}, ""},
		{"an Istio pod without a sidecar is covered on no port", v1alpha1.MeshIstio,
			pod("a", []string{"app"}, map[string]string{"sidecar.istio.io/inject": "false"}), map[int32]bool{8080: false},
			`no istio-proxy container (sidecar.istio.io/inject: "false")`},
		{"excludeInboundPorts takes those ports out", v1alpha1.MeshIstio,
			pod("a", []string{"app", "istio-proxy"}, map[string]string{"traffic.sidecar.istio.io/excludeInboundPorts": "8080, 9000"}),
			map[int32]bool{8080: false, 9000: false, 8081: true}, `traffic.sidecar.istio.io/excludeInboundPorts: "8080, 9000"`},
		{"includeInboundPorts leaves every other port out", v1alpha1.MeshIstio,
			pod("a", []string{"app", "istio-proxy"}, map[string]string{"traffic.sidecar.istio.io/includeInboundPorts": "8080"}),
			map[int32]bool{8080: true, 9090: false, 1: false, 65535: false}, "includeInboundPorts"},
		{"includeInboundPorts empty intercepts nothing", v1alpha1.MeshIstio,
			pod("a", []string{"app", "istio-proxy"}, map[string]string{"traffic.sidecar.istio.io/includeInboundPorts": ""}),
			map[int32]bool{8080: false}, "includeInboundPorts"},
		{"includeInboundPorts * is the default", v1alpha1.MeshIstio,
			pod("a", []string{"app", "istio-proxy"}, map[string]string{"traffic.sidecar.istio.io/includeInboundPorts": "*"}),
			map[int32]bool{8080: true}, ""},
		{"a native sidecar (init container) is a proxy", v1alpha1.MeshIstio,
			func() corev1.Pod {
				p := pod("a", []string{"app"}, nil)
				p.Spec.InitContainers = []corev1.Container{{Name: "istio-proxy"}}
				return p
			}(), map[int32]bool{8080: true}, ""},
		{"an ambient pod is redirected to ztunnel", v1alpha1.MeshIstio,
			pod("a", []string{"app"}, map[string]string{"ambient.istio.io/redirection": "enabled"}), map[int32]bool{8080: true}, ""},
		{"a Linkerd pod with the proxy and skip-inbound-ports ranges", v1alpha1.MeshLinkerd,
			pod("a", []string{"app", "linkerd-proxy"}, map[string]string{"config.linkerd.io/skip-inbound-ports": "8080-8090,25"}),
			map[int32]bool{8085: false, 25: false, 8091: true}, "config.linkerd.io/skip-inbound-ports"},
		{"an Istio sidecar does not mesh a Linkerd profile's pod", v1alpha1.MeshLinkerd,
			pod("a", []string{"app", "istio-proxy"}, nil), map[int32]bool{8080: false}, "no linkerd-proxy container"},
		{"an unreadable port list excludes every port (fail closed)", v1alpha1.MeshLinkerd,
			pod("a", []string{"app", "linkerd-proxy"}, map[string]string{"config.linkerd.io/skip-inbound-ports": "http"}),
			map[int32]bool{8080: false}, "skip-inbound-ports"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			c := Coverage(&tt.pod, tt.mesh)
			for port, want := range tt.covered {
				g.Expect(c.Covers(port)).To(Equal(want), fmt.Sprintf("port %d", port))
			}
			if tt.why == "" {
				g.Expect(c.Why).To(BeEmpty())
			} else {
				g.Expect(c.Why).To(ContainSubstring(tt.why))
			}
		})
	}
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
