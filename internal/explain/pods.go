package explain

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/meshsem"
)

// destinationPods are the Pods among the inputs in the destination's namespace that carry every
// label of the destination, sorted by name, and the Pod objects that could not be read.
func (e *evaluator) destinationPods() ([]*corev1.Pod, []string) {
	var out []*corev1.Pod
	var notes []string
	for _, u := range e.objs.in("", "Pod", e.req.To.Namespace) {
		p := &corev1.Pod{}
		if err := decode(u, p); err != nil {
			notes = append(notes, fmt.Sprintf("%s ignored: %v", refOf(u), err))
			continue
		}
		if meshsem.Selects(e.req.To.PodLabels, p.Labels) {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, notes
}

// bypassesProxy says why traffic to port reaches the pod without its mesh proxy ("" when it
// goes through the proxy). meshsem.Coverage decides, as it does for the profile's status. An
// Istio ambient pod (ztunnel, no sidecar) is read as unmeshed: the sidecar layers evaluated here
// are not what ztunnel enforces.
func (e *evaluator) bypassesProxy(p *corev1.Pod, port int32) string {
	mesh := v1alpha1.MeshIstio
	if e.mesh == MeshLinkerd {
		mesh = v1alpha1.MeshLinkerd
	}
	var nsAnnotations map[string]string
	if u := e.objs.namespaces[p.Namespace]; u != nil {
		nsAnnotations = u.GetAnnotations()
	}
	c := meshsem.Coverage(p, mesh, nsAnnotations)
	if !c.Proxy || c.Ambient {
		container := meshsem.IstioProxyContainer
		if mesh == v1alpha1.MeshLinkerd {
			container = meshsem.LinkerdProxyContainer
		}
		return fmt.Sprintf("pod %s has no %s container", p.Name, container)
	}
	s := c.SkippedBy(port)
	switch {
	case s == nil:
		return ""
	case s.Annotation == meshsem.LinkerdSkipInboundPorts:
		return fmt.Sprintf("pod %s skips port %d (%s: %q)", p.Name, port, s.Annotation, s.Value)
	case s.Include:
		return fmt.Sprintf("pod %s does not send port %d through the proxy (%s: %q)", p.Name, port, s.Annotation, s.Value)
	}
	return fmt.Sprintf("pod %s excludes port %d from the proxy (%s: %q)", p.Name, port, s.Annotation, s.Value)
}

// probePaths are the HTTP GET probe paths of the pods on the destination port; known is false
// when no Pod among the inputs carries the destination's labels.
func probePaths(pods []*corev1.Pod, port int32, portName string) (paths map[string]bool, known bool) {
	paths = map[string]bool{}
	for _, p := range pods {
		for _, c := range p.Spec.Containers {
			names := map[string]int32{}
			for _, cp := range c.Ports {
				names[cp.Name] = cp.ContainerPort
			}
			for _, pr := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
				if pr == nil || pr.HTTPGet == nil {
					continue
				}
				pp := pr.HTTPGet.Port
				if (pp.Type == intstr.Int && pp.IntVal == port) ||
					(pp.Type == intstr.String && (pp.StrVal == portName || names[pp.StrVal] == port)) {
					path := pr.HTTPGet.Path
					if path == "" {
						path = "/"
					}
					paths[path] = true
				}
			}
		}
	}
	return paths, len(pods) > 0
}

// linkerdProbe applies Linkerd's probe authorization to a request the Server or default policy
// does not allow: on a port with no Server, or whose Server has no HTTPRoutes, the policy
// controller adds a GET route for each of the pod's HTTP probe paths, authorized from
// probeNetworks whatever the policy (linkerd2 policy-controller/k8s/index/src/inbound/index.rs,
// probe routes; charts/linkerd-control-plane values.yaml policyController.probeNetworks, default
// 0.0.0.0/0 and ::/0). It returns the decision and reason, or "" when it does not apply.
func (e *evaluator) linkerdProbe(pods []*corev1.Pod) (Decision, string) {
	h := e.req.HTTP
	if h == nil || (h.Method != "" && !strings.EqualFold(h.Method, "GET")) {
		return "", ""
	}
	inNetworks := unknown
	if e.req.From.IP != "" {
		a, _ := netip.ParseAddr(e.req.From.IP)
		inNetworks = no
		for _, n := range e.opts.LinkerdProbeNetworks {
			if inCIDR(a, n) {
				inNetworks = yes
			}
		}
	} else if covers(e.opts.LinkerdProbeNetworks) {
		inNetworks = yes
	}
	if inNetworks == no {
		return "", ""
	}
	paths, known := probePaths(pods, e.req.To.Port, e.req.To.PortName)
	if !known {
		return Unknown, "Linkerd authorizes GET on the pod's HTTP probe paths from probeNetworks whatever the policy; the destination's Pods (their probes) were not given"
	}
	if !paths[h.Path] {
		return "", ""
	}
	if h.Method == "" {
		return Unknown, fmt.Sprintf("%s is a probe path of the destination pods, which Linkerd authorizes for GET from probeNetworks; give the method", h.Path)
	}
	if inNetworks == unknown {
		return Unknown, fmt.Sprintf("%s is a probe path of the destination pods, authorized for GET from probeNetworks %s; the source IP was not given",
			h.Path, strings.Join(e.opts.LinkerdProbeNetworks, ", "))
	}
	return Allowed, fmt.Sprintf("GET %s is a probe path of the destination pods: Linkerd's probe route authorizes it from probeNetworks %s whatever the policy",
		h.Path, strings.Join(e.opts.LinkerdProbeNetworks, ", "))
}

// covers says whether networks hold every IPv4 and IPv6 address.
func covers(networks []string) bool {
	v4, v6 := false, false
	for _, n := range networks {
		switch strings.TrimSpace(n) {
		case "0.0.0.0/0":
			v4 = true
		case "::/0":
			v6 = true
		}
	}
	return v4 && v6
}
