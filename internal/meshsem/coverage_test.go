package meshsem

import (
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

func pod(name string, containers []string, ann map[string]string) corev1.Pod {
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", Annotations: ann}}
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
		nsAnn   map[string]string
	}{
		{"an Istio pod with a sidecar is covered on every port", v1alpha1.MeshIstio,
			pod("a", []string{"app", "istio-proxy"}, nil), map[int32]bool{8080: true, 1: true}, "", nil},
		{"an Istio pod without a sidecar is covered on no port", v1alpha1.MeshIstio,
			pod("a", []string{"app"}, map[string]string{"sidecar.istio.io/inject": "false"}), map[int32]bool{8080: false},
			`no istio-proxy container (sidecar.istio.io/inject: "false")`, nil},
		{"excludeInboundPorts takes those ports out", v1alpha1.MeshIstio,
			pod("a", []string{"app", "istio-proxy"}, map[string]string{"traffic.sidecar.istio.io/excludeInboundPorts": "8080, 9000"}),
			map[int32]bool{8080: false, 9000: false, 8081: true}, `traffic.sidecar.istio.io/excludeInboundPorts: "8080, 9000"`, nil},
		{"includeInboundPorts leaves every other port out", v1alpha1.MeshIstio,
			pod("a", []string{"app", "istio-proxy"}, map[string]string{"traffic.sidecar.istio.io/includeInboundPorts": "8080"}),
			map[int32]bool{8080: true, 9090: false, 1: false, 65535: false}, "includeInboundPorts", nil},
		{"includeInboundPorts empty intercepts nothing", v1alpha1.MeshIstio,
			pod("a", []string{"app", "istio-proxy"}, map[string]string{"traffic.sidecar.istio.io/includeInboundPorts": ""}),
			map[int32]bool{8080: false}, "includeInboundPorts", nil},
		{"includeInboundPorts * is the default", v1alpha1.MeshIstio,
			pod("a", []string{"app", "istio-proxy"}, map[string]string{"traffic.sidecar.istio.io/includeInboundPorts": "*"}),
			map[int32]bool{8080: true}, "", nil},
		{"a native sidecar (init container) is a proxy", v1alpha1.MeshIstio,
			func() corev1.Pod {
				p := pod("a", []string{"app"}, nil)
				p.Spec.InitContainers = []corev1.Container{{Name: "istio-proxy"}}
				return p
			}(), map[int32]bool{8080: true}, "", nil},
		{"an ambient pod is redirected to ztunnel", v1alpha1.MeshIstio,
			pod("a", []string{"app"}, map[string]string{"ambient.istio.io/redirection": "enabled"}), map[int32]bool{8080: true}, "", nil},
		{"a Linkerd pod with the proxy and skip-inbound-ports ranges", v1alpha1.MeshLinkerd,
			pod("a", []string{"app", "linkerd-proxy"}, map[string]string{"config.linkerd.io/skip-inbound-ports": "8080-8090,25"}),
			map[int32]bool{8085: false, 25: false, 8091: true}, "config.linkerd.io/skip-inbound-ports", nil},
		{"an Istio sidecar does not mesh a Linkerd profile's pod", v1alpha1.MeshLinkerd,
			pod("a", []string{"app", "istio-proxy"}, nil), map[int32]bool{8080: false}, "no linkerd-proxy container", nil},
		{"an unreadable port list excludes every port (fail closed)", v1alpha1.MeshLinkerd,
			pod("a", []string{"app", "linkerd-proxy"}, map[string]string{"config.linkerd.io/skip-inbound-ports": "http"}),
			map[int32]bool{8080: false}, "skip-inbound-ports", nil},
		{"Linkerd reads skip-inbound-ports from the namespace when the pod does not set it", v1alpha1.MeshLinkerd,
			pod("a", []string{"app", "linkerd-proxy"}, nil),
			map[int32]bool{4190: false, 8080: true}, "skip-inbound-ports", map[string]string{"config.linkerd.io/skip-inbound-ports": "4190"}},
		{"the pod's skip-inbound-ports replaces the namespace's", v1alpha1.MeshLinkerd,
			pod("a", []string{"app", "linkerd-proxy"}, map[string]string{"config.linkerd.io/skip-inbound-ports": "25"}),
			map[int32]bool{4190: true, 25: false}, "skip-inbound-ports", map[string]string{"config.linkerd.io/skip-inbound-ports": "4190"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			c := Coverage(&tt.pod, tt.mesh, tt.nsAnn)
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
