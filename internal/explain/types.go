package explain

import (
	"strconv"

	"github.com/meshguard/meshguard/internal/clusterfacts"
	"github.com/meshguard/meshguard/internal/dataplane"
)

// Mesh names the service mesh whose layers are evaluated.
type Mesh string

// Meshes.
const (
	// MeshAuto picks Istio when Istio security objects are among the inputs, Linkerd when
	// Linkerd policy objects or the default-inbound-policy annotation are, and none otherwise.
	MeshAuto Mesh = ""
	// MeshIstio evaluates PeerAuthentication, RequestAuthentication and AuthorizationPolicy.
	MeshIstio Mesh = "Istio"
	// MeshLinkerd evaluates Servers, HTTPRoutes, AuthorizationPolicies and the default policy.
	MeshLinkerd Mesh = "Linkerd"
	// MeshNone evaluates the NetworkPolicy layers only.
	MeshNone Mesh = "None"
)

// Source is the sender of a request: a pod (namespace and labels, optionally its service
// account and IP) or, with Namespace empty, an address outside the cluster's pods.
type Source struct {
	// Namespace of the source pod; empty for an IP outside the cluster's pods.
	Namespace string `json:"namespace,omitempty"`
	// ServiceAccount of the source pod; empty when not known (its mesh identity is then unknown).
	ServiceAccount string `json:"serviceAccount,omitempty"`
	// PodLabels of the source pod.
	PodLabels map[string]string `json:"podLabels,omitempty"`
	// LabelsUnknown says the source pod's labels are not known (a source named only by its
	// service account): NetworkPolicy selectors that look at them make the answer Unknown.
	LabelsUnknown bool `json:"labelsUnknown,omitempty"`
	// IP of the source; required for an external source, optional for a pod (ipBlock peers,
	// Istio ipBlocks and Linkerd networks need it).
	IP string `json:"ip,omitempty"`
	// Unmeshed is true when the source has no mesh proxy: it sends plaintext, without identity.
	Unmeshed bool `json:"unmeshed,omitempty"`
}

// Destination is the receiving pod and port.
type Destination struct {
	// Namespace of the destination pod (required).
	Namespace string `json:"namespace"`
	// PodLabels of the destination pod.
	PodLabels map[string]string `json:"podLabels,omitempty"`
	// IP of the destination pod; optional (egress ipBlock peers need it).
	IP string `json:"ip,omitempty"`
	// Port is the pod's (container) port, not a Service port.
	Port int32 `json:"port"`
	// PortName is the container port's name, when it has one; named ports in NetworkPolicies
	// and Linkerd Servers match it.
	PortName string `json:"portName,omitempty"`
	// Protocol is TCP (default), UDP or SCTP.
	Protocol string `json:"protocol,omitempty"`
	// Unmeshed is true when the destination has no mesh proxy: no mesh layer is enforced.
	Unmeshed bool `json:"unmeshed,omitempty"`
	// OpaqueTCP says the port does not speak HTTP (for Istio, a Service port named tcp-* or with
	// appProtocol tcp): a request without method and path is then a raw TCP connection. When
	// false, a request without method and path may as well be HTTP, and rules with HTTP
	// conditions make the answer Unknown.
	OpaqueTCP bool `json:"opaqueTCP,omitempty"`
}

// HTTP is the HTTP part of a request; nil for a plain TCP connection.
type HTTP struct {
	// Method such as GET.
	Method string `json:"method,omitempty"`
	// Path such as /api/items (no query string).
	Path string `json:"path,omitempty"`
	// Host is the Host/:authority header, when known.
	Host string `json:"host,omitempty"`
	// Principal is the request principal of the valid JWT the request carries, written
	// <iss>/<sub> as Istio does; empty when the request carries no token. The token is assumed
	// valid for the issuer's keys and audiences; an issuer no RequestAuthentication accepts
	// makes the token invalid.
	Principal string `json:"principal,omitempty"`
}

// Request is one connection or HTTP request from Source to Destination.
type Request struct {
	From Source      `json:"from"`
	To   Destination `json:"to"`
	HTTP *HTTP       `json:"http,omitempty"`
}

// DefaultLinkerdProxyInboundPort is Linkerd's default proxy inbound port (proxy.ports.inbound).
const DefaultLinkerdProxyInboundPort = 4143

// DefaultLinkerdClusterNetworks are Linkerd's default clusterNetworks
// (charts/linkerd-control-plane values.yaml clusterNetworks).
var DefaultLinkerdClusterNetworks = []string{"10.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.168.0.0/16", "fd00::/8"}

// Options are the cluster facts evaluation depends on that are not in the objects.
type Options struct {
	// Mesh selects the mesh layers; MeshAuto detects it from the objects.
	Mesh Mesh
	// Facts are the cluster facts shared with render and the manager: the trust domain, Istio's
	// root namespace and the Linkerd control plane namespace (part of Linkerd identities).
	clusterfacts.Facts
	// LinkerdDefaultPolicy is the cluster-wide proxy.defaultInboundPolicy (default
	// all-unauthenticated).
	LinkerdDefaultPolicy string
	// ClusterNetworks are Linkerd's clusterNetworks, used by the cluster-* default policies
	// (default 10.0.0.0/8, 100.64.0.0/10, 172.16.0.0/12, 192.168.0.0/16, fd00::/8).
	ClusterNetworks []string
	// NetworkPolicyEnforced says whether the CNI enforces NetworkPolicy. nil: not known, and
	// the NetworkPolicy layers say so.
	NetworkPolicyEnforced *bool
	// LinkerdProxyInboundPort is the Linkerd proxy's inbound port (default 4143,
	// proxy.ports.inbound). Meshed-to-meshed Linkerd traffic arrives on it, so the NetworkPolicy
	// layers (and the admin network policy tiers) see this port instead of the container port
	// (https://linkerd.io/2/common-errors/network-policy/).
	LinkerdProxyInboundPort int32
	// LinkerdProbeNetworks are the networks Linkerd authorizes probe routes from (default
	// 0.0.0.0/0 and ::/0, policyController.probeNetworks).
	LinkerdProbeNetworks []string
	// CNIPolicyKinds are the CNI-specific policy kinds the cluster serves, written Kind.group
	// (those of CNIPolicyKinds the API server's discovery lists). meshguard does not model them,
	// so with any of them (or an object of such a kind among the inputs) a NetworkPolicy layer
	// that denies is Unknown. AdminNetworkPolicy, BaselineAdminNetworkPolicy and
	// ClusterNetworkPolicy are modelled: pass their objects among the inputs instead.
	CNIPolicyKinds []string
	// DataPlane are the data plane facts of the destination's namespace (pods' labels and
	// annotations, Services, waypoint Gateways), as the controller gathers them. nil: read from
	// the Pods, Namespace, Services and Gateways among the inputs. They decide whether an Istio
	// destination has a sidecar, is captured by ztunnel, or has a waypoint in its path
	// (internal/dataplane).
	DataPlane *dataplane.Facts
}

func (o Options) withDefaults() Options {
	o.Facts = o.WithDefaults()
	if o.LinkerdDefaultPolicy == "" {
		o.LinkerdDefaultPolicy = "all-unauthenticated"
	}
	if len(o.ClusterNetworks) == 0 {
		o.ClusterNetworks = append([]string(nil), DefaultLinkerdClusterNetworks...)
	}
	if len(o.LinkerdProbeNetworks) == 0 {
		// charts/linkerd-control-plane values.yaml policyController.probeNetworks.
		o.LinkerdProbeNetworks = []string{"0.0.0.0/0", "::/0"}
	}
	if o.LinkerdProxyInboundPort == 0 {
		// charts/linkerd-control-plane values.yaml proxy.ports.inbound.
		o.LinkerdProxyInboundPort = DefaultLinkerdProxyInboundPort
	}
	return o
}

// Decision is a layer's or the request's verdict.
type Decision string

// Decisions.
const (
	// Allowed: the layer lets the request through.
	Allowed Decision = "Allowed"
	// Denied: the layer stops the request.
	Denied Decision = "Denied"
	// Unknown: the answer depends on something not modelled or not given; Reason says what.
	Unknown Decision = "Unknown"
	// NotApplicable: the layer does not take part (no mesh, an unmeshed destination, a TCP
	// request at an HTTP layer). It counts as Allowed.
	NotApplicable Decision = "NotApplicable"
)

// Layer names, in evaluation order.
const (
	LayerEgress         = "egress NetworkPolicy"
	LayerIngress        = "ingress NetworkPolicy"
	LayerMTLS           = "mTLS"
	LayerAuthentication = "request authentication"
	LayerAuthorization  = "authorization"
)

// Ref names an object and, when one decided, the index of its rule.
type Ref struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// Rule is the index of the deciding rule in the object's rule list (NetworkPolicy
	// ingress/egress, AuthorizationPolicy rules); nil when the object decides as a whole.
	Rule *int `json:"rule,omitempty"`
}

// String is Kind namespace/name[rule].
func (r Ref) String() string {
	s := r.Kind + " " + r.Name
	if r.Namespace != "" {
		s = r.Kind + " " + r.Namespace + "/" + r.Name
	}
	if r.Rule != nil {
		s += "[" + strconv.Itoa(*r.Rule) + "]"
	}
	return s
}

// LayerResult is one layer's answer.
type LayerResult struct {
	Layer    string   `json:"layer"`
	Decision Decision `json:"decision"`
	// Deciding are the objects (and rules) that decided; empty when nothing selects the pod or
	// the layer's default decided.
	Deciding []Ref `json:"deciding,omitempty"`
	// Reason says why, in a sentence.
	Reason string `json:"reason"`
	// Notes are facts the answer relies on (assumptions the caller can check, objects ignored).
	Notes []string `json:"notes,omitempty"`
}

// Result is the answer for a request.
type Result struct {
	// Decision is Denied when any layer denies, else Unknown when any layer is Unknown, else
	// Allowed.
	Decision Decision      `json:"decision"`
	Layers   []LayerResult `json:"layers"`
	// Mesh is the mesh whose layers were evaluated.
	Mesh Mesh `json:"mesh"`
}

// Denier returns the first layer that denies, or nil.
func (r *Result) Denier() *LayerResult {
	for i := range r.Layers {
		if r.Layers[i].Decision == Denied {
			return &r.Layers[i]
		}
	}
	return nil
}
