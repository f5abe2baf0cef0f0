package effective

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// A mesh enforces a profile's mTLS and authorization only in a proxy that intercepts the
// connection: "Linkerd can only enforce policy on meshed pods" (linkerd.io/2/features/server-policy),
// and an Istio sidecar only sees the inbound ports iptables redirects to it. A pod without a proxy,
// or a port the proxy does not intercept, gets the NetworkPolicy layers only.
const (
	// Istio's injected sidecar (istio/istio manifests/charts/istio-control/istio-discovery/files/
	// injection-template.yaml), a regular or (native sidecar) init container.
	istioProxyContainer = "istio-proxy"
	// Istio's opt-out and port annotations (the same template, lines 58 and 109; the -b and -d flags
	// of istio-iptables: includeInboundPorts "*" by default, "" for none).
	istioInjectLabel           = "sidecar.istio.io/inject"
	istioExcludeInboundPorts   = "traffic.sidecar.istio.io/excludeInboundPorts"
	istioIncludeInboundPorts   = "traffic.sidecar.istio.io/includeInboundPorts"
	istioAmbientRedirection    = "ambient.istio.io/redirection"
	istioInjectionNamespaceKey = "istio-injection"
	istioRevisionKey           = "istio.io/rev"
	istioDataplaneModeKey      = "istio.io/dataplane-mode"

	// Linkerd's proxy (linkerd2 pkg/k8s ProxyContainerName) and annotations.
	linkerdProxyContainer  = "linkerd-proxy"
	linkerdInjectKey       = "linkerd.io/inject"
	linkerdSkipInboundPort = "config.linkerd.io/skip-inbound-ports"
)

// PodCoverage says how far a pod's mesh proxy covers its inbound traffic.
type PodCoverage struct {
	// Proxy: the pod runs the mesh's proxy (or, for Istio ambient, is redirected to ztunnel).
	Proxy bool
	// AllPortsExcluded: the proxy intercepts no inbound port.
	AllPortsExcluded bool
	// Excluded are the inbound port ranges the proxy does not intercept, [lo, hi].
	Excluded [][2]int32
	// Why names the annotation or the missing container, for the status.
	Why string
}

// Covers says whether the mesh's layers apply to a connection to the pod's port.
func (c PodCoverage) Covers(port int32) bool {
	if !c.Proxy || c.AllPortsExcluded {
		return false
	}
	for _, r := range c.Excluded {
		if port >= r[0] && port <= r[1] {
			return false
		}
	}
	return true
}

// Gap says whether any inbound port escapes the mesh.
func (c PodCoverage) Gap() bool { return !c.Proxy || c.AllPortsExcluded || len(c.Excluded) > 0 }

// Coverage reads a pod's proxy and port annotations for the profile's mesh.
func Coverage(pod *corev1.Pod, mesh v1alpha1.Mesh) PodCoverage {
	if mesh == v1alpha1.MeshLinkerd {
		if !hasContainer(pod, linkerdProxyContainer) {
			return PodCoverage{Why: "no " + linkerdProxyContainer + " container" + optOut(pod.Annotations, linkerdInjectKey, "disabled")}
		}
		ex, all := parsePorts(pod.Annotations[linkerdSkipInboundPort])
		c := PodCoverage{Proxy: true, Excluded: ex, AllPortsExcluded: all}
		if c.Gap() {
			c.Why = fmt.Sprintf("%s: %q", linkerdSkipInboundPort, pod.Annotations[linkerdSkipInboundPort])
		}
		return c
	}
	if pod.Annotations[istioAmbientRedirection] == "enabled" {
		// Ambient: ztunnel intercepts every port; its layer is L4 (the ambient work says more).
		return PodCoverage{Proxy: true}
	}
	if !hasContainer(pod, istioProxyContainer) {
		why := "no " + istioProxyContainer + " container"
		if v, ok := pod.Labels[istioInjectLabel]; ok {
			why += fmt.Sprintf(" (%s: %q)", istioInjectLabel, v)
		} else {
			why += optOut(pod.Annotations, istioInjectLabel, "false")
		}
		return PodCoverage{Why: why}
	}
	c := PodCoverage{Proxy: true}
	var whys []string
	if v, ok := pod.Annotations[istioIncludeInboundPorts]; ok && strings.TrimSpace(v) != "*" {
		// Only the listed ports are intercepted: every other one is excluded.
		inc, _ := parsePorts(v)
		c.Excluded = complement(inc)
		c.AllPortsExcluded = len(inc) == 0
		whys = append(whys, fmt.Sprintf("%s: %q", istioIncludeInboundPorts, v))
	}
	if v, ok := pod.Annotations[istioExcludeInboundPorts]; ok {
		ex, all := parsePorts(v)
		c.Excluded = append(c.Excluded, ex...)
		c.AllPortsExcluded = c.AllPortsExcluded || all
		if len(ex) > 0 || all {
			whys = append(whys, fmt.Sprintf("%s: %q", istioExcludeInboundPorts, v))
		}
	}
	c.Why = strings.Join(whys, ", ")
	return c
}

func optOut(ann map[string]string, key, value string) string {
	if ann[key] == value {
		return fmt.Sprintf(" (%s: %q)", key, value)
	}
	return ""
}

func hasContainer(pod *corev1.Pod, name string) bool {
	for _, c := range pod.Spec.Containers {
		if c.Name == name {
			return true
		}
	}
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return true
		}
	}
	return false
}

// parsePorts reads a comma-separated list of ports and lo-hi ranges; "*" is every port. A part
// that is not a port is taken as excluding every port (fail closed).
func parsePorts(v string) (ranges [][2]int32, all bool) {
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if part == "*" {
			return nil, true
		}
		lo, hi, isRange := strings.Cut(part, "-")
		if !isRange {
			hi = lo
		}
		l, err1 := strconv.ParseInt(strings.TrimSpace(lo), 10, 32)
		h, err2 := strconv.ParseInt(strings.TrimSpace(hi), 10, 32)
		if err1 != nil || err2 != nil || l > h {
			return nil, true
		}
		ranges = append(ranges, [2]int32{int32(l), int32(h)})
	}
	return ranges, false
}

// complement is every port 1-65535 outside the ranges.
func complement(ranges [][2]int32) [][2]int32 {
	sorted := append([][2]int32(nil), ranges...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i][0] < sorted[j][0] })
	var out [][2]int32
	next := int32(1)
	for _, r := range sorted {
		if r[0] > next {
			out = append(out, [2]int32{next, r[0] - 1})
		}
		if r[1]+1 > next {
			next = r[1] + 1
		}
	}
	if next <= 65535 {
		out = append(out, [2]int32{next, 65535})
	}
	return out
}

// NamespaceMeshed says whether a namespace asks its mesh to inject (or, for Istio ambient,
// redirect) every pod: Istio's istio-injection=enabled, istio.io/rev or
// istio.io/dataplane-mode=ambient labels; Linkerd's linkerd.io/inject annotation.
func NamespaceMeshed(mesh v1alpha1.Mesh, labels, annotations map[string]string) bool {
	if mesh == v1alpha1.MeshLinkerd {
		v := annotations[linkerdInjectKey]
		return v == "enabled" || v == "ingress"
	}
	_, rev := labels[istioRevisionKey]
	return labels[istioInjectionNamespaceKey] == "enabled" || rev || labels[istioDataplaneModeKey] == "ambient"
}

// maxPodRows bounds how many pods the report names; the last row counts the others.
const maxPodRows = 20

// UncoveredPods reports the pods of the profile's namespace that escape the mesh: in a namespace
// that asks for injection (meshed), pods without a proxy; in any namespace, pods whose proxy
// skips inbound ports. Finished and terminating pods are left out. Rows are sorted by pod name,
// at most maxPodRows of them (the last then counts the rest).
func UncoveredPods(p *v1alpha1.MeshSecurityProfile, pods []corev1.Pod, meshed bool) []v1alpha1.ExternalPolicy {
	mesh := p.Spec.GetMesh()
	var out []v1alpha1.ExternalPolicy
	for i := range pods {
		pod := &pods[i]
		if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		c := Coverage(pod, mesh)
		var weakens string
		switch {
		case !c.Proxy && meshed:
			weakens = fmt.Sprintf("mtls and authorization: the pod has no %s proxy (%s): the mesh enforces none of the profile on it", mesh, c.Why)
		case c.Proxy && c.Gap():
			weakens = fmt.Sprintf("mtls and authorization: inbound ports skip the proxy (%s): the mesh enforces none of the profile on them", c.Why)
		default:
			continue
		}
		out = append(out, v1alpha1.ExternalPolicy{APIVersion: "v1", Kind: "Pod", Name: pod.Name, Weakens: weakens})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if len(out) > maxPodRows {
		more := len(out) - (maxPodRows - 1)
		out = append(out[:maxPodRows-1:maxPodRows-1], v1alpha1.ExternalPolicy{APIVersion: "v1", Kind: "Pod",
			Name: fmt.Sprintf("(%d more pods)", more), Weakens: "mtls and authorization: the mesh does not cover them either"})
	}
	return out
}
