package explain

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshguard/meshguard/internal/dataplane"
)

// evaluator holds one evaluation's inputs.
type evaluator struct {
	objs *objects
	req  Request
	opts Options
	// npUnknowns collect what a NetworkPolicy layer needed but was not given.
	npUnknowns []string
	// mesh is the mesh whose layers are evaluated.
	mesh Mesh
	// pods are the Pods among the inputs that carry the destination's labels.
	pods []*corev1.Pod
	// amb is where an ambient destination's policy is enforced; nil for any other (ambient.go).
	amb *ambientPlan
	// stage and stageTargets say which proxy the Istio layers are evaluated for (ambient.go).
	stage        ambientStage
	stageTargets []dataplane.Target
}

// checkPods reads the destination's Pods among the inputs: when one of them has no mesh proxy,
// or lets the destination port bypass it, the destination is unmeshed for this request (no
// mesh layer applies; the NetworkPolicy layers see the container port). It returns why, and
// notes on what was assumed.
func (e *evaluator) checkPods() (string, []string) {
	if e.req.To.Namespace == "" || e.req.To.Unmeshed || (e.mesh != MeshIstio && e.mesh != MeshLinkerd) {
		return "", nil
	}
	pods, notes := e.destinationPods()
	e.pods = pods
	if len(pods) == 0 {
		return "", append(notes, "no Pod with the destination's labels among the inputs: assumes its pods run the mesh proxy and send this port through it (give the Pods to check)")
	}
	for _, p := range pods {
		if why := e.bypassesProxy(p, e.req.To.Port); why != "" {
			e.req.To.Unmeshed = true
			return why, notes
		}
	}
	return "", notes
}

// Evaluate decides whether req gets through the policies among objs, layer by layer: egress
// NetworkPolicy of the source, ingress NetworkPolicy of the destination, then, for a meshed
// destination, the mesh's mTLS, request authentication and authorization layers.
//
// objs are NetworkPolicies, AdminNetworkPolicies, BaselineAdminNetworkPolicies and
// ClusterNetworkPolicies (policy.networking.k8s.io), Istio PeerAuthentications,
// RequestAuthentications and AuthorizationPolicies (of the destination's namespace and Istio's
// root namespace), Linkerd Servers, ServerAuthorizations, HTTPRoutes, AuthorizationPolicies,
// MeshTLSAuthentications and NetworkAuthentications, the destination's Pods (their proxy,
// excluded ports and probes), and Namespace objects (their labels for namespaceSelectors — a
// namespace without one has unknown labels —, Linkerd's default-inbound-policy annotation).
// Objects of CNI-specific policy kinds (CNIPolicyKinds) make a NetworkPolicy Denied Unknown;
// EnvoyFilters are named as not modelled; other objects are ignored.
//
// An invalid request (no destination port, an unparsable IP) is an error.
func Evaluate(objs []*unstructured.Unstructured, req Request, opts Options) (*Result, error) {
	return evaluate(index(objs), req, opts)
}

// evaluate is Evaluate on indexed objects.
func evaluate(idx *objects, req Request, opts Options) (*Result, error) {
	if err := validate(req); err != nil {
		return nil, err
	}
	e := &evaluator{objs: idx, req: req, opts: opts.withDefaults()}
	e.mesh = e.detectMesh()
	res := &Result{Mesh: e.mesh}
	var bypass string
	var podNotes []string
	// Ambient destinations (ztunnel, waypoints) are decided by internal/dataplane (ambient.go).
	if e.amb = e.planAmbient(); e.amb == nil {
		bypass, podNotes = e.checkPods()
	} else {
		podNotes = e.amb.notes
	}

	src, dst := e.source(), e.destination()
	egressPeer, ingressPeer := dst, src
	if e.amb != nil {
		egressPeer, ingressPeer = e.ambientPeers(src, dst)
	}
	e.npUnknowns = nil
	res.Layers = append(res.Layers, e.npLayer(false, src, egressPeer))
	e.npUnknowns = nil
	res.Layers = append(res.Layers, e.npLayer(true, dst, ingressPeer))

	switch {
	case !dst.pod:
		res.Layers = append(res.Layers, LayerResult{Layer: LayerAuthorization, Decision: NotApplicable,
			Reason: "the destination is outside the cluster's pods: no mesh layer applies"})
	case bypass != "":
		res.Layers = append(res.Layers, LayerResult{Layer: LayerAuthorization, Decision: NotApplicable,
			Reason: bypass + ": mesh policies are not enforced on this port", Notes: podNotes})
	case req.To.Unmeshed:
		res.Layers = append(res.Layers, LayerResult{Layer: LayerAuthorization, Decision: NotApplicable,
			Reason: "the destination has no mesh proxy: mesh policies are not enforced on it"})
	case e.amb != nil:
		res.Layers = append(e.ambientNetworkNotes(res.Layers), e.ambientLayers()...)
	case res.Mesh == MeshIstio:
		res.Layers = append(res.Layers, e.istioLayers()...)
	case res.Mesh == MeshLinkerd:
		res.Layers = append(res.Layers, e.linkerdLayers()...)
	default:
		res.Layers = append(res.Layers, LayerResult{Layer: LayerAuthorization, Decision: NotApplicable,
			Reason: "no mesh: no Istio or Linkerd policy object among the inputs and no --mesh given"})
	}

	if bypass == "" && len(podNotes) > 0 && len(res.Layers) > 0 {
		l := &res.Layers[len(res.Layers)-1]
		l.Notes = append(l.Notes, podNotes...)
	}
	res.Decision = combine(res.Layers, nil)
	return res, nil
}

func validate(req Request) error {
	if req.To.Port < 1 || req.To.Port > 65535 {
		return fmt.Errorf("to.port: %d is not a port (1-65535)", req.To.Port)
	}
	switch req.To.Protocol {
	case "", "TCP", "UDP", "SCTP", "tcp", "udp", "sctp":
	default:
		return fmt.Errorf("to.protocol: %q is not TCP, UDP or SCTP", req.To.Protocol)
	}
	if req.From.IP != "" {
		if _, err := netip.ParseAddr(req.From.IP); err != nil {
			return fmt.Errorf("from.ip: %q is not an IP address", req.From.IP)
		}
	}
	if req.To.IP != "" {
		if _, err := netip.ParseAddr(req.To.IP); err != nil {
			return fmt.Errorf("to.ip: %q is not an IP address", req.To.IP)
		}
	}
	if req.From.Namespace == "" && req.From.IP == "" {
		return fmt.Errorf("from: a namespace (a pod) or an ip (outside the cluster's pods) is required")
	}
	if req.To.Namespace == "" && req.To.IP == "" {
		return fmt.Errorf("to: a namespace (a pod) or an ip (outside the cluster's pods) is required")
	}
	if req.From.Namespace == "" && req.From.ServiceAccount != "" {
		return fmt.Errorf("from.serviceAccount: needs from.namespace")
	}
	if req.HTTP != nil && req.To.Protocol != "" && req.To.Protocol != "TCP" && req.To.Protocol != "tcp" {
		return fmt.Errorf("http: HTTP runs over TCP, not %s", req.To.Protocol)
	}
	return nil
}

func (e *evaluator) source() endpoint {
	s := e.req.From
	ep := endpoint{pod: s.Namespace != "", namespace: s.Namespace, labels: s.PodLabels, labelsUnknown: s.LabelsUnknown}

	if s.IP != "" {
		ep.ip, _ = netip.ParseAddr(s.IP)
	}
	return ep
}

func (e *evaluator) destination() endpoint {
	d := e.req.To
	ep := endpoint{pod: d.Namespace != "", namespace: d.Namespace, labels: d.PodLabels}

	if d.IP != "" {
		ep.ip, _ = netip.ParseAddr(d.IP)
	}
	return ep
}

// detectMesh is the configured mesh, or the one whose objects are among the inputs.
func (e *evaluator) detectMesh() Mesh {
	if e.opts.Mesh != MeshAuto {
		return e.opts.Mesh
	}
	for _, k := range []string{"PeerAuthentication", "RequestAuthentication", "AuthorizationPolicy"} {
		if e.objs.has(groupIstioSecurity, k) {
			return MeshIstio
		}
	}
	for _, k := range []string{"Server", "AuthorizationPolicy", "MeshTLSAuthentication", "NetworkAuthentication", "HTTPRoute", "ServerAuthorization"} {
		if e.objs.has(groupLinkerdPolicy, k) {
			return MeshLinkerd
		}
	}
	if _, ok := e.objs.namespaceAnnotation(e.req.To.Namespace, annotationLinkerdDefaultPolicy); ok {
		return MeshLinkerd
	}
	return MeshNone
}

// linkerdProxied says whether the connection goes from a Linkerd proxy to a Linkerd proxy:
// both ends are meshed pods under Linkerd. Such a connection is sent to the destination
// proxy's inbound port, not to the container port: "Communication between two meshed pods will
// always have its original target port replaced with the proxy's inbound port (by default,
// 4143)" (https://linkerd.io/2/common-errors/network-policy/).
func (e *evaluator) linkerdProxied() bool {
	return e.mesh == MeshLinkerd && e.req.From.Namespace != "" && !e.req.From.Unmeshed &&
		e.req.To.Namespace != "" && !e.req.To.Unmeshed
}

// linkerdProxyPortName is the name of the proxy container's inbound port, which named ports in
// NetworkPolicies match (linkerd2 charts/partials/templates/_proxy.tpl, ports: linkerd-proxy).
const linkerdProxyPortName = "linkerd-proxy"

// wirePort is the destination port the network (NetworkPolicy, admin network policies) sees,
// and its name ("" when not known).
func (e *evaluator) wirePort() (int32, string) {
	if port, ok := e.ambientWirePort(); ok {
		return port, ""
	}
	if e.linkerdProxied() {
		return e.opts.LinkerdProxyInboundPort, linkerdProxyPortName
	}
	return e.req.To.Port, e.req.To.PortName
}
