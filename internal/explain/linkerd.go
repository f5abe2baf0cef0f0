package explain

import (
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/meshguard/meshguard/internal/meshapi"
	"github.com/meshguard/meshguard/internal/meshsem"
)

// linkerdState is what the transport layer establishes.
type linkerdState struct {
	mtls          bool
	identity      string
	identityKnown bool
}

func (e *evaluator) linkerdLayers() []LayerResult {
	st := &linkerdState{}
	mtls := LayerResult{Layer: LayerMTLS, Decision: Allowed}
	if e.req.From.Unmeshed || e.req.From.Namespace == "" {
		mtls.Reason = "the source has no Linkerd proxy: plaintext, no client identity (authorization decides whether that is accepted)"
	} else {
		// Linkerd's automatic mTLS: meshed-to-meshed TCP is always mutual TLS, with identity
		// <sa>.<ns>.serviceaccount.identity.<control-plane-ns>.<trust-domain>
		// (https://linkerd.io/2/features/automatic-mtls/).
		st.mtls = true
		mtls.Reason = "both sides have Linkerd proxies: automatic mutual TLS"
		if e.req.From.ServiceAccount != "" {
			st.identity = e.linkerdIdentity(e.req.From.Namespace, e.req.From.ServiceAccount)
			st.identityKnown = true
			mtls.Reason += ", client identity " + st.identity
		}
		mtls.Notes = append(mtls.Notes, "assumes the port is not in config.linkerd.io/skip-inbound-ports")
	}
	authn := LayerResult{Layer: LayerAuthentication, Decision: NotApplicable, Reason: "Linkerd has no request (JWT) authentication"}
	return []LayerResult{mtls, authn, e.linkerdAuthz(st)}
}

func (e *evaluator) linkerdIdentity(ns, sa string) string {
	return fmt.Sprintf("%s.%s.serviceaccount.identity.%s.%s", sa, ns, e.opts.LinkerdNamespace, e.opts.TrustDomain)
}

// linkerdAuthz evaluates Linkerd's inbound policy for the destination port
// (https://linkerd.io/2/reference/authorization-policy/, https://linkerd.io/2/features/server-policy/):
//   - no Server selects the pod and port: the default inbound policy (pod annotation, else the
//     namespace's config.linkerd.io/default-inbound-policy, else the cluster default) decides;
//   - a Server selects it: traffic is allowed when an AuthorizationPolicy targeting the Server,
//     the namespace, or the HTTPRoute the request matches has all its requiredAuthenticationRefs
//     satisfied; otherwise the Server's accessPolicy (default deny) decides;
//   - when HTTPRoutes are attached to the Server, an HTTP request that matches none is refused
//     (404) — and the automatic probe authorizations are gone.
func (e *evaluator) linkerdAuthz(st *linkerdState) LayerResult {
	res := LayerResult{Layer: LayerAuthorization}
	ns := e.req.To.Namespace
	var servers []*unstructured.Unstructured
	var specs []*meshapi.ServerSpec
	portUnknown := false
	for _, u := range e.objs.in(groupLinkerdPolicy, "Server", ns) {
		s, err := meshapi.Server(u)
		if err != nil {
			return notUnderstood(res, u, err)
		}
		if s.PodSelector == nil || !selectorMatches(s.PodSelector, e.req.To.PodLabels) {
			continue
		}
		switch {
		case s.Port.Type == intstr.String && e.req.To.PortName == "":
			portUnknown = true
			res.Notes = append(res.Notes, fmt.Sprintf("%s selects the pod on port %q: the destination port's name was not given", refOf(u), s.Port.StrVal))
			continue
		case s.Port.Type == intstr.String && s.Port.StrVal != e.req.To.PortName:
			continue
		case s.Port.Type == intstr.Int && s.Port.IntVal != e.req.To.Port:
			continue
		}
		servers = append(servers, u)
		specs = append(specs, s)
	}
	switch {
	case len(servers) > 1:
		res.Decision = Unknown
		for _, u := range servers {
			res.Deciding = append(res.Deciding, refOf(u))
		}
		res.Reason = "several Servers select this pod and port; Servers must not overlap (Linkerd's admission refuses it), which one applies is undefined"
		return res
	case len(servers) == 0 && portUnknown:
		res.Decision = Unknown
		res.Reason = "a Server may select this port by name; give the port's name"
		return res
	case len(servers) == 0:
		policy, src := e.linkerdDefaultPolicy()
		res.Decision, res.Reason = e.linkerdDefault(policy, st)
		res.Reason = "no Server selects this pod and port: " + src + " " + policy + ": " + res.Reason
		res.Notes = append(res.Notes, "a config.linkerd.io/default-inbound-policy annotation on the pod or its workload overrides the namespace's; the default is fixed when the pod starts")
		return e.withProbe(res)
	}
	server, spec := servers[0], specs[0]

	var route *unstructured.Unstructured
	routes, bad, err := e.linkerdRoutes(server.GetName())
	if err != nil {
		return notUnderstood(res, bad, err)
	}
	opaque := spec.ProxyProtocol == "opaque" || spec.ProxyProtocol == "TLS"
	if len(routes) > 0 && e.req.HTTP == nil && !opaque {
		// The proxy detects HTTP on this port and would route it: whether a route matches
		// decides (404 otherwise), so a plain TCP question has no single answer.
		res.Decision = Unknown
		res.Deciding = []Ref{refOf(server)}
		res.Reason = fmt.Sprintf("HTTPRoutes are attached to Server %s: give the HTTP method and path (requests matching no route are refused)", server.GetName())
		return res
	}
	if len(routes) > 0 && e.req.HTTP != nil && !opaque {
		var why string
		route, why = e.linkerdMatchRoute(routes)
		if route == nil {
			if why != "" {
				res.Decision = Unknown
				res.Reason = why
				return res
			}
			res.Decision = Denied
			res.Deciding = []Ref{refOf(server)}
			for _, r := range routes {
				res.Deciding = append(res.Deciding, refOf(r.u))
			}
			res.Reason = "HTTPRoutes are attached to the Server and none matches the request (404)"
			return res
		}
	}

	var allowing, maybe []Ref
	var whyMaybe []string
	for _, u := range e.objs.in(groupLinkerdPolicy, "AuthorizationPolicy", ns) {
		ap, err := meshapi.LinkerdAuthorizationPolicy(u)
		if err != nil {
			return notUnderstood(res, u, err)
		}
		t := ap.TargetRef
		targets := (strings.EqualFold(t.Kind, "Server") && t.Name == server.GetName()) ||
			(strings.EqualFold(t.Kind, "Namespace") && t.Name == ns) ||
			(route != nil && strings.EqualFold(t.Kind, "HTTPRoute") && t.Name == route.GetName())
		if !targets {
			continue
		}
		m, why := e.linkerdAuthenticated(ap, u.GetNamespace(), st)
		switch m {
		case yes:
			allowing = append(allowing, refOf(u))
		case unknown:
			maybe = append(maybe, refOf(u))
			whyMaybe = append(whyMaybe, why...)
		}
	}
	sazAllowing, sazMaybe, sazWhy, bad, err := e.serverAuthorizations(server, st)
	if err != nil {
		return notUnderstood(res, bad, err)
	}
	if len(allowing) == 0 && len(sazAllowing) > 0 {
		res.Decision = Allowed
		res.Deciding = sazAllowing
		res.Reason = "a ServerAuthorization (deprecated, still enforced) selecting Server " + server.GetName() + " authorizes the client"
		return res
	}
	maybe, whyMaybe = append(maybe, sazMaybe...), append(whyMaybe, sazWhy...)
	switch {
	case len(allowing) > 0:
		res.Decision = Allowed
		res.Deciding = allowing
		res.Reason = "an AuthorizationPolicy of " + server.GetName() + " authorizes the client"
		return res
	case len(maybe) > 0:
		res.Decision = Unknown
		res.Deciding = maybe
		res.Reason = "these AuthorizationPolicies may authorize the client: " + strings.Join(dedupe(whyMaybe), "; ")
		return res
	}
	access := spec.AccessPolicy
	if access == "" {
		access = meshsem.LinkerdServerDefaultAccess
	}
	res.Deciding = []Ref{refOf(server)}
	if route != nil {
		res.Deciding = append(res.Deciding, refOf(route))
	}
	d, why := e.linkerdDefault(access, st)
	res.Decision = d
	res.Reason = fmt.Sprintf("no AuthorizationPolicy of Server %s authorizes the client; its accessPolicy %s: %s", server.GetName(), access, why)
	if len(routes) == 0 {
		return e.withProbe(res)
	}
	return res
}

// withProbe lets Linkerd's probe authorization override an answer that is not Allowed.
func (e *evaluator) withProbe(res LayerResult) LayerResult {
	if res.Decision == Allowed {
		return res
	}
	d, why := e.linkerdProbe(e.pods)
	switch d {
	case Allowed:
		res.Decision, res.Deciding, res.Reason = Allowed, nil, why
	case Unknown:
		res.Decision, res.Reason = Unknown, res.Reason+"; but "+why
	}
	return res
}

// linkerdDefaultPolicy is the namespace annotation, else the cluster default.
func (e *evaluator) linkerdDefaultPolicy() (string, string) {
	if v, ok := e.objs.namespaceAnnotation(e.req.To.Namespace, annotationLinkerdDefaultPolicy); ok {
		return v, "namespace " + e.req.To.Namespace + " default-inbound-policy"
	}
	return e.opts.LinkerdDefaultPolicy, "cluster default policy"
}

// linkerdDefault applies a default policy (also a Server's accessPolicy).
func (e *evaluator) linkerdDefault(policy string, st *linkerdState) (Decision, string) {
	inCluster := func() (tri, string) {
		if e.req.From.IP == "" {
			if e.req.From.Namespace != "" {
				return yes, "the source pod's IP is assumed to be in the cluster networks"
			}
			return unknown, "the source IP was not given"
		}
		a, _ := netip.ParseAddr(e.req.From.IP)
		for _, c := range e.opts.ClusterNetworks {
			if inCIDR(a, c) {
				return yes, "the source IP is in the cluster networks"
			}
		}
		return no, "the source IP is outside the cluster networks"
	}
	// What each policy admits is meshsem's (Linkerd's "Default policies"); here it meets the
	// request.
	a := meshsem.ReadLinkerdPolicy(policy)
	switch {
	case !a.Known:
		return Unknown, fmt.Sprintf("%q is not a Linkerd default policy", policy)
	case a.None:
		return Denied, "every client is denied"
	case a.Audit:
		// Linkerd's audit policy admits everything and labels what it admitted authz_name=audit
		// in the proxy's logs and metrics: the requests that deny would refuse
		// (https://linkerd.io/2.18/features/server-policy/, "audit"). meshguard renders it for
		// authorization.enforcement: Shadow on Permissive ports.
		return Allowed, "allowed and flagged in the proxy's logs and metrics (audit); would deny (shadow): under deny it would be refused"
	case a.Authenticated && !a.ClusterOnly:
		if st.mtls {
			return Allowed, "meshed clients are allowed"
		}
		return Denied, "only meshed (mTLS) clients are allowed"
	case a.Authenticated:
		if !st.mtls {
			return Denied, "only meshed clients in the cluster networks are allowed"
		}
		m, why := inCluster()
		return map[tri]Decision{yes: Allowed, no: Denied, unknown: Unknown}[m], "meshed clients in the cluster networks are allowed; " + why
	case a.ClusterOnly:
		m, why := inCluster()
		return map[tri]Decision{yes: Allowed, no: Denied, unknown: Unknown}[m], "clients in the cluster networks are allowed; " + why
	}
	return Allowed, "every client is allowed"
}

// linkerdAuthenticated: every requiredAuthenticationRef must be satisfied. A reference to a
// missing object satisfies nothing (fail closed).
func (e *evaluator) linkerdAuthenticated(ap *meshapi.AuthorizationPolicySpec, ns string, st *linkerdState) (tri, []string) {
	m := yes
	var why []string
	for _, ref := range ap.RequiredAuthenticationRefs {
		refNS := ref.Namespace
		if refNS == "" {
			refNS = ns
		}
		switch strings.ToLower(ref.Kind) {
		case "meshtlsauthentication":
			u := e.find(groupLinkerdPolicy, "MeshTLSAuthentication", refNS, ref.Name)
			if u == nil {
				return no, nil
			}
			mta, err := meshapi.MeshTLSAuthentication(u)
			if err != nil {
				// Not understood: it may authorize the client (fail closed: not "no").
				m = m.and(unknown)
				why = append(why, fmt.Sprintf("%s is not understood (%v)", refOf(u), err))
				continue
			}
			x, w := e.linkerdIdentityMatch(mta, refNS, st)
			m = m.and(x)
			why = append(why, w...)
		case "networkauthentication":
			u := e.find(groupLinkerdPolicy, "NetworkAuthentication", refNS, ref.Name)
			if u == nil {
				return no, nil
			}
			na, err := meshapi.NetworkAuthentication(u)
			if err != nil {
				m = m.and(unknown)
				why = append(why, fmt.Sprintf("%s is not understood (%v)", refOf(u), err))
				continue
			}
			if e.req.From.IP == "" {
				m = m.and(unknown)
				why = append(why, "NetworkAuthentication "+ref.Name+" needs the source IP")
				continue
			}
			a, _ := netip.ParseAddr(e.req.From.IP)
			in := no
			for _, n := range na.Networks {
				if inCIDR(a, n.CIDR) {
					ok := true
					for _, ex := range n.Except {
						if inCIDR(a, ex) {
							ok = false
						}
					}
					if ok {
						in = yes
					}
				}
			}
			m = m.and(in)
		case "serviceaccount":
			if !st.mtls {
				return no, nil
			}
			if !st.identityKnown {
				m = m.and(unknown)
				why = append(why, "the source's service account is not known")
				continue
			}
			m = m.and(triOf(st.identity == e.linkerdIdentity(refNS, ref.Name)))
		default:
			return no, []string{"authentication kind " + ref.Kind + " is not known"}
		}
	}
	return m, why
}

// linkerdIdentityMatch: identities are exact, "*" (every meshed client) or "*.<suffix>";
// identityRefs name ServiceAccounts (namespace defaults to the authentication's) or a
// Namespace (every account in it).
func (e *evaluator) linkerdIdentityMatch(mta *meshapi.MeshTLSAuthenticationSpec, ns string, st *linkerdState) (tri, []string) {
	if !st.mtls {
		return no, nil
	}
	m := no
	check := func(ok bool) {
		if ok {
			m = yes
		}
	}
	var why []string
	for _, id := range mta.Identities {
		switch {
		case id == "*":
			check(true)
		case !st.identityKnown:
			m = m.or(unknown)
			why = append(why, "the source's service account is not known")
		case strings.HasPrefix(id, "*."):
			check(strings.HasSuffix(st.identity, id[1:]))
		default:
			check(id == st.identity)
		}
	}
	for _, r := range mta.IdentityRefs {
		refNS := r.Namespace
		if refNS == "" {
			refNS = ns
		}
		switch strings.ToLower(r.Kind) {
		case "namespace":
			check(e.req.From.Namespace == r.Name)
		case "serviceaccount":
			if !st.identityKnown {
				m = m.or(unknown)
				why = append(why, "the source's service account is not known")
				continue
			}
			check(e.req.From.Namespace == refNS && (r.Name == "*" || r.Name == e.req.From.ServiceAccount))
		}
	}
	return m, why
}

func (e *evaluator) find(group, kind, ns, name string) *unstructured.Unstructured {
	for _, u := range e.objs.in(group, kind, ns) {
		if u.GetName() == name {
			return u
		}
	}
	return nil
}

// linkerdRoutes are the HTTPRoutes whose parentRefs name the Server, decoded. An HTTPRoute of
// the namespace that is not understood may attach to the Server: it is returned with the error.
func (e *evaluator) linkerdRoutes(server string) ([]linkerdRoute, *unstructured.Unstructured, error) {
	var out []linkerdRoute
	for _, g := range []string{groupLinkerdPolicy, groupGatewayAPI} {
		for _, u := range e.objs.in(g, "HTTPRoute", e.req.To.Namespace) {
			r, err := meshapi.HTTPRoute(u)
			if err != nil {
				return nil, u, err
			}
			for _, p := range r.ParentRefs {
				if strings.EqualFold(p.Kind, "Server") && p.Name == server {
					out = append(out, linkerdRoute{u, r})
					break
				}
			}
		}
	}
	return out, nil, nil
}

// linkerdRoute is an HTTPRoute and its decoded spec.
type linkerdRoute struct {
	u    *unstructured.Unstructured
	spec *meshapi.HTTPRouteSpec
}

// linkerdMatchRoute returns the route the request matches; Gateway API precedence decides
// between several (https://gateway-api.sigs.k8s.io/reference/spec/#httprouterule): exact path
// over prefix, longer prefix, then a method match, then the oldest route, then by name.
// Header and query matches are not modelled: a route that needs them makes the answer unknown.
func (e *evaluator) linkerdMatchRoute(routes []linkerdRoute) (*unstructured.Unstructured, string) {
	type cand struct {
		u     *unstructured.Unstructured
		score [3]int
	}
	var cands []cand
	var unknownWhy string
	for _, rt := range routes {
		u := rt.u
		best, found := [3]int{}, false
		for _, rule := range rt.spec.Rules {
			matches := rule.Matches
			if len(matches) == 0 {
				matches = []meshapi.HTTPRouteMatch{{}} // default: PathPrefix /
			}
			for _, m := range matches {
				ok, score, unk := e.routeMatch(m)
				if unk {
					unknownWhy = fmt.Sprintf("HTTPRoute %s matches on headers or query parameters, which are not modelled", u.GetName())
					continue
				}
				if ok && (!found || less(best, score)) {
					best, found = score, true
				}
			}
		}
		if found {
			cands = append(cands, cand{u, best})
		}
	}
	if len(cands) == 0 {
		return nil, unknownWhy
	}
	sort.SliceStable(cands, func(i, j int) bool {
		if cands[i].score != cands[j].score {
			return less(cands[j].score, cands[i].score)
		}
		return meshsem.Older(cands[i].u, cands[j].u)
	})
	return cands[0].u, ""
}

func less(a, b [3]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// routeMatch: score is (exact path, path length, method).
func (e *evaluator) routeMatch(m meshapi.HTTPRouteMatch) (bool, [3]int, bool) {
	if len(m.Headers)+len(m.QueryParams) > 0 {
		return false, [3]int{}, true
	}
	h := e.req.HTTP
	var score [3]int
	if m.Method != "" {
		if !strings.EqualFold(m.Method, h.Method) {
			return false, score, false
		}
		score[2] = 1
	}
	typ, val := "PathPrefix", "/"
	if m.Path != nil {
		if m.Path.Type != "" {
			typ = m.Path.Type
		}
		if m.Path.Value != "" {
			val = m.Path.Value
		}
	}
	switch typ {
	case "Exact":
		if h.Path != val {
			return false, score, false
		}
		score[0] = 1
	case "PathPrefix":
		// Gateway API: prefix matches whole path elements.
		v := strings.TrimSuffix(val, "/")
		if !(h.Path == v || strings.HasPrefix(h.Path, v+"/") || v == "") {
			return false, score, false
		}
	case "RegularExpression":
		// Linkerd's proxy accepts a regex match only when it spans the whole path, and ranks it
		// by the path's length (linkerd2-proxy linkerd/http/route/src/http/match/path.rs,
		// MatchPath::Regex). meshguard renders /api/* as a quoted prefix followed by .*, which
		// Go's RE2 reads as Rust's regex crate does; a pattern RE2 cannot compile is undetermined.
		re, err := regexp.Compile(`^(?:` + val + `)$`)
		if err != nil {
			return false, score, true
		}
		if !re.MatchString(h.Path) {
			return false, score, false
		}
		score[1] = len(h.Path)
		return true, score, false
	default:
		return false, score, true
	}
	score[1] = len(val)
	return true, score, false
}
