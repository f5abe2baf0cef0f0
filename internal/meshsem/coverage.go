package meshsem

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
	// IstioProxyContainer is Istio's injected sidecar (istio/istio
	// manifests/charts/istio-control/istio-discovery/files/injection-template.yaml), a regular or
	// (native sidecar) init container.
	IstioProxyContainer = "istio-proxy"
	// Istio's opt-out and port annotations (the same template; the -b and -d flags of
	// istio-iptables: includeInboundPorts "*" by default, "" for none).
	IstioInjectLabel             = "sidecar.istio.io/inject"
	IstioExcludeInboundPorts     = "traffic.sidecar.istio.io/excludeInboundPorts"
	IstioIncludeInboundPorts     = "traffic.sidecar.istio.io/includeInboundPorts"
	IstioAmbientRedirection      = "ambient.istio.io/redirection"
	istioAmbientRedirectionValue = "enabled"

	// LinkerdProxyContainer is Linkerd's proxy (linkerd2 pkg/k8s ProxyContainerName).
	LinkerdProxyContainer = "linkerd-proxy"
	// LinkerdInjectAnnotation is Linkerd's opt-in/opt-out annotation.
	LinkerdInjectAnnotation = "linkerd.io/inject"
	// LinkerdSkipInboundPorts lists ports that bypass the proxy, on the pod or, read at injection,
	// its namespace (https://linkerd.io/2/reference/proxy-configuration/).
	LinkerdSkipInboundPorts = "config.linkerd.io/skip-inbound-ports"
)

// PodCoverage says how far a pod's mesh proxy covers its inbound traffic.
type PodCoverage struct {
	// Proxy: the pod runs the mesh's proxy (or, for Istio ambient, is redirected to ztunnel).
	Proxy bool
	// Ambient: the proxy is Istio's ztunnel (ambient.istio.io/redirection: enabled), not a sidecar.
	Ambient bool
	// Container is the proxy container the mesh injects.
	Container string
	// AllPortsExcluded: the proxy intercepts no inbound port.
	AllPortsExcluded bool
	// Excluded are the inbound port ranges the proxy does not intercept, [lo, hi].
	Excluded [][2]int32
	// Skips are the annotations that take inbound ports away from the proxy, the one that
	// excludes ports listed first.
	Skips []PortSkip
	// Why names the annotation or the missing container, for the status.
	Why string
}

// PortSkip is one annotation that takes inbound ports away from the proxy.
type PortSkip struct {
	Annotation, Value string
	// Include: the annotation lists the ports the proxy intercepts, and the others skip it.
	Include bool
	// All: every port skips the proxy (also an entry that is not a port: fail closed).
	All bool
	// Ranges are the ports that skip the proxy, [lo, hi].
	Ranges [][2]int32
}

// Covers says whether the mesh's layers apply to a connection to the pod's port.
func (c PodCoverage) Covers(port int32) bool {
	return c.Proxy && c.SkippedBy(port) == nil
}

// SkippedBy is the annotation that sends connections to port around the proxy; nil when none does
// (or the pod has no proxy at all).
func (c PodCoverage) SkippedBy(port int32) *PortSkip {
	for i := range c.Skips {
		s := &c.Skips[i]
		if s.All || inRanges(s.Ranges, port) {
			return s
		}
	}
	return nil
}

// Gap says whether any inbound port escapes the mesh.
func (c PodCoverage) Gap() bool { return !c.Proxy || c.AllPortsExcluded || len(c.Excluded) > 0 }

// Coverage reads a pod's proxy and port annotations for the profile's mesh. namespaceAnnotations
// are the annotations of the pod's namespace, nil when not known: Linkerd's injector reads
// skip-inbound-ports from the namespace when the pod does not set it.
func Coverage(pod *corev1.Pod, mesh v1alpha1.Mesh, namespaceAnnotations map[string]string) PodCoverage {
	if mesh == v1alpha1.MeshLinkerd {
		if !hasContainer(pod, LinkerdProxyContainer) {
			return PodCoverage{Container: LinkerdProxyContainer,
				Why: "no " + LinkerdProxyContainer + " container" + optOut(pod.Annotations, LinkerdInjectAnnotation, "disabled")}
		}
		v, ok := pod.Annotations[LinkerdSkipInboundPorts]
		if !ok {
			v = namespaceAnnotations[LinkerdSkipInboundPorts]
		}
		ex, all := parsePorts(v)
		c := PodCoverage{Proxy: true, Container: LinkerdProxyContainer, Excluded: ex, AllPortsExcluded: all}
		if c.Gap() {
			c.Skips = []PortSkip{{Annotation: LinkerdSkipInboundPorts, Value: v, All: all, Ranges: ex}}
			c.Why = fmt.Sprintf("%s: %q", LinkerdSkipInboundPorts, v)
		}
		return c
	}
	if pod.Annotations[IstioAmbientRedirection] == istioAmbientRedirectionValue {
		// Ambient: ztunnel intercepts every port; its layer is L4.
		return PodCoverage{Proxy: true, Ambient: true}
	}
	if !hasContainer(pod, IstioProxyContainer) {
		why := "no " + IstioProxyContainer + " container"
		if v, ok := pod.Labels[IstioInjectLabel]; ok {
			why += fmt.Sprintf(" (%s: %q)", IstioInjectLabel, v)
		} else {
			why += optOut(pod.Annotations, IstioInjectLabel, "false")
		}
		return PodCoverage{Container: IstioProxyContainer, Why: why}
	}
	c := PodCoverage{Proxy: true, Container: IstioProxyContainer}
	var whys []string
	var include *PortSkip
	if v, ok := pod.Annotations[IstioIncludeInboundPorts]; ok && strings.TrimSpace(v) != "*" {
		// Only the listed ports are intercepted: every other one is excluded.
		inc, _ := parsePorts(v)
		c.Excluded = complement(inc)
		c.AllPortsExcluded = len(inc) == 0
		include = &PortSkip{Annotation: IstioIncludeInboundPorts, Value: v, Include: true, All: c.AllPortsExcluded, Ranges: c.Excluded}
		whys = append(whys, fmt.Sprintf("%s: %q", IstioIncludeInboundPorts, v))
	}
	if v, ok := pod.Annotations[IstioExcludeInboundPorts]; ok {
		ex, all := parsePorts(v)
		c.Excluded = append(c.Excluded, ex...)
		c.AllPortsExcluded = c.AllPortsExcluded || all
		if len(ex) > 0 || all {
			c.Skips = append(c.Skips, PortSkip{Annotation: IstioExcludeInboundPorts, Value: v, All: all, Ranges: ex})
			whys = append(whys, fmt.Sprintf("%s: %q", IstioExcludeInboundPorts, v))
		}
	}
	if include != nil {
		c.Skips = append(c.Skips, *include)
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

// hasContainer says whether the pod has a container of that name, regular or init (a native
// sidecar is an init container that keeps running).
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

func inRanges(ranges [][2]int32, port int32) bool {
	for _, r := range ranges {
		if port >= r[0] && port <= r[1] {
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
