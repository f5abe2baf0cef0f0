package effective

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/sets"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// labelNamespaceName is the label the API server sets on every namespace to its name.
const labelNamespaceName = "kubernetes.io/metadata.name"

// netRule is one NetworkPolicy rule with the pods it applies to, in a form that compares.
type netRule struct {
	// pods are the requirements of the policy's podSelector.
	pods []string
	// peers are the keys of the rule's peers; empty means every peer.
	peers []string
	// ports are the rule's ports; empty means every port.
	ports []networkingv1.NetworkPolicyPort
}

// profileNetworkRules collects the ingress and egress rules of the profile's rendered
// NetworkPolicies, including allowDNS and allowMeshControlPlane.
func profileNetworkRules(objs []*unstructured.Unstructured) (ingress, egress []netRule) {
	for _, u := range objs {
		if u.GetKind() != kindNetworkPolicy {
			continue
		}
		np, ok := decodeNetworkPolicy(u)
		if !ok {
			continue
		}
		pods := requirements(&np.Spec.PodSelector)
		for _, r := range np.Spec.Ingress {
			ingress = append(ingress, netRule{pods: pods, peers: peerKeys(r.From), ports: r.Ports})
		}
		for _, r := range np.Spec.Egress {
			egress = append(egress, netRule{pods: pods, peers: peerKeys(r.To), ports: r.Ports})
		}
	}
	return ingress, egress
}

func decodeNetworkPolicy(u *unstructured.Unstructured) (*networkingv1.NetworkPolicy, bool) {
	b, err := json.Marshal(u.Object)
	if err != nil {
		return nil, false
	}
	np := &networkingv1.NetworkPolicy{}
	if err := json.Unmarshal(b, np); err != nil {
		return nil, false
	}
	return np, true
}

// networkPolicy judges a NetworkPolicy of the profile's namespace. NetworkPolicies add up: a rule
// of any policy that selects a pod allows that traffic, so a foreign rule opens a direction the
// profile denies by default unless one of the profile's own rules already allows at least as
// much (the same or fewer pods, the same peers or some of them, the same or fewer ports).
func (f *finder) networkPolicy(u *unstructured.Unstructured) []v1alpha1.ExternalPolicy {
	spec := f.p.Spec.NetworkPolicy
	if spec == nil || len(spec.DefaultDeny) == 0 {
		return nil
	}
	np, ok := decodeNetworkPolicy(u)
	if !ok {
		return nil
	}
	ingressType, egressType := policyTypes(&np.Spec)
	pods := requirements(&np.Spec.PodSelector)
	var out []v1alpha1.ExternalPolicy
	for _, d := range deniedDirections(spec.DefaultDeny) {
		var open []string
		switch {
		case d == v1alpha1.DirectionIngress && ingressType:
			for _, r := range np.Spec.Ingress {
				if !covered(netRule{pods: pods, peers: peerKeys(r.From), ports: r.Ports}, f.ingress) {
					open = append(open, "from "+f.peersText(r.From, "any source")+portsText(r.Ports))
				}
			}
			open = capRules(open)
			if len(open) > 0 {
				out = append(out, f.report(u, fmt.Sprintf("networkPolicy.defaultDeny Ingress: allows ingress %s to %s",
					strings.Join(open, " and "), podsText(&np.Spec.PodSelector))))
			}
		case d == v1alpha1.DirectionEgress && egressType:
			for _, r := range np.Spec.Egress {
				if !covered(netRule{pods: pods, peers: peerKeys(r.To), ports: r.Ports}, f.egress) {
					open = append(open, "to "+f.peersText(r.To, "any destination")+portsText(r.Ports))
				}
			}
			open = capRules(open)
			if len(open) > 0 {
				out = append(out, f.report(u, fmt.Sprintf("networkPolicy.defaultDeny Egress: allows egress %s from %s",
					strings.Join(open, " and "), podsText(&np.Spec.PodSelector))))
			}
		}
	}
	return out
}

// capRules keeps the first maxRulesText rule descriptions and counts the others.
func capRules(rules []string) []string {
	if len(rules) <= maxRulesText {
		return rules
	}
	more := fmt.Sprintf("%d more rules", len(rules)-maxRulesText)
	if len(rules)-maxRulesText == 1 {
		more = "1 more rule"
	}
	return append(rules[:maxRulesText:maxRulesText], more)
}

// deniedDirections is the profile's defaultDeny, each direction once, Ingress first.
func deniedDirections(dirs []v1alpha1.PolicyDirection) []v1alpha1.PolicyDirection {
	var in, eg bool
	for _, d := range dirs {
		in = in || d == v1alpha1.DirectionIngress
		eg = eg || d == v1alpha1.DirectionEgress
	}
	var out []v1alpha1.PolicyDirection
	if in {
		out = append(out, v1alpha1.DirectionIngress)
	}
	if eg {
		out = append(out, v1alpha1.DirectionEgress)
	}
	return out
}

// policyTypes says which directions a NetworkPolicy governs. Without policyTypes, Kubernetes
// reads Ingress, and Egress when the policy has egress rules.
func policyTypes(spec *networkingv1.NetworkPolicySpec) (ingress, egress bool) {
	if len(spec.PolicyTypes) == 0 {
		return true, len(spec.Egress) > 0
	}
	for _, t := range spec.PolicyTypes {
		ingress = ingress || t == networkingv1.PolicyTypeIngress
		egress = egress || t == networkingv1.PolicyTypeEgress
	}
	return ingress, egress
}

// covered says whether one of the profile's rules allows everything r allows.
func covered(r netRule, profile []netRule) bool {
	for _, p := range profile {
		if subset(p.pods, r.pods) && peersCovered(r.peers, p.peers) && portsCovered(r.ports, p.ports) {
			return true
		}
	}
	return false
}

// peersCovered: every peer of r is one of the profile rule's, or the profile rule admits every
// peer.
func peersCovered(r, profile []string) bool {
	if len(profile) == 0 {
		return true
	}
	return len(r) > 0 && subset(r, profile)
}

// portsCovered: every port of r lies in one of the profile rule's ports, or the profile rule
// admits every port.
func portsCovered(r, profile []networkingv1.NetworkPolicyPort) bool {
	if len(profile) == 0 {
		return true
	}
	if len(r) == 0 {
		return false
	}
	for _, rp := range r {
		ok := false
		for _, pp := range profile {
			if portWithin(rp, pp) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// portWithin: a numbered port or range within a numbered port or range of the same protocol.
// Named ports and "every port of a protocol" are only within "every port".
func portWithin(r, p networkingv1.NetworkPolicyPort) bool {
	if protocol(r) != protocol(p) {
		return false
	}
	rlo, rhi, ok := portRange(r)
	if !ok {
		return false
	}
	plo, phi, ok := portRange(p)
	return ok && plo <= rlo && rhi <= phi
}

func portRange(p networkingv1.NetworkPolicyPort) (lo, hi int32, ok bool) {
	if p.Port == nil || p.Port.Type != intstr.Int {
		return 0, 0, false
	}
	lo, hi = p.Port.IntVal, p.Port.IntVal
	if p.EndPort != nil && *p.EndPort > lo {
		hi = *p.EndPort
	}
	return lo, hi, true
}

func protocol(p networkingv1.NetworkPolicyPort) corev1.Protocol {
	if p.Protocol == nil || *p.Protocol == "" {
		return corev1.ProtocolTCP
	}
	return *p.Protocol
}

// requirements writes a label selector as sorted, distinct requirements, matchLabels as "in" with
// one value, so that equivalent selectors compare equal and more requirements mean fewer pods.
func requirements(s *metav1.LabelSelector) []string {
	if s == nil {
		return nil
	}
	var out []string
	for k, v := range s.MatchLabels {
		out = append(out, k+" in ("+v+")")
	}
	for _, e := range s.MatchExpressions {
		vals := append([]string(nil), e.Values...)
		sort.Strings(vals)
		switch e.Operator {
		case metav1.LabelSelectorOpIn:
			out = append(out, e.Key+" in ("+strings.Join(vals, ",")+")")
		case metav1.LabelSelectorOpNotIn:
			out = append(out, e.Key+" notin ("+strings.Join(vals, ",")+")")
		case metav1.LabelSelectorOpExists:
			out = append(out, e.Key+" exists")
		case metav1.LabelSelectorOpDoesNotExist:
			out = append(out, "!"+e.Key)
		default:
			out = append(out, e.Key+" "+string(e.Operator)+" ("+strings.Join(vals, ",")+")")
		}
	}
	return sortedSet(out)
}

// peerKeys identifies peers. A peer without namespaceSelector is in the policy's namespace; with
// one and without podSelector it is every pod of the selected namespaces.
func peerKeys(peers []networkingv1.NetworkPolicyPeer) []string {
	var out []string
	for _, p := range peers {
		key := "ns:-"
		if p.NamespaceSelector != nil {
			key = "ns:[" + strings.Join(requirements(p.NamespaceSelector), ";") + "]"
		}
		switch {
		case p.PodSelector != nil:
			key += " pods:[" + strings.Join(requirements(p.PodSelector), ";") + "]"
		case p.NamespaceSelector != nil:
			key += " pods:[]"
		}
		if b := p.IPBlock; b != nil {
			except := append([]string(nil), b.Except...)
			sort.Strings(except)
			key += " ip:" + b.CIDR + " except:" + strings.Join(except, ",")
		}
		out = append(out, key)
	}
	return sortedSet(out)
}

// peersText says who the peers are, or none when there are no peers (every source or
// destination).
func (f *finder) peersText(peers []networkingv1.NetworkPolicyPeer, none string) string {
	if len(peers) == 0 {
		return none
	}
	parts := make([]string, 0, len(peers))
	for _, p := range peers {
		parts = append(parts, f.peerText(p))
	}
	return strings.Join(parts, " or ")
}

func (f *finder) peerText(p networkingv1.NetworkPolicyPeer) string {
	if b := p.IPBlock; b != nil {
		if len(b.Except) > 0 {
			return b.CIDR + " except " + strings.Join(b.Except, ", ")
		}
		return b.CIDR
	}
	where := "namespace " + f.p.Namespace
	if p.NamespaceSelector != nil {
		where = namespacesText(p.NamespaceSelector)
	}
	if p.PodSelector == nil || isEmptySelector(p.PodSelector) {
		if p.NamespaceSelector != nil {
			return where
		}
		return "all pods in " + where
	}
	return "pods " + selectorText(p.PodSelector) + " in " + where
}

// namespacesText names the namespaces a selector selects: by name when it selects by
// kubernetes.io/metadata.name only.
func namespacesText(s *metav1.LabelSelector) string {
	if isEmptySelector(s) {
		return "all namespaces"
	}
	if len(s.MatchExpressions) == 0 && len(s.MatchLabels) == 1 && s.MatchLabels[labelNamespaceName] != "" {
		return "namespaces " + s.MatchLabels[labelNamespaceName]
	}
	if len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 1 {
		e := s.MatchExpressions[0]
		if e.Key == labelNamespaceName && e.Operator == metav1.LabelSelectorOpIn && len(e.Values) > 0 {
			names := append([]string(nil), e.Values...)
			sort.Strings(names)
			return "namespaces " + strings.Join(names, ", ")
		}
	}
	return "namespaces " + selectorText(s)
}

// podsText says which pods of the namespace a podSelector selects.
func podsText(s *metav1.LabelSelector) string {
	if isEmptySelector(s) {
		return "all pods"
	}
	return "pods " + selectorText(s)
}

func isEmptySelector(s *metav1.LabelSelector) bool {
	return s == nil || (len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0)
}

// selectorText writes a selector as kubectl does (app=web,tier in (a,b)).
func selectorText(s *metav1.LabelSelector) string {
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		return strings.Join(requirements(s), ",")
	}
	return sel.String()
}

// portsText writes ports as " on ports 8080/TCP, 9000-9100/TCP"; nothing for every port.
func portsText(ports []networkingv1.NetworkPolicyPort) string {
	if len(ports) == 0 {
		return ""
	}
	parts := make([]string, 0, len(ports))
	for _, p := range ports {
		n := "any"
		if p.Port != nil {
			n = p.Port.String()
			if p.EndPort != nil && p.Port.Type == intstr.Int && *p.EndPort > p.Port.IntVal {
				n += fmt.Sprintf("-%d", *p.EndPort)
			}
		}
		parts = append(parts, n+"/"+string(protocol(p)))
	}
	return " on ports " + strings.Join(parts, ", ")
}

// sortedSet returns the sorted distinct elements of in.
func sortedSet(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	return sets.List(sets.New(in...))
}

// subset says whether every element of the sorted set a is in the sorted set b.
func subset(a, b []string) bool {
	in := make(map[string]bool, len(b))
	for _, x := range b {
		in[x] = true
	}
	for _, x := range a {
		if !in[x] {
			return false
		}
	}
	return true
}
