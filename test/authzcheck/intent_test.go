package authzcheck

import (
	"net/netip"
	"slices"
	"strings"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// request is one sampled HTTP request into the profile's namespace.
type request struct {
	src       source
	dstLabels map[string]string
	port      int32
	method    string
	path      string
	principal string // "<iss>/<sub>" of the token the request carries; empty without one
}

// intent says whether the profile's authorization admits the request, read from the spec alone.
// It is the meaning the API documents (api/v1alpha1: "within from (and within to) every list
// that is set must match (AND), and within a list any entry may match (OR)"; "Deny rules win
// over Allow rules"; defaultDeny "rejects every request that no Allow rule admits"), with the
// facts of each mesh that decide what a rule can see and where it applies:
//
// Istio (https://istio.io/latest/docs/concepts/security/#authorization-policies):
//   - a workload that some ALLOW policy selects admits only what one of them matches; a
//     workload that none selects admits everything unless defaultDeny (allow-nothing);
//   - a peer identity (service account, namespace) exists only over mutual TLS: the source has
//     a proxy and the namespace's mode is not Disable;
//   - a request principal exists only when a RequestAuthentication selecting the workload
//     accepts the token's issuer; requireToken denies requests without one on those workloads.
//
// Linkerd (https://linkerd.io/2/reference/authorization-policy/):
//   - policy is per port: a rule governs the ports it names on the pods it selects (a Server
//     each); other ports keep the namespace's default inbound policy: deny with defaultDeny,
//     all-authenticated for Strict, all-unauthenticated for Permissive and Disable (meshed
//     clients use mutual TLS whatever the mode);
//   - a peer identity exists when the source has a proxy; in Strict mode only clients with one
//     are admitted, by a rule too.
func intent(p *v1alpha1.MeshSecurityProfile, req request) bool {
	az := p.Spec.Authorization
	mode := v1alpha1.MTLSStrict
	if p.Spec.MTLS != nil && p.Spec.MTLS.Mode != "" {
		mode = p.Spec.MTLS.Mode
	}
	if p.Spec.Mesh == v1alpha1.MeshLinkerd {
		identity := !req.src.unmeshed
		var governing []v1alpha1.AuthorizationRule
		if az != nil {
			for _, r := range az.Rules {
				if selects(r.Selector, req.dstLabels) && r.To != nil && slices.Contains(r.To.Ports, req.port) {
					governing = append(governing, r)
				}
			}
		}
		if len(governing) > 0 {
			for _, r := range governing {
				// Strict: Linkerd enforces mutual TLS in the same policy, so a rule admits only
				// meshed clients (one without from: any meshed client).
				if ruleMatches(r, req, identity, "") && (identity || mode != v1alpha1.MTLSStrict) {
					return true
				}
			}
			return false
		}
		switch {
		case az != nil && az.DefaultDeny:
			return false
		case mode == v1alpha1.MTLSStrict:
			return identity
		default:
			return true
		}
	}

	identity := !req.src.unmeshed && mode != v1alpha1.MTLSDisable
	principal := ""
	ra := p.Spec.RequestAuthentication
	raSelects := ra != nil && selects(ra.Selector, req.dstLabels)
	if raSelects && req.principal != "" {
		for _, is := range ra.Issuers {
			if strings.HasPrefix(req.principal, is.Issuer+"/") {
				principal = req.principal
			}
		}
	}
	if raSelects && ra.RequireToken && principal == "" {
		return false
	}
	if az == nil {
		return true
	}
	selected := false
	allowed := false
	for _, r := range az.Rules {
		if !selects(r.Selector, req.dstLabels) {
			continue
		}
		match := ruleMatches(r, req, identity, principal)
		if r.Action == v1alpha1.ActionDeny {
			if match {
				return false
			}
			continue
		}
		selected = true
		allowed = allowed || match
	}
	if selected || az.DefaultDeny {
		return allowed
	}
	return true
}

// selects is a workload selector's meaning: every label it names, on the pod; none selects all.
func selects(s *v1alpha1.WorkloadSelector, labels map[string]string) bool {
	if s == nil {
		return true
	}
	for k, v := range s.MatchLabels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// ruleMatches: every list that is set matches (AND), any entry of a list (OR).
func ruleMatches(r v1alpha1.AuthorizationRule, req request, identity bool, principal string) bool {
	if f := r.From; f != nil {
		if len(f.ServiceAccounts) > 0 && !(identity && slices.Contains(f.ServiceAccounts, v1alpha1.ServiceAccountRef(req.src.namespace+"/"+req.src.serviceAccount))) {
			return false
		}
		if len(f.Namespaces) > 0 && !(identity && slices.Contains(f.Namespaces, req.src.namespace)) {
			return false
		}
		if len(f.RequestPrincipals) > 0 && !slices.ContainsFunc(f.RequestPrincipals, func(pat string) bool { return principal != "" && glob(pat, principal) }) {
			return false
		}
		if len(f.IPBlocks) > 0 && !slices.ContainsFunc(f.IPBlocks, func(c string) bool { return inCIDR(c, req.src.ip) }) {
			return false
		}
	}
	if t := r.To; t != nil {
		if len(t.Methods) > 0 && !slices.Contains(t.Methods, req.method) {
			return false
		}
		if len(t.Paths) > 0 && !slices.ContainsFunc(t.Paths, func(pat string) bool { return glob(pat, req.path) }) {
			return false
		}
		if len(t.Ports) > 0 && !slices.Contains(t.Ports, req.port) {
			return false
		}
	}
	return true
}

// overlappingRoutes says whether two or more Linkerd rules governing the request's pod and port
// match its method and path: each becomes an HTTPRoute of the same Server, and Linkerd picks one
// route per request (the most specific, Gateway API precedence), so only that route's rule's
// senders are authorized.
func overlappingRoutes(p *v1alpha1.MeshSecurityProfile, req request) bool {
	if p.Spec.Mesh != v1alpha1.MeshLinkerd || p.Spec.Authorization == nil {
		return false
	}
	n := 0
	for _, r := range p.Spec.Authorization.Rules {
		if !selects(r.Selector, req.dstLabels) || r.To == nil || !slices.Contains(r.To.Ports, req.port) {
			continue
		}
		to := v1alpha1.AuthorizationRule{To: r.To}
		if ruleMatches(to, req, true, "") {
			n++
		}
	}
	return n >= 2
}

// glob is the profile's pattern: "*" anything, "x*" a prefix, "*x" a suffix, else exact (the API's
// "a trailing or leading * matches a prefix or suffix").
func glob(pat, s string) bool {
	switch {
	case pat == "*":
		return true
	case strings.HasSuffix(pat, "*"):
		return strings.HasPrefix(s, strings.TrimSuffix(pat, "*"))
	case strings.HasPrefix(pat, "*"):
		return strings.HasSuffix(s, strings.TrimPrefix(pat, "*"))
	}
	return pat == s
}

func inCIDR(cidr, ip string) bool {
	pfx, err := netip.ParsePrefix(cidr)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(ip)
	return err == nil && pfx.Contains(a)
}
