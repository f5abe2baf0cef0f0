package crosscheck

import (
	"net/netip"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/render"
)

// end is one end of a sampled connection: a pod of the world or an outside address.
type end struct {
	pod *pod
	ip  string
}

func (e end) String() string {
	if e.pod != nil {
		return e.pod.namespace + "/" + e.pod.name
	}
	return e.ip
}

// intent says whether the profile's networkPolicy section allows a connection, read from the
// spec and its documentation (README "networkPolicy" rows, api/v1alpha1 field comments), never
// from the rendered objects:
//   - defaultDeny lists the directions in which the namespace's pods accept nothing that no
//     rule allows;
//   - ingress[] / egress[] allow from/to their peers on their ports, for the pods their selector
//     chooses (every pod without one); a peer's namespaces + podSelector are the selected pods
//     of those namespaces, podSelector alone pods of the profile's namespace, namespaces alone
//     every pod of those namespaces, ipBlock the addresses of cidr minus except; no ports means
//     every port; a port without protocol is TCP; endPort makes a range;
//   - allowDNS allows egress to the DNS pods on UDP and TCP 53; allowMeshControlPlane to
//     istiod:15012/TCP, or Linkerd's destination (8086, 8090) and identity (8080) over TCP.
//
// ruleIsolates chooses what a direction without defaultDeny means when rules exist for it:
// false is the profile read literally (the direction stays open; rules only add), true is
// Kubernetes' semantics of the policy a rule becomes (a rule isolates the pods it selects for
// its direction, and allowDNS / allowMeshControlPlane every pod for egress).
func intent(p *v1alpha1.MeshSecurityProfile, opts render.Options, src, dst end, proto string, port int32, ruleIsolates bool) bool {
	np := p.Spec.NetworkPolicy
	inShop := func(e end) bool { return e.pod != nil && e.pod.namespace == p.Namespace }
	denies := func(d v1alpha1.PolicyDirection) bool {
		for _, x := range np.DefaultDeny {
			if x == d {
				return true
			}
		}
		return false
	}
	egressOK := true
	if inShop(src) {
		isolated := denies(v1alpha1.DirectionEgress)
		allowed := false
		if np.AllowDNS {
			isolated = isolated || ruleIsolates
			allowed = allowed || isDNS(opts, dst, proto, port)
		}
		if np.AllowMeshControlPlane {
			isolated = isolated || ruleIsolates
			allowed = allowed || isControlPlane(p, opts, dst, proto, port)
		}
		for _, r := range np.Egress {
			if !selects(r.Selector, src.pod.labels) {
				continue
			}
			isolated = isolated || ruleIsolates
			allowed = allowed || (peersMatch(p, r.To, dst) && portsMatch(r.Ports, proto, port))
		}
		egressOK = !isolated || allowed
	}
	ingressOK := true
	if inShop(dst) {
		isolated := denies(v1alpha1.DirectionIngress)
		allowed := false
		for _, r := range np.Ingress {
			if !selects(r.Selector, dst.pod.labels) {
				continue
			}
			isolated = isolated || ruleIsolates
			allowed = allowed || (peersMatch(p, r.From, src) && portsMatch(r.Ports, proto, port))
		}
		ingressOK = !isolated || allowed
	}
	return egressOK && ingressOK
}

// selects: a missing selector chooses every pod.
func selects(s *v1alpha1.LabelSelector, l map[string]string) bool {
	if s == nil {
		return true
	}
	sel, err := metav1.LabelSelectorAsSelector(s.Meta())
	return err == nil && sel.Matches(labels.Set(l))
}

func peersMatch(p *v1alpha1.MeshSecurityProfile, peers []v1alpha1.NetworkPeer, e end) bool {
	for _, peer := range peers {
		if peer.IPBlock != nil {
			if e.pod == nil && inBlock(e.ip, peer.IPBlock) {
				return true
			}
			continue
		}
		if e.pod == nil {
			continue
		}
		nsOK := e.pod.namespace == p.Namespace
		if peer.Namespaces != nil {
			nsOK = false
			for _, ns := range peer.Namespaces {
				nsOK = nsOK || ns == e.pod.namespace
			}
		}
		if nsOK && selects(peer.PodSelector, e.pod.labels) {
			return true
		}
	}
	return false
}

func inBlock(ip string, b *v1alpha1.IPBlock) bool {
	a := netip.MustParseAddr(ip)
	if !netip.MustParsePrefix(b.CIDR).Contains(a) {
		return false
	}
	for _, ex := range b.Except {
		if netip.MustParsePrefix(ex).Contains(a) {
			return false
		}
	}
	return true
}

func portsMatch(ports []v1alpha1.NetworkPort, proto string, port int32) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		pp := p.Protocol
		if pp == "" {
			pp = "TCP"
		}
		hi := p.Port
		if p.EndPort != nil {
			hi = *p.EndPort
		}
		if pp == proto && port >= p.Port && port <= hi {
			return true
		}
	}
	return false
}

func isDNS(opts render.Options, e end, proto string, port int32) bool {
	if e.pod == nil || e.pod.namespace != opts.DNSNamespace || port != 53 || (proto != "UDP" && proto != "TCP") {
		return false
	}
	for k, v := range opts.DNSPodLabels {
		if e.pod.labels[k] != v {
			return false
		}
	}
	return true
}

func isControlPlane(p *v1alpha1.MeshSecurityProfile, opts render.Options, e end, proto string, port int32) bool {
	if e.pod == nil || proto != "TCP" {
		return false
	}
	if p.Spec.Mesh == v1alpha1.MeshLinkerd {
		if e.pod.namespace != opts.LinkerdNamespace {
			return false
		}
		switch e.pod.labels["linkerd.io/control-plane-component"] {
		case "destination":
			return port == 8086 || port == 8090
		case "identity":
			return port == 8080
		}
		return false
	}
	return e.pod.namespace == opts.IstioNamespace && e.pod.labels["app"] == "istiod" && port == 15012
}
