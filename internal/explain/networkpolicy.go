package explain

import (
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// endpoint is one end of a connection as NetworkPolicy peers see it: a pod (namespace and
// labels, maybe an IP) or an address outside the cluster's pods.
type endpoint struct {
	pod       bool
	namespace string
	labels    map[string]string
	// labelsUnknown: the pod's labels were not given (a source named by service account).
	labelsUnknown bool
	ip            netip.Addr // invalid when not known
}

func (e endpoint) describe() string {
	if !e.pod {
		return e.ip.String()
	}
	return "pod in namespace " + e.namespace
}

// npLayer evaluates the ingress NetworkPolicies of the destination (ingress true) or the egress
// NetworkPolicies of the source (ingress false).
//
// Kubernetes semantics (https://kubernetes.io/docs/concepts/services-networking/network-policies/):
//   - "a pod is isolated for ingress if there is any NetworkPolicy that both selects the pod and
//     has Ingress in its policyTypes" (egress likewise); a non-isolated pod allows everything.
//   - policyTypes, when unset, is Ingress plus Egress if the policy has egress rules.
//   - policies are additive: an isolated pod accepts what at least one rule of one selecting
//     policy allows; a rule with no from/to matches every peer, with no ports every port.
//   - podSelector alone selects pods of the policy's namespace; namespaceSelector alone every
//     pod of the selected namespaces; both in one peer, the selected pods of those namespaces;
//     ipBlock selects addresses (cidr minus except).
func (e *evaluator) npLayer(ingress bool, target, peer endpoint) LayerResult {
	layer, dir := LayerEgress, networkingv1.PolicyTypeEgress
	if ingress {
		layer, dir = LayerIngress, networkingv1.PolicyTypeIngress
	}
	res := LayerResult{Layer: layer}
	if !target.pod {
		res.Decision = NotApplicable
		res.Reason = "the " + map[bool]string{true: "destination", false: "source"}[ingress] + " is not a pod: NetworkPolicies select pods only"
		return res
	}
	// Three-valued: a policy may select the pod (yes), not, or depend on labels not given.
	type selected struct {
		u   *unstructured.Unstructured
		np  *networkingv1.NetworkPolicy
		sel tri
	}
	var policies []selected
	for _, u := range e.objs.in(groupNetworking, "NetworkPolicy", target.namespace) {
		np := &networkingv1.NetworkPolicy{}
		if err := decode(u, np); err != nil {
			res.Notes = append(res.Notes, fmt.Sprintf("%s ignored: %v", refOf(u), err))
			continue
		}
		if !hasPolicyType(np, dir) {
			continue
		}
		if sel := e.podSelected(&np.Spec.PodSelector, target); sel != no {
			policies = append(policies, selected{u, np, sel})
		}
	}
	e.cniNote(&res)
	isolated, allowedBy := no, no
	var allowing, undecided, isolating []Ref
	for _, p := range policies {
		isolated = isolated.or(p.sel)
		if p.sel == yes {
			isolating = append(isolating, refOf(p.u))
		} else {
			undecided = append(undecided, refOf(p.u))
		}
		n := len(p.np.Spec.Egress)
		if ingress {
			n = len(p.np.Spec.Ingress)
		}
		for j := 0; j < n; j++ {
			var peers []networkingv1.NetworkPolicyPeer
			var ports []networkingv1.NetworkPolicyPort
			if ingress {
				peers, ports = p.np.Spec.Ingress[j].From, p.np.Spec.Ingress[j].Ports
			} else {
				peers, ports = p.np.Spec.Egress[j].To, p.np.Spec.Egress[j].Ports
			}
			m := p.sel.and(e.npPeersMatch(peers, p.u.GetNamespace(), peer)).and(e.npPortsMatch(ports))
			allowedBy = allowedBy.or(m)
			switch m {
			case yes:
				allowing = append(allowing, ruleRef(p.u, j))
			case unknown:
				undecided = append(undecided, ruleRef(p.u, j))
			}
		}
	}
	// The admin tier decides first, NetworkPolicy for the pods it isolates, the baseline tier
	// for the others (adminpolicy.go).
	admin, baseline, bad, err := e.adminTiers()
	if bad != nil {
		return notUnderstood(res, bad, err)
	}
	adm := e.evalTier(admin, ingress, target, peer)
	switch adm.action {
	case "Allow":
		res.Decision, res.Deciding = Allowed, adm.deciding
		res.Reason = "admin tier: " + adm.reason + " — NetworkPolicies cannot deny what it allows"
		return res
	case "Deny":
		res.Decision, res.Deciding = Denied, adm.deciding
		res.Reason = "admin tier: " + adm.reason + " — NetworkPolicies cannot allow what it denies"
		return e.cniOverride(res)
	case "Unknown":
		res.Decision, res.Deciding = Unknown, adm.deciding
		res.Reason = "admin tier: " + adm.reason
		return res
	case "Pass":
		res.Notes = append(res.Notes, "admin tier: "+adm.reason+": passed to the NetworkPolicies")
	}
	bl := e.evalTier(baseline, ingress, target, peer)
	blAllows := map[string]tri{"Allow": yes, "Deny": no, "Unknown": unknown, "Pass": yes, "": yes}[bl.action]
	verdict := isolated.not().or(allowedBy)
	switch blAllows {
	case no:
		verdict = isolated.and(allowedBy)
	case unknown:
		verdict = isolated.and(allowedBy).or(isolated.not().and(unknown))
	}
	switch verdict {
	case yes:
		res.Decision = Allowed
		switch {
		case allowedBy == yes:
			res.Deciding = allowing
			res.Reason = fmt.Sprintf("%d NetworkPolicy rule(s) allow it on %s", len(allowing), e.portString())
		case bl.action == "Allow":
			res.Deciding = bl.deciding
			res.Reason = fmt.Sprintf("no NetworkPolicy with %s in policyTypes selects this pod; baseline tier: %s", dir, bl.reason)
		default:
			res.Reason = fmt.Sprintf("no NetworkPolicy with %s in policyTypes selects this pod: it is not isolated for %s", dir, strings.ToLower(string(dir)))
		}
	case no:
		res.Decision = Denied
		if isolated == yes {
			res.Deciding = isolating
			res.Reason = fmt.Sprintf("these NetworkPolicies isolate the pod for %s and none of their rules allows %s on %s",
				strings.ToLower(string(dir)), peer.describe(), e.portString())
		} else {
			res.Deciding = bl.deciding
			res.Reason = fmt.Sprintf("no NetworkPolicy with %s in policyTypes selects this pod; baseline tier: %s", dir, bl.reason)
		}
		return e.cniOverride(res)
	default:
		res.Decision = Unknown
		res.Deciding = append(undecided, bl.deciding...)
		res.Reason = "whether these policies select the pod or allow the peer depends on what was not given: " + strings.Join(e.npUnknowns, "; ")
	}
	return res
}

// cniOverride makes a denying NetworkPolicy layer Unknown when CNI-specific policies that can
// allow more are served or given.
func (e *evaluator) cniOverride(res LayerResult) LayerResult {
	if kinds := e.cniKinds(); len(kinds) > 0 {
		res.Decision = Unknown
		res.Reason += "; but the cluster serves CNI-specific policies (" + strings.Join(kinds, ", ") +
			") that can allow what NetworkPolicies deny, and meshguard does not model them"
	}
	return res
}

// podSelected is whether a policy's podSelector selects the target pod; unknown when the pod's
// labels were not given and the selector is not empty.
func (e *evaluator) podSelected(s *metav1.LabelSelector, target endpoint) tri {
	if target.labelsUnknown && !selectsEverything(s) {
		e.unknownf("the labels of the pod in %s were not given", target.namespace)
		return unknown
	}
	return triOf(selectorMatches(s, target.labels))
}

func selectsEverything(s *metav1.LabelSelector) bool {
	return s != nil && len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0
}

func (e *evaluator) cniNote(res *LayerResult) {
	if e.opts.NetworkPolicyEnforced == nil {
		res.Notes = append(res.Notes, "assumes the CNI enforces NetworkPolicy (not every CNI does; a CNI without support allows everything)")
	} else if !*e.opts.NetworkPolicyEnforced {
		res.Notes = append(res.Notes, "the CNI does not enforce NetworkPolicy: this answer is what the policies say, the network allows everything")
	}
}

// hasPolicyType applies the defaulting of spec.policyTypes.
func hasPolicyType(np *networkingv1.NetworkPolicy, t networkingv1.PolicyType) bool {
	types := np.Spec.PolicyTypes
	if len(types) == 0 {
		types = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		if len(np.Spec.Egress) > 0 {
			types = append(types, networkingv1.PolicyTypeEgress)
		}
	}
	for _, x := range types {
		if x == t {
			return true
		}
	}
	return false
}

// npPeersMatch: an empty list matches every peer; otherwise any peer.
func (e *evaluator) npPeersMatch(peers []networkingv1.NetworkPolicyPeer, policyNS string, peer endpoint) tri {
	if len(peers) == 0 {
		return yes
	}
	m := no
	for _, p := range peers {
		m = m.or(e.npPeerMatch(p, policyNS, peer))
	}
	return m
}

func (e *evaluator) npPeerMatch(p networkingv1.NetworkPolicyPeer, policyNS string, peer endpoint) tri {
	if p.IPBlock != nil {
		if !peer.ip.IsValid() {
			if peer.pod {
				e.unknownf("ipBlock %s: the pod's IP was not given", p.IPBlock.CIDR)
			}
			return unknown
		}
		if !inCIDR(peer.ip, p.IPBlock.CIDR) {
			return no
		}
		for _, ex := range p.IPBlock.Except {
			if inCIDR(peer.ip, ex) {
				return no
			}
		}
		return yes
	}
	if !peer.pod {
		// Pod and namespace selectors select pods, never outside addresses.
		return no
	}
	m := yes
	if p.NamespaceSelector != nil {
		m = e.nsSelected(p.NamespaceSelector, peer.namespace)
	} else if peer.namespace != policyNS {
		return no
	}
	if m == no || p.PodSelector == nil {
		return m
	}
	return m.and(e.podSelected(p.PodSelector, peer))
}

// npPortsMatch: an empty list matches every port; a port without protocol is TCP; a named port
// matches the container port of that name; endPort makes a range.
func (e *evaluator) npPortsMatch(ports []networkingv1.NetworkPolicyPort) tri {
	if len(ports) == 0 {
		return yes
	}
	m := no
	for _, p := range ports {
		proto := corev1.ProtocolTCP
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		if string(proto) != e.protocol() {
			continue
		}
		port, name := e.wirePort()
		switch {
		case p.Port == nil:
			m = yes // every port of the protocol
		case p.Port.Type == intstr.String:
			if name == "" {
				e.unknownf("named port %q: the destination port's name was not given", p.Port.StrVal)
				m = m.or(unknown)
			} else if p.Port.StrVal == name {
				m = yes
			}
		default:
			lo, hi := p.Port.IntVal, p.Port.IntVal
			if p.EndPort != nil {
				hi = *p.EndPort
			}
			if port >= lo && port <= hi {
				m = yes
			}
		}
	}
	return m
}

func (e *evaluator) protocol() string {
	if e.req.To.Protocol == "" {
		return string(corev1.ProtocolTCP)
	}
	return strings.ToUpper(e.req.To.Protocol)
}

// portString is the port the network sees, saying when it is Linkerd's proxy port.
func (e *evaluator) portString() string {
	port, _ := e.wirePort()
	if _, ambient := e.ambientWirePort(); ambient && port != e.req.To.Port {
		return fmt.Sprintf("%s/%d (HBONE: ambient traffic for port %d arrives there)", e.protocol(), port, e.req.To.Port) // ambient.go
	}
	if port != e.req.To.Port {
		return fmt.Sprintf("%s/%d (Linkerd's proxy inbound port: meshed-to-meshed traffic for port %d arrives there)", e.protocol(), port, e.req.To.Port)
	}
	return fmt.Sprintf("%s/%d", e.protocol(), port)
}

func (e *evaluator) unknownf(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	for _, x := range e.npUnknowns {
		if x == s {
			return
		}
	}
	e.npUnknowns = append(e.npUnknowns, s)
}
