package explain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The admin network policy tiers of sigs.k8s.io/network-policy-api
// (apis/v1alpha1/adminnetworkpolicy_types.go, baselineadminnetworkpolicy_types.go,
// shared_types.go; apis/v1alpha2 and v1beta1 clusternetworkpolicy_types.go):
//   - Admin tier: AdminNetworkPolicy (v1alpha1) and ClusterNetworkPolicy with tier Admin
//     (v1alpha2+), by priority (lower first, 0–1000), rules in order. The first matching rule
//     decides: Allow/Accept ("matching traffic will be allowed regardless of NetworkPolicy and
//     BaselineAdminNetworkPolicy rules"), Deny, or Pass (skip the rest of the tier, go to
//     NetworkPolicy). Two policies of one priority that both match: "the implementation can
//     apply any of the matching policies" — undetermined when they disagree.
//   - NetworkPolicy tier: "v1.NetworkPolicy always makes a final decision for selected pods".
//   - Baseline tier: BaselineAdminNetworkPolicy (v1alpha1, a singleton) and ClusterNetworkPolicy
//     with tier Baseline, for pods NetworkPolicy does not isolate; Allow/Accept or Deny, else
//     the Kubernetes default (allowed).
const groupPolicyNetworking = "policy.networking.k8s.io"

// anpSpec is the union of the AdminNetworkPolicy, BaselineAdminNetworkPolicy and
// ClusterNetworkPolicy specs; a field none of them has makes the object not understood.
type anpSpec struct {
	Tier     string     `json:"tier,omitempty"`
	Priority int32      `json:"priority,omitempty"`
	Subject  anpSubject `json:"subject"`
	Ingress  []anpRule  `json:"ingress,omitempty"`
	Egress   []anpRule  `json:"egress,omitempty"`
}

type anpSubject struct {
	Namespaces *metav1.LabelSelector `json:"namespaces,omitempty"`
	Pods       *anpPods              `json:"pods,omitempty"`
}

type anpPods struct {
	NamespaceSelector metav1.LabelSelector `json:"namespaceSelector"`
	PodSelector       metav1.LabelSelector `json:"podSelector"`
}

type anpRule struct {
	Name      string        `json:"name,omitempty"`
	Action    string        `json:"action"`
	From      []anpPeer     `json:"from,omitempty"`
	To        []anpPeer     `json:"to,omitempty"`
	Ports     *[]anpPort    `json:"ports,omitempty"`
	Protocols []cnpProtocol `json:"protocols,omitempty"`
}

type anpPeer struct {
	Namespaces  *metav1.LabelSelector `json:"namespaces,omitempty"`
	Pods        *anpPods              `json:"pods,omitempty"`
	Nodes       *metav1.LabelSelector `json:"nodes,omitempty"`
	Networks    []string              `json:"networks,omitempty"`
	DomainNames []string              `json:"domainNames,omitempty"`
}

type anpPort struct {
	PortNumber *struct {
		Protocol string `json:"protocol,omitempty"`
		Port     int32  `json:"port"`
	} `json:"portNumber,omitempty"`
	NamedPort *string `json:"namedPort,omitempty"`
	PortRange *struct {
		Protocol string `json:"protocol,omitempty"`
		Start    int32  `json:"start"`
		End      int32  `json:"end"`
	} `json:"portRange,omitempty"`
}

type cnpProtocol struct {
	TCP                  *cnpPortMatch `json:"tcp,omitempty"`
	UDP                  *cnpPortMatch `json:"udp,omitempty"`
	SCTP                 *cnpPortMatch `json:"sctp,omitempty"`
	DestinationNamedPort string        `json:"destinationNamedPort,omitempty"`
}

type cnpPortMatch struct {
	DestinationPort *struct {
		Number int32 `json:"number,omitempty"`
		Range  *struct {
			Start int32 `json:"start"`
			End   int32 `json:"end"`
		} `json:"range,omitempty"`
	} `json:"destinationPort,omitempty"`
}

// adminPolicy is one decoded policy of a tier.
type adminPolicy struct {
	u    *unstructured.Unstructured
	spec *anpSpec
}

// tierDecision is what a tier says: a rule decided (allow, deny, pass), none matched, or it is
// undetermined.
type tierDecision struct {
	action   string // "Allow", "Deny", "Pass", "" (no rule matches), "Unknown"
	deciding []Ref
	reason   string
}

// adminTiers returns the policies of the admin and baseline tiers, each sorted by priority, or
// the first object that is not understood.
func (e *evaluator) adminTiers() (admin, baseline []adminPolicy, bad *unstructured.Unstructured, err error) {
	for _, kind := range []string{"AdminNetworkPolicy", "BaselineAdminNetworkPolicy", "ClusterNetworkPolicy"} {
		for _, u := range e.objs.byKindGroup(groupPolicyNetworking, kind) {
			spec, err := decodeANP(u)
			if err != nil {
				return nil, nil, u, err
			}
			p := adminPolicy{u, spec}
			switch {
			case kind == "AdminNetworkPolicy", kind == "ClusterNetworkPolicy" && spec.Tier == "Admin":
				admin = append(admin, p)
			case kind == "BaselineAdminNetworkPolicy", kind == "ClusterNetworkPolicy" && spec.Tier == "Baseline":
				baseline = append(baseline, p)
			default:
				return nil, nil, u, fmt.Errorf("spec.tier: %q is not Admin or Baseline", spec.Tier)
			}
		}
	}
	for _, ps := range [][]adminPolicy{admin, baseline} {
		sort.SliceStable(ps, func(i, j int) bool {
			if ps[i].spec.Priority != ps[j].spec.Priority {
				return ps[i].spec.Priority < ps[j].spec.Priority
			}
			return ps[i].u.GetKind()+"/"+ps[i].u.GetName() < ps[j].u.GetKind()+"/"+ps[j].u.GetName()
		})
	}
	return admin, baseline, nil, nil
}

func decodeANP(u *unstructured.Unstructured) (*anpSpec, error) {
	raw, err := anpPeersOfNow(u.Object["spec"])
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	spec := &anpSpec{}
	if err := d.Decode(spec); err != nil {
		return nil, fmt.Errorf("spec: %v", err)
	}
	return spec, nil
}

// evalTier walks a tier's policies in priority order for the direction (ingress: target is the
// destination, peer the source). Policies of one priority that decide differently make the
// tier undetermined; so does a rule that may match before one that does.
func (e *evaluator) evalTier(ps []adminPolicy, ingress bool, target, peer endpoint) tierDecision {
	for i := 0; i < len(ps); {
		j := i
		for j < len(ps) && ps[j].spec.Priority == ps[i].spec.Priority {
			j++
		}
		var got []tierDecision
		for _, p := range ps[i:j] {
			if d := e.evalAdminPolicy(p, ingress, target, peer); d.action != "" {
				got = append(got, d)
			}
		}
		i = j
		if len(got) == 0 {
			continue
		}
		d := got[0]
		for _, o := range got[1:] {
			if o.action != d.action {
				d.action = "Unknown"
				d.reason = fmt.Sprintf("policies of the same priority %d decide differently (%s); which one applies is up to the implementation",
					ps[i-1].spec.Priority, refsString(append(d.deciding, o.deciding...)))
			}
			d.deciding = append(d.deciding, o.deciding...)
		}
		return d
	}
	return tierDecision{}
}

// evalAdminPolicy is the first rule of one policy that matches ("" when none does).
func (e *evaluator) evalAdminPolicy(p adminPolicy, ingress bool, target, peer endpoint) tierDecision {
	sel := e.anpSubjectSelects(p.spec.Subject, target)
	if sel == no {
		return tierDecision{}
	}
	rules := p.spec.Egress
	if ingress {
		rules = p.spec.Ingress
	}
	for i, r := range rules {
		peers := r.To
		if ingress {
			peers = r.From
		}
		m := sel.and(e.anpPeersMatch(peers, peer, ingress)).and(e.anpPortsMatch(r))
		if m == no {
			continue
		}
		action := r.Action
		if action == "Accept" {
			action = "Allow"
		}
		ref := ruleRef(p.u, i)
		if m == unknown {
			return tierDecision{action: "Unknown", deciding: []Ref{ref},
				reason: fmt.Sprintf("%s (%s) may match: %s", ref, r.Action, strings.Join(e.npUnknowns, "; "))}
		}
		return tierDecision{action: action, deciding: []Ref{ref}, reason: fmt.Sprintf("%s (%s) matches", ref, r.Action)}
	}
	return tierDecision{}
}

func (e *evaluator) anpSubjectSelects(s anpSubject, target endpoint) tri {
	switch {
	case s.Namespaces != nil:
		return e.nsSelected(s.Namespaces, target.namespace)
	case s.Pods != nil:
		return e.nsSelected(&s.Pods.NamespaceSelector, target.namespace).and(e.podSelected(&s.Pods.PodSelector, target))
	}
	return unknown // "fail closed": a subject with no field is of a newer API
}

// anpPeersMatch: any peer. A peer with no known field is of a newer API: it may match.
func (e *evaluator) anpPeersMatch(peers []anpPeer, peer endpoint, ingress bool) tri {
	m := no
	for _, p := range peers {
		switch {
		case p.Namespaces != nil:
			if peer.pod {
				m = m.or(e.nsSelected(p.Namespaces, peer.namespace))
			}
		case p.Pods != nil:
			if peer.pod {
				m = m.or(e.nsSelected(&p.Pods.NamespaceSelector, peer.namespace).and(e.podSelected(&p.Pods.PodSelector, peer)))
			}
		case len(p.Networks) > 0:
			// "cluster-internal traffic will be checked against the rule as well".
			if !peer.ip.IsValid() {
				e.unknownf("networks %s: the peer's IP was not given", strings.Join(p.Networks, ", "))
				m = m.or(unknown)
				continue
			}
			for _, n := range p.Networks {
				if inCIDR(peer.ip, n) {
					m = yes
				}
			}
		case p.Nodes != nil:
			if !peer.pod {
				e.unknownf("nodes peer: whether %s is a node's address is not known", peer.describe())
				m = m.or(unknown)
			}
		case len(p.DomainNames) > 0:
			if !peer.pod {
				e.unknownf("domainNames peer: what %s resolve to is not known", strings.Join(p.DomainNames, ", "))
				m = m.or(unknown)
			}
		default:
			e.unknownf("a peer with no field meshguard knows")
			m = m.or(unknown)
		}
	}
	return m
}

// anpPortsMatch: no ports (v1alpha1) or protocols (v1alpha2) match every port.
func (e *evaluator) anpPortsMatch(r anpRule) tri {
	port, name := e.wirePort()
	proto := e.protocol()
	named := func(n string) tri {
		if name == "" {
			e.unknownf("named port %q: the destination port's name was not given", n)
			return unknown
		}
		return triOf(n == name)
	}
	protoIs := func(p string) bool { return p == "" && proto == "TCP" || strings.EqualFold(p, proto) }
	if r.Ports != nil && len(*r.Ports) > 0 {
		m := no
		for _, p := range *r.Ports {
			switch {
			case p.PortNumber != nil:
				m = m.or(triOf(protoIs(p.PortNumber.Protocol) && p.PortNumber.Port == port))
			case p.NamedPort != nil:
				m = m.or(named(*p.NamedPort))
			case p.PortRange != nil:
				m = m.or(triOf(protoIs(p.PortRange.Protocol) && port >= p.PortRange.Start && port <= p.PortRange.End))
			default:
				m = m.or(unknown)
			}
		}
		return m
	}
	if len(r.Protocols) > 0 {
		m := no
		for _, p := range r.Protocols {
			var pm *cnpPortMatch
			var pp string
			switch {
			case p.TCP != nil:
				pm, pp = p.TCP, "TCP"
			case p.UDP != nil:
				pm, pp = p.UDP, "UDP"
			case p.SCTP != nil:
				pm, pp = p.SCTP, "SCTP"
			case p.DestinationNamedPort != "":
				m = m.or(named(p.DestinationNamedPort))
				continue
			default:
				m = m.or(unknown)
				continue
			}
			if pp != proto {
				continue
			}
			dp := pm.DestinationPort
			switch {
			case dp == nil:
				m = yes
			case dp.Range != nil:
				m = m.or(triOf(port >= dp.Range.Start && port <= dp.Range.End))
			default:
				m = m.or(triOf(port == dp.Number))
			}
		}
		return m
	}
	return yes
}

func refsString(rs []Ref) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = r.String()
	}
	return strings.Join(s, ", ")
}

// CNIPolicyKinds are CNI-specific policy kinds ("Kind.group") that can allow what
// NetworkPolicies deny: "Cilium supports running multiple of these policy types at the same time
// … this may lead to unintended policy allow behavior" (docs.cilium.io/en/stable/network/kubernetes/policy/);
// Calico's (Global)NetworkPolicy has an order and Allow/Deny/Pass actions that run with
// Kubernetes NetworkPolicies (docs.tigera.io/calico/latest/reference/resources/networkpolicy);
// Antrea's too. meshguard does not model them: when the cluster serves one (Options.CNIPolicyKinds)
// or one is among the inputs, a NetworkPolicy layer that denies is Unknown.
var CNIPolicyKinds = []string{
	"CiliumNetworkPolicy.cilium.io",
	"CiliumClusterwideNetworkPolicy.cilium.io",
	"NetworkPolicy.crd.projectcalico.org",
	"GlobalNetworkPolicy.crd.projectcalico.org",
	"NetworkPolicy.projectcalico.org",
	"GlobalNetworkPolicy.projectcalico.org",
	"StagedNetworkPolicy.projectcalico.org",
	"NetworkPolicy.crd.antrea.io",
	"ClusterNetworkPolicy.crd.antrea.io",
}

// cniKinds are the CNI-specific policy kinds served (Options) or among the inputs, sorted.
func (e *evaluator) cniKinds() []string {
	seen := map[string]bool{}
	for _, k := range e.opts.CNIPolicyKinds {
		seen[k] = true
	}
	for _, k := range CNIPolicyKinds {
		kind, group, _ := strings.Cut(k, ".")
		if e.objs.has(group, kind) {
			seen[k] = true
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// anpPeersOfNow returns the spec with its rules' peers in today's shape. network-policy-api
// v0.1.0–v0.1.1 (apis/v1alpha1/shared_types.go) wrote a peer's namespaces as a NamespacedPeer,
// `namespaces: {namespaceSelector: …, sameLabels: […], notSameLabels: […]}`, and a pod peer as
// `pods: {namespaces: <NamespacedPeer>, podSelector: …}`; later releases write the selector
// itself, `namespaces: {matchLabels: …}` and `pods: {namespaceSelector: …, podSelector: …}`. Both
// are served by clusters in the field, so the old form is rewritten to the new one. sameLabels and
// notSameLabels (peers that depend on the subject's own namespace labels) are not modelled: an
// error, so that the layer is undetermined rather than guessed. The input is not modified.
func anpPeersOfNow(spec any) (any, error) {
	m, ok := spec.(map[string]any)
	if !ok {
		return spec, nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	for _, dir := range []string{"ingress", "egress"} {
		rules, ok := m[dir].([]any)
		if !ok {
			continue
		}
		newRules := make([]any, len(rules))
		for i, r := range rules {
			rm, ok := r.(map[string]any)
			if !ok {
				newRules[i] = r
				continue
			}
			nr := make(map[string]any, len(rm))
			for k, v := range rm {
				nr[k] = v
			}
			for _, side := range []string{"from", "to"} {
				peers, ok := rm[side].([]any)
				if !ok {
					continue
				}
				np := make([]any, len(peers))
				for j, peer := range peers {
					p, err := anpPeerOfNow(peer)
					if err != nil {
						return nil, fmt.Errorf("%s[%d].%s[%d]: %w", dir, i, side, j, err)
					}
					np[j] = p
				}
				nr[side] = np
			}
			newRules[i] = nr
		}
		out[dir] = newRules
	}
	return out, nil
}

func anpPeerOfNow(peer any) (any, error) {
	pm, ok := peer.(map[string]any)
	if !ok {
		return peer, nil
	}
	out := make(map[string]any, len(pm))
	for k, v := range pm {
		out[k] = v
	}
	if ns, ok := pm["namespaces"].(map[string]any); ok && isNamespacedPeer(ns) {
		sel, err := namespacedPeerSelector(ns)
		if err != nil {
			return nil, fmt.Errorf("namespaces: %w", err)
		}
		out["namespaces"] = sel
	}
	if pods, ok := pm["pods"].(map[string]any); ok {
		if ns, ok := pods["namespaces"].(map[string]any); ok {
			sel, err := namespacedPeerSelector(ns)
			if err != nil {
				return nil, fmt.Errorf("pods.namespaces: %w", err)
			}
			np := map[string]any{"namespaceSelector": sel}
			for k, v := range pods {
				if k != "namespaces" {
					np[k] = v
				}
			}
			out["pods"] = np
		}
	}
	return out, nil
}

// isNamespacedPeer says whether a peer's namespaces field is v0.1.1's NamespacedPeer rather than
// a label selector: the two share no key.
func isNamespacedPeer(m map[string]any) bool {
	for _, k := range []string{"namespaceSelector", "sameLabels", "notSameLabels"} {
		if _, ok := m[k]; ok {
			return true
		}
	}
	return false
}

func namespacedPeerSelector(m map[string]any) (any, error) {
	for _, k := range []string{"sameLabels", "notSameLabels"} {
		if v, ok := m[k]; ok && v != nil {
			return nil, fmt.Errorf("%s is not modelled (the peer depends on the subject's own namespace labels)", k)
		}
	}
	sel, ok := m["namespaceSelector"]
	if !ok || sel == nil {
		return nil, fmt.Errorf("namespaceSelector is missing")
	}
	return sel, nil
}
