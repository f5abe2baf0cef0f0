package render

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/meshsem"
)

// This file holds the checks that keep a rendered profile exactly as strict as it reads, on both
// meshes: what the meshes cannot express is refused (an error naming the field), and what they
// express more strictly than the profile reads is rendered and reported in Result.Warnings.

// checkNamespace refuses profiles in the mesh's root namespace and in the control-plane
// namespaces. Istio reads every policy of its root namespace (meshConfig.rootNamespace, where
// istiod runs by default) as mesh-wide: a default-deny there denies every workload of the mesh
// and cuts off istiod itself, and PeerAuthentications with a selector there are ignored
// (PeerAuthentication reference: "Policy in the root namespace applies to all namespaces").
// Linkerd's control plane must accept its proxies' plaintext and unauthenticated connections.
func (r *renderer) checkNamespace() {
	ns := r.p.Namespace
	var why string
	switch ns {
	case r.opts.IstioRootNamespace:
		why = "it is Istio's root namespace: its policies apply to every namespace of the mesh, and a default-deny there cuts off the control plane"
	case r.opts.IstioNamespace:
		why = "it is the Istio control plane's namespace (--istio-namespace)"
	case r.opts.LinkerdNamespace:
		why = "it is the Linkerd control plane's namespace (--linkerd-namespace)"
	default:
		return
	}
	r.errs = append(r.errs, field.Forbidden(field.NewPath("metadata", "namespace"),
		fmt.Sprintf("a profile cannot govern namespace %q: %s", ns, why)))
}

// checkOverrideOverlaps refuses mTLS overrides that can select the same pod. Istio applies one
// workload-level PeerAuthentication to a pod, the oldest ("If there are more than one ... the
// oldest one wins", PeerAuthentication reference; pilot/pkg/security/authn
// getMostSpecificConfig picks by creation time), and Linkerd one Server per pod port, so the
// mode of such a pod would depend on object ages. Two selectors can select the same pod unless
// they require different values of one label. (The CRD cannot refuse this in CEL: with
// unbounded label keys its estimated cost is far above the API server's budget.)
func (r *renderer) checkOverrideOverlaps() {
	m := r.p.Spec.MTLS
	if m == nil {
		return
	}
	path := field.NewPath("spec", "mtls", "overrides")
	for i := range m.Overrides {
		for j := i + 1; j < len(m.Overrides); j++ {
			a, b := m.Overrides[i].Selector.MatchLabels, m.Overrides[j].Selector.MatchLabels
			if len(a) == 0 || len(b) == 0 || !meshsem.MayOverlap(a, b) {
				continue
			}
			r.errs = append(r.errs, field.Forbidden(path.Index(j).Child("selector"), fmt.Sprintf(
				"a pod labelled %s is selected by overrides[%d] and overrides[%d]: Istio applies only the oldest workload PeerAuthentication to a pod, Linkerd one Server per port; give them contradicting labels or merge them",
				selectorString(mergeLabels(a, b)), i, j)))
		}
	}
}

// checkPaths refuses a * that is not the whole path, its first or its last character: Istio
// matches paths exactly, by prefix ("/api/*"), by suffix ("*.json") or by presence ("*") only,
// so "/users/*/delete" would be compared literally and never match (AuthorizationPolicy
// reference, Operation.paths). The CRD refuses it too.
func (r *renderer) checkPaths(rule *v1alpha1.AuthorizationRule, path *field.Path) {
	if rule.To == nil {
		return
	}
	for j, pa := range rule.To.Paths {
		if !validPathWildcard(pa) {
			r.errs = append(r.errs, field.Invalid(path.Child("to", "paths").Index(j), pa,
				"* may only be the whole path, its first character (suffix match) or its last (prefix match), for example /api/* or *.json"))
		}
	}
}

func validPathWildcard(pa string) bool {
	if pa == "*" || !strings.Contains(pa, "*") {
		return true
	}
	inner := strings.Contains(pa[1:len(pa)-1], "*")
	both := len(pa) > 1 && strings.HasPrefix(pa, "*") && strings.HasSuffix(pa, "*")
	return !inner && !both
}

// istioIdentityRules checks the rules that name senders by namespace or service account against
// the mTLS mode of the workloads they select. Istio reads namespaces and principals from the
// peer certificate, so they never match a plaintext request ("principals ... only available with
// mutual TLS", AuthorizationPolicy reference; ISTIO-SECURITY-2021-004):
//   - a Deny rule by identity on workloads that accept plaintext (Permissive or Disable, for the
//     namespace, an override or one of the rule's ports) lets plaintext from the denied senders
//     through: refused;
//   - an Allow rule by identity on workloads where mTLS is disabled admits nobody there (fail
//     closed): rendered, and reported as a warning.
func (r *renderer) istioIdentityRules(az *v1alpha1.AuthorizationSpec) {
	nsMode := meshsem.NamespaceMode(r.p.Spec.MTLS)
	var overrides []v1alpha1.MTLSOverride
	if m := r.p.Spec.MTLS; m != nil {
		overrides = m.Overrides
	}
	path := field.NewPath("spec", "authorization", "rules")
	for i := range az.Rules {
		rule := &az.Rules[i]
		f := rule.From
		if f == nil || len(f.Namespaces)+len(f.ServiceAccounts) == 0 {
			continue
		}
		var sel map[string]string
		if rule.Selector != nil {
			sel = rule.Selector.MatchLabels
		}
		var ports []int32
		if rule.To != nil {
			ports = rule.To.Ports
		}
		p := path.Index(i)
		deny := rule.Action == v1alpha1.ActionDeny
		// weak: where the rule's workloads accept plaintext; disabled: where mTLS is off.
		var weak, disabled []string
		if nsMode != v1alpha1.MTLSStrict {
			weak = append(weak, "mtls.mode "+string(nsMode))
		}
		if nsMode == v1alpha1.MTLSDisable {
			disabled = append(disabled, "mtls.mode Disable")
		}
		for j, o := range overrides {
			if len(o.Selector.MatchLabels) == 0 || !meshsem.MayOverlap(sel, o.Selector.MatchLabels) {
				continue
			}
			where := fmt.Sprintf("mtls.overrides[%d] (%s)", j, selectorString(o.Selector.MatchLabels))
			wm := meshsem.WorkloadMode(r.p.Spec.MTLS, &o)
			// A port the override sets applies to the rule when the rule has no ports or names it;
			// the override's workload mode applies to every other port.
			workloadApplies := len(ports) == 0
			for _, rp := range ports {
				if !slices.ContainsFunc(o.Ports, func(pm v1alpha1.PortMTLS) bool { return pm.Port == rp }) {
					workloadApplies = true
				}
			}
			if workloadApplies && o.Mode != "" {
				if wm != v1alpha1.MTLSStrict {
					weak = append(weak, where+" mode "+string(wm))
				}
				if wm == v1alpha1.MTLSDisable {
					disabled = append(disabled, where+" mode Disable")
				}
			}
			for _, pm := range o.Ports {
				if len(ports) > 0 && !slices.Contains(ports, pm.Port) {
					continue
				}
				if pm.Mode != v1alpha1.MTLSStrict {
					weak = append(weak, fmt.Sprintf("%s port %d %s", where, pm.Port, pm.Mode))
				}
				if pm.Mode == v1alpha1.MTLSDisable {
					disabled = append(disabled, fmt.Sprintf("%s port %d Disable", where, pm.Port))
				}
			}
		}
		switch {
		case deny && len(weak) > 0:
			r.errs = append(r.errs, field.Forbidden(p.Child("from"), fmt.Sprintf(
				"a Deny rule by namespaces or serviceAccounts needs mutual TLS on every workload and port it covers, but %s accept plaintext, which carries no identity: plaintext from the denied senders would pass (ISTIO-SECURITY-2021-004); make those workloads Strict, add ports that are Strict, or deny by ipBlocks",
				strings.Join(weak, ", "))))
		case !deny && len(disabled) > 0:
			r.warnings = append(r.warnings, fmt.Sprintf(
				"%s: admits nobody where mutual TLS is disabled (%s): Istio matches namespaces and service accounts only on mutual TLS connections",
				p.Child("from"), strings.Join(disabled, ", ")))
		}
	}
}

// istioHTTPOnlyWarnings reports Deny policies whose HTTP conditions also deny plain TCP: Istio
// cannot evaluate methods, paths or request principals on a TCP connection and, for a DENY
// policy, drops those conditions rather than the rule, so the rule matches every TCP connection
// that its other conditions match ("Istio ignores HTTP-only fields ... a DENY policy ... will be
// more restrictive", Authorization for TCP traffic task and AuthorizationPolicy reference).
// This fails closed, so it is rendered, and said.
func (r *renderer) istioHTTPOnlyWarnings() {
	if az := r.p.Spec.Authorization; az != nil {
		path := field.NewPath("spec", "authorization", "rules")
		for _, rule := range az.Rules {
			if rule.Action != v1alpha1.ActionDeny || rule.To == nil || len(rule.To.Ports) > 0 ||
				len(rule.To.Methods)+len(rule.To.Paths) == 0 {
				continue
			}
			r.warnings = append(r.warnings, path.Key(rule.Name).Child("to").String()+
				": a Deny rule with methods or paths and no ports also denies every non-HTTP (TCP) connection to the workloads it selects, whatever the method or path; list the HTTP ports under to.ports to keep it to them")
		}
	}
	if ra := r.p.Spec.RequestAuthentication; ra != nil && ra.RequireToken {
		r.warnings = append(r.warnings, field.NewPath("spec", "requestAuthentication", "requireToken").String()+
			": denies every non-HTTP (TCP) connection to the workloads it selects too: a TCP connection carries no token")
	}
}

// linkerdPortScopeWarnings says where the same profile admits more on Linkerd than on Istio, and
// how NetworkPolicy ports meet Linkerd's proxy.
//
// An Istio ALLOW policy that selects a workload denies every request it does not admit, on every
// port ("If there are any ALLOW policies for the workload, allow the request if any of the ALLOW
// policies match; otherwise deny", AuthorizationPolicy reference). A Linkerd Server covers one
// port: the workload's other ports keep the default inbound policy ("Ports not covered by a
// Server use the default policy", Linkerd authorization policy reference). Without defaultDeny,
// an Allow rule on Linkerd therefore leaves the other ports of its workloads open.
func (r *renderer) linkerdPortScopeWarnings() {
	az := r.p.Spec.Authorization
	if az == nil || az.DefaultDeny {
		return
	}
	path := field.NewPath("spec", "authorization", "rules")
	for _, rule := range az.Rules {
		if rule.Action == v1alpha1.ActionDeny || rule.To == nil || len(rule.To.Ports) == 0 {
			continue
		}
		r.warnings = append(r.warnings, fmt.Sprintf(
			"%s: on Linkerd this rule restricts only ports %s of the workloads it selects; their other ports keep the namespace's default inbound policy, where Istio would deny them; set authorization.defaultDeny to deny them on both meshes",
			path.Key(rule.Name), portsText(rule.To.Ports)))
	}
}

func mergeLabels(a, b map[string]string) map[string]string {
	out := make(map[string]string, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func portsText(ports []int32) string {
	sorted := slices.Clone(ports)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	s := make([]string, len(sorted))
	for i, p := range sorted {
		s[i] = fmt.Sprint(p)
	}
	return strings.Join(s, ", ")
}

// linkerdProxyInboundPort is the port of the Linkerd proxy that receives meshed connections:
// "Communication between two meshed pods will always have its original target port replaced
// with the proxy's inbound port (by default, 4143)" (linkerd.io/2/common-errors/network-policy).
const linkerdProxyInboundPort = 4143

// linkerdNetworkPolicyPortWarnings says that a port-scoped NetworkPolicy rule does not admit
// meshed traffic on Linkerd. meshguard renders the ports as declared, never adding 4143: a rule
// for 4143 would admit the peers' meshed connections to every port behind the proxy, wider than
// the profile says. The rule then fails closed for meshed peers, and this says so.
func (r *renderer) linkerdNetworkPolicyPortWarnings() {
	np := r.p.Spec.NetworkPolicy
	if np == nil {
		return
	}
	path := field.NewPath("spec", "networkPolicy")
	for _, rule := range np.Ingress {
		if len(rule.Ports) > 0 && !hasNetworkPort(rule.Ports, linkerdProxyInboundPort) {
			r.warnings = append(r.warnings, fmt.Sprintf(
				"%s: meshed connections reach a Linkerd pod on the proxy's inbound port %d whatever port they were sent to, so this rule admits only unmeshed senders; meshed senders are refused (add port %d to admit them to every port behind the proxy, where Linkerd's policies then decide)",
				path.Child("ingress").Key(rule.Name).Child("ports"), linkerdProxyInboundPort, linkerdProxyInboundPort))
		}
	}
	for _, rule := range np.Egress {
		if len(rule.Ports) > 0 && !hasNetworkPort(rule.Ports, linkerdProxyInboundPort) {
			r.warnings = append(r.warnings, fmt.Sprintf(
				"%s: a meshed pod's proxy connects to meshed destinations on their inbound port %d, so this rule admits only connections to unmeshed destinations",
				path.Child("egress").Key(rule.Name).Child("ports"), linkerdProxyInboundPort))
		}
	}
}

func hasNetworkPort(ports []v1alpha1.NetworkPort, port int32) bool {
	for _, p := range ports {
		end := p.Port
		if p.EndPort != nil {
			end = *p.EndPort
		}
		if (p.Protocol == "" || p.Protocol == "TCP") && p.Port <= port && port <= end {
			return true
		}
	}
	return false
}

// networkPolicyIsolationWarnings says when a profile allows traffic in a direction its
// defaultDeny does not list. Kubernetes isolates a pod for a direction as soon as any
// NetworkPolicy with that policyType selects it, and then admits only what some policy allows
// ("Isolated and Non-isolated Pods", kubernetes.io/docs/concepts/services-networking/network-policies).
// So allowDNS alone closes every other egress of the namespace, and an ingress rule closes every
// other ingress of the pods it selects. meshguard renders the policies as declared (stricter than
// the profile may read, never wider) and says so, naming the field that isolates.
func (r *renderer) networkPolicyIsolationWarnings() {
	np := r.p.Spec.NetworkPolicy
	if np == nil {
		return
	}
	var ingressDenied, egressDenied bool
	for _, d := range np.DefaultDeny {
		ingressDenied = ingressDenied || d == v1alpha1.DirectionIngress
		egressDenied = egressDenied || d == v1alpha1.DirectionEgress
	}
	path := field.NewPath("spec", "networkPolicy")
	isolates := func(f *field.Path, dir v1alpha1.PolicyDirection, pods string) {
		r.warnings = append(r.warnings, fmt.Sprintf(
			"%s: isolates %s for %s although %s does not list %s: all other %s traffic of those pods is denied (Kubernetes admits only what some NetworkPolicy allows once one selects a pod for a direction); list %s in %s to say so",
			f, pods, dir, path.Child("defaultDeny"), dir, strings.ToLower(string(dir)), dir, path.Child("defaultDeny")))
	}
	if !egressDenied {
		if np.AllowDNS {
			isolates(path.Child("allowDNS"), v1alpha1.DirectionEgress, "every pod of the namespace")
		}
		if np.AllowMeshControlPlane {
			isolates(path.Child("allowMeshControlPlane"), v1alpha1.DirectionEgress, "every pod of the namespace")
		}
		for _, rule := range np.Egress {
			isolates(path.Child("egress").Key(rule.Name), v1alpha1.DirectionEgress, "the pods it selects")
		}
	}
	if !ingressDenied {
		for _, rule := range np.Ingress {
			isolates(path.Child("ingress").Key(rule.Name), v1alpha1.DirectionIngress, "the pods it selects")
		}
	}
}
