package render

import (
	"maps"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/meshapi"
)

var gvkNetworkPolicy = metav1.GroupVersionKind(meshapi.GVKNetworkPolicy)

// labelNamespaceName is set by the API server on every namespace to its name (Kubernetes 1.21+);
// namespace owners cannot change it, so selecting namespaces by it cannot be spoofed.
const labelNamespaceName = "kubernetes.io/metadata.name"

// Linkerd labels every control plane pod with its component; the proxy injector also puts
// linkerd.io/control-plane-ns on every meshed pod, so that label alone does not say which pod
// serves which port.
const labelLinkerdComponent = "linkerd.io/control-plane-component"

// networkPolicies renders the networking.k8s.io/v1 NetworkPolicies of the profile; they are the
// same for every mesh except for the control plane they let pods reach.
//
// Every field the API server would default (policyTypes, port protocols) is written out, so that
// a live object read back from the server equals the rendered spec and drift detection can
// compare them exactly.
func (r *renderer) networkPolicies() {
	np := r.p.Spec.NetworkPolicy
	if np == nil {
		return
	}
	path := field.NewPath("spec", "networkPolicy")

	if types := r.policyTypes(np.DefaultDeny, path.Child("defaultDeny")); len(types) > 0 {
		// No rules: nothing is allowed in the listed directions unless another policy allows it.
		r.add(gvkNetworkPolicy, r.name("default-deny"), &networkingv1.NetworkPolicy{
			Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{}, PolicyTypes: types},
		})
	}
	if np.AllowDNS {
		r.add(gvkNetworkPolicy, r.name("allow-dns"), r.allowDNS())
	}
	if np.AllowMeshControlPlane {
		if pol := r.allowMeshControlPlane(); pol != nil {
			r.add(gvkNetworkPolicy, r.name("allow-mesh-control-plane"), pol)
		}
	}

	seen := map[string]bool{}
	for i, rule := range np.Ingress {
		p := path.Child("ingress").Index(i)
		if sel, peers, ports, ok := r.npRule(rule.Name, rule.Selector.Meta(), rule.From, rule.Ports, p, "from", seen); ok {
			in := networkingv1.NetworkPolicyIngressRule{From: peers, Ports: ports}
			for _, wp := range r.ambientIngress(&sel, &in) {
				r.add(gvkNetworkPolicy, r.name("ingress", rule.Name, "waypoint", wp), waypointIngress(wp, peers))
			}
			r.add(gvkNetworkPolicy, r.name("ingress", rule.Name), &networkingv1.NetworkPolicy{
				Spec: networkingv1.NetworkPolicySpec{
					PodSelector: sel,
					PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
					Ingress:     []networkingv1.NetworkPolicyIngressRule{in},
				},
			})
		}
	}
	seen = map[string]bool{}
	for i, rule := range np.Egress {
		p := path.Child("egress").Index(i)
		if sel, peers, ports, ok := r.npRule(rule.Name, rule.Selector.Meta(), rule.To, rule.Ports, p, "to", seen); ok {
			r.add(gvkNetworkPolicy, r.name("egress", rule.Name), &networkingv1.NetworkPolicy{
				Spec: networkingv1.NetworkPolicySpec{
					PodSelector: sel,
					PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
					Egress:      []networkingv1.NetworkPolicyEgressRule{{To: peers, Ports: ports}},
				},
			})
		}
	}
}

// npRule validates and converts the parts of one ingress or egress rule; ok is false when any of
// them is invalid (the errors name the fields), so that no half-valid rule is generated.
func (r *renderer) npRule(name string, selector *metav1.LabelSelector, peers []v1alpha1.NetworkPeer, ports []v1alpha1.NetworkPort,
	p *field.Path, peersField string, seen map[string]bool) (metav1.LabelSelector, []networkingv1.NetworkPolicyPeer, []networkingv1.NetworkPolicyPort, bool) {
	if !r.npRuleName(name, p.Child("name"), seen) {
		return metav1.LabelSelector{}, nil, nil, false
	}
	nerr := len(r.errs)
	sel := r.npPodSelector(selector, p.Child("selector"))
	np := r.npPeers(peers, p.Child(peersField))
	npPorts := r.npPorts(ports, p.Child("ports"))
	return sel, np, npPorts, len(r.errs) == nerr
}

// policyTypes returns the directions in a fixed order (Ingress, Egress), each once.
func (r *renderer) policyTypes(dirs []v1alpha1.PolicyDirection, path *field.Path) []networkingv1.PolicyType {
	var ingress, egress bool
	for i, d := range dirs {
		switch d {
		case v1alpha1.DirectionIngress:
			ingress = true
		case v1alpha1.DirectionEgress:
			egress = true
		default:
			r.errs = append(r.errs, field.NotSupported(path.Index(i), d, []string{string(v1alpha1.DirectionIngress), string(v1alpha1.DirectionEgress)}))
		}
	}
	var types []networkingv1.PolicyType
	if ingress {
		types = append(types, networkingv1.PolicyTypeIngress)
	}
	if egress {
		types = append(types, networkingv1.PolicyTypeEgress)
	}
	return types
}

// allowDNS lets every pod of the namespace query the cluster DNS pods, and nothing else of
// kube-system.
func (r *renderer) allowDNS() *networkingv1.NetworkPolicy {
	peers := []networkingv1.NetworkPolicyPeer{{
		NamespaceSelector: namespaceNameSelector(r.opts.DNSNamespace),
		PodSelector:       &metav1.LabelSelector{MatchLabels: maps.Clone(r.opts.DNSPodLabels)},
	}}
	var dnsPorts []networkingv1.NetworkPolicyPort
	for _, p := range r.opts.DNSPorts {
		dnsPorts = append(dnsPorts, npPort(corev1.ProtocolUDP, p), npPort(corev1.ProtocolTCP, p))
	}
	// A node-local cache in the host network (NodeLocal DNSCache) is reached by address only.
	for _, cidr := range r.opts.DNSIPBlocks {
		peers = append(peers, networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: cidr}})
	}
	return &networkingv1.NetworkPolicy{
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{{
				To:    peers,
				Ports: dnsPorts,
			}},
		},
	}
}

// allowMeshControlPlane lets every pod's proxy reach the control plane ports it needs, on the
// control plane pods that serve them and no others.
func (r *renderer) allowMeshControlPlane() *networkingv1.NetworkPolicy {
	var egress []networkingv1.NetworkPolicyEgressRule
	switch r.p.Spec.GetMesh() {
	case v1alpha1.MeshIstio:
		// istiod serves xDS and the CA (certificate signing) on 15012; its pods carry app=istiod
		// whatever their revision (--istiod-pod-labels narrows or renames).
		egress = []networkingv1.NetworkPolicyEgressRule{{
			To: []networkingv1.NetworkPolicyPeer{{
				NamespaceSelector: namespaceNameSelector(r.opts.IstioNamespace),
				PodSelector:       &metav1.LabelSelector{MatchLabels: maps.Clone(r.opts.IstiodPodLabels)},
			}},
			Ports: []networkingv1.NetworkPolicyPort{npPort(corev1.ProtocolTCP, 15012)},
		}}
	case v1alpha1.MeshLinkerd:
		// The proxy talks to the destination pods (destination 8086, policy 8090) and to the
		// identity pods (certificates, 8080). linkerd.io/control-plane-ns=<ns> is on every control
		// plane pod, but also on the proxy injector, heartbeat and any meshed pod, so it would open
		// all three ports to all of them; linkerd.io/control-plane-component pins each port to the
		// component that serves it. Both labels are set by Linkerd's own charts.
		ns := r.opts.LinkerdNamespace
		component := func(c string) *metav1.LabelSelector {
			return &metav1.LabelSelector{MatchLabels: map[string]string{
				labelLinkerdComponent:         c,
				"linkerd.io/control-plane-ns": ns,
			}}
		}
		egress = []networkingv1.NetworkPolicyEgressRule{
			{
				To:    []networkingv1.NetworkPolicyPeer{{NamespaceSelector: namespaceNameSelector(ns), PodSelector: component("destination")}},
				Ports: []networkingv1.NetworkPolicyPort{npPort(corev1.ProtocolTCP, 8086), npPort(corev1.ProtocolTCP, 8090)},
			},
			{
				To:    []networkingv1.NetworkPolicyPeer{{NamespaceSelector: namespaceNameSelector(ns), PodSelector: component("identity")}},
				Ports: []networkingv1.NetworkPolicyPort{npPort(corev1.ProtocolTCP, 8080)},
			},
		}
	default:
		// An unknown mesh is already an error (spec.mesh).
		return nil
	}
	return &networkingv1.NetworkPolicy{
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress:      egress,
		},
	}
}

// npRuleName checks a rule name and that no other rule of the same direction has it.
func (r *renderer) npRuleName(name string, path *field.Path, seen map[string]bool) bool {
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
		r.errs = append(r.errs, field.Invalid(path, name, strings.Join(errs, "; ")))
		return false
	}
	if seen[name] {
		r.errs = append(r.errs, field.Duplicate(path, name))
		return false
	}
	seen[name] = true
	return true
}

// npPodSelector is the rule's selector, or {} (every pod of the namespace) when it has none.
func (r *renderer) npPodSelector(s *metav1.LabelSelector, path *field.Path) metav1.LabelSelector {
	if s == nil {
		return metav1.LabelSelector{}
	}
	r.errs = append(r.errs, metav1validation.ValidateLabelSelector(s, metav1validation.LabelSelectorValidationOptions{}, path)...)
	return *s.DeepCopy()
}

// npPeers translates peers. A peer with namespaces and podSelector becomes one NetworkPolicy
// peer holding both selectors, so that they AND (two peers would OR). A list without peers would
// mean "everyone" to Kubernetes, so it is refused.
func (r *renderer) npPeers(in []v1alpha1.NetworkPeer, path *field.Path) []networkingv1.NetworkPolicyPeer {
	if len(in) == 0 {
		r.errs = append(r.errs, field.Required(path, "at least one peer is required"))
		return nil
	}
	out := make([]networkingv1.NetworkPolicyPeer, 0, len(in))
	for i, p := range in {
		pp := path.Index(i)
		if p.Namespaces == nil && p.PodSelector == nil && p.IPBlock == nil {
			r.errs = append(r.errs, field.Required(pp, "a peer needs namespaces, podSelector or ipBlock"))
			continue
		}
		if p.IPBlock != nil && (p.Namespaces != nil || p.PodSelector != nil) {
			r.errs = append(r.errs, field.Invalid(pp.Child("ipBlock"), p.IPBlock.CIDR, "ipBlock cannot be combined with namespaces or podSelector"))
			continue
		}
		var peer networkingv1.NetworkPolicyPeer
		if p.Namespaces != nil {
			if len(p.Namespaces) == 0 {
				r.errs = append(r.errs, field.Required(pp.Child("namespaces"), "must not be empty: leave the field out instead"))
				continue
			}
			for j, ns := range p.Namespaces {
				if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
					r.errs = append(r.errs, field.Invalid(pp.Child("namespaces").Index(j), ns, strings.Join(errs, "; ")))
				}
			}
			peer.NamespaceSelector = namespaceNamesSelector(p.Namespaces)
		}
		if p.PodSelector != nil {
			// Without namespaces, a pod selector selects pods in the policy's own namespace.
			peer.PodSelector = p.PodSelector.Meta()
			r.errs = append(r.errs, metav1validation.ValidateLabelSelector(peer.PodSelector, metav1validation.LabelSelectorValidationOptions{}, pp.Child("podSelector"))...)
		}
		if b := p.IPBlock; b != nil {
			peer.IPBlock = r.npIPBlock(b, pp.Child("ipBlock"))
		}
		out = append(out, peer)
	}
	return out
}

// npIPBlock checks that cidr is a CIDR and that every exception lies strictly inside it, as the
// API server does.
func (r *renderer) npIPBlock(b *v1alpha1.IPBlock, path *field.Path) *networkingv1.IPBlock {
	cidr, err := netip.ParsePrefix(b.CIDR)
	if err != nil {
		r.errs = append(r.errs, field.Invalid(path.Child("cidr"), b.CIDR, "must be a CIDR such as 10.0.0.0/8"))
		return nil
	}
	for i, e := range b.Except {
		ex, err := netip.ParsePrefix(e)
		if err != nil {
			r.errs = append(r.errs, field.Invalid(path.Child("except").Index(i), e, "must be a CIDR such as 10.1.0.0/16"))
			continue
		}
		if ex.Addr().Is4() != cidr.Addr().Is4() || ex.Bits() <= cidr.Bits() || !cidr.Contains(ex.Addr()) {
			r.errs = append(r.errs, field.Invalid(path.Child("except").Index(i), e, "must be a range strictly inside cidr "+b.CIDR))
		}
	}
	return &networkingv1.IPBlock{CIDR: b.CIDR, Except: append([]string(nil), b.Except...)}
}

// npPorts translates ports, writing the protocol even when it is the default TCP. No ports means
// every port.
func (r *renderer) npPorts(in []v1alpha1.NetworkPort, path *field.Path) []networkingv1.NetworkPolicyPort {
	var out []networkingv1.NetworkPolicyPort
	for i, p := range in {
		pp := path.Index(i)
		proto := corev1.Protocol(p.Protocol)
		switch proto {
		case "":
			proto = corev1.ProtocolTCP
		case corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP:
		default:
			r.errs = append(r.errs, field.NotSupported(pp.Child("protocol"), p.Protocol, []string{"TCP", "UDP", "SCTP"}))
			continue
		}
		if !validPort(p.Port) {
			r.errs = append(r.errs, field.Invalid(pp.Child("port"), p.Port, "must be between 1 and 65535"))
			continue
		}
		port := npPort(proto, p.Port)
		if p.EndPort != nil {
			if !validPort(*p.EndPort) || *p.EndPort < p.Port {
				r.errs = append(r.errs, field.Invalid(pp.Child("endPort"), *p.EndPort, "must be between port and 65535"))
				continue
			}
			port.EndPort = ptr.To(*p.EndPort)
		}
		out = append(out, port)
	}
	return out
}

func npPort(proto corev1.Protocol, port int32) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: ptr.To(proto), Port: ptr.To(intstr.FromInt32(port))}
}

// namespaceNameSelector selects one namespace by name.
func namespaceNameSelector(ns string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{labelNamespaceName: ns}}
}

// namespaceNamesSelector selects namespaces by name, sorted and deduped so that the profile's
// order does not matter.
func namespaceNamesSelector(names []string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
		Key:      labelNamespaceName,
		Operator: metav1.LabelSelectorOpIn,
		Values:   sortedSet(names),
	}}}
}
