package explain

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	securityv1beta1 "istio.io/api/security/v1beta1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshguard/meshguard/internal/meshapi"
	"github.com/meshguard/meshguard/internal/meshsem"
)

// Istio mTLS modes.
const (
	modeUnset   = "UNSET"
	modeDisable = "DISABLE"
	modeStrict  = "STRICT"
)

// istioState carries what one layer establishes for the next.
type istioState struct {
	mtls bool
	// principal is the peer identity (mTLS); principalKnown is false when mTLS is used but the
	// source's service account was not given.
	principal      string
	principalKnown bool
	// requestPrincipal is the JWT's <iss>/<sub> once authenticated.
	requestPrincipal string
}

func (e *evaluator) istioLayers() []LayerResult {
	var st istioState
	out := []LayerResult{e.istioMTLS(&st)}
	out = append(out, e.istioRequestAuthn(&st))
	out = append(out, e.istioAuthz(&st))
	if n := len(e.objs.byKindGroup(groupIstioNetworkng, "EnvoyFilter")); n > 0 {
		out[len(out)-1].Notes = append(out[len(out)-1].Notes,
			fmt.Sprintf("%d EnvoyFilter(s) among the inputs are not modelled: they can change any layer of the proxy", n))
	}
	return out
}

// workloadSelected applies Istio's selection: a policy of the workload's namespace or of the
// root namespace applies when it has no selector or its matchLabels are all on the pod
// (https://istio.io/latest/docs/reference/config/type/workload-selector/; root namespace
// policies apply to every namespace's workloads).
func (e *evaluator) istioCandidates(kind string) []*unstructured.Unstructured {
	objs := e.objs.in(groupIstioSecurity, kind, e.req.To.Namespace)
	if e.opts.IstioRootNamespace != e.req.To.Namespace {
		objs = append(objs, e.objs.in(groupIstioSecurity, kind, e.opts.IstioRootNamespace)...)
	}
	if ns := e.waypointNamespace(); ns != "" {
		// ambient.go: a waypoint of another namespace takes the policies bound to its Gateway there.
		objs = append(objs, e.objs.in(groupIstioSecurity, kind, ns)...)
	}
	return objs
}

// istioMTLS resolves the PeerAuthentication mode for the destination port.
//
// https://istio.io/latest/docs/reference/config/security/peer_authentication/ and
// https://istio.io/latest/docs/concepts/security/#peer-authentication: the narrowest policy
// wins — workload-specific (a selector, in the workload's namespace; a selector in the root
// namespace is ignored), then namespace-wide, then mesh-wide (root namespace, no selector);
// among several at one level the oldest is used. UNSET inherits from the parent, and the mesh
// default is PERMISSIVE. portLevelMtls (only with a selector) overrides the mode for that port.
func (e *evaluator) istioMTLS(st *istioState) LayerResult {
	res := LayerResult{Layer: LayerMTLS}
	var workload, namespace, mesh []*unstructured.Unstructured
	specs := map[*unstructured.Unstructured]*securityv1beta1.PeerAuthentication{}
	for _, u := range e.istioCandidates("PeerAuthentication") {
		pa, err := meshapi.PeerAuthentication(u)
		if err != nil {
			return notUnderstood(res, u, err)
		}
		specs[u] = pa
		hasSelector := len(pa.GetSelector().GetMatchLabels()) > 0
		switch {
		case !hasSelector && u.GetNamespace() == e.opts.IstioRootNamespace:
			mesh = append(mesh, u)
		case !hasSelector:
			namespace = append(namespace, u)
		case u.GetNamespace() != e.opts.IstioRootNamespace && meshsem.Selects(pa.GetSelector().GetMatchLabels(), e.req.To.PodLabels):
			workload = append(workload, u)
		}
	}
	mode, from := meshsem.IstioMeshDefaultMTLS, (*unstructured.Unstructured)(nil)
	level := "Istio's default (no PeerAuthentication applies)"
	for _, lv := range []struct {
		objs []*unstructured.Unstructured
		name string
	}{{mesh, "mesh-wide"}, {namespace, "namespace-wide"}, {workload, "workload"}} {
		if len(lv.objs) == 0 {
			continue
		}
		oldestFirst(lv.objs)
		u := lv.objs[0]
		if len(lv.objs) > 1 {
			res.Notes = append(res.Notes, fmt.Sprintf("%d %s PeerAuthentications apply; Istio uses the oldest, %s", len(lv.objs), lv.name, u.GetName()))
		}
		pa := specs[u]
		if m := modeOf(pa.GetMtls()); m != modeUnset {
			mode, from, level = m, u, lv.name+" PeerAuthentication"
		}
		if lv.name == "workload" {
			if pm, ok := pa.GetPortLevelMtls()[uint32(e.req.To.Port)]; ok && modeOf(pm) != modeUnset {
				mode, from, level = modeOf(pm), u, fmt.Sprintf("portLevelMtls %d of the workload PeerAuthentication", e.req.To.Port)
			}
		}
	}
	if e.amb != nil && mode == modeDisable {
		// ambient.go: ztunnel reads DISABLE as PERMISSIVE, HBONE is always mutual TLS
		// (architecture/ambient/peer-authentication.md; convertedSelectorPeerAuthentications).
		mode, level = meshsem.IstioMeshDefaultMTLS, level+", DISABLE, which ztunnel reads as PERMISSIVE"
	}
	if from != nil {
		res.Deciding = []Ref{refOf(from)}
	}
	// A source outside the cluster's pods has no sidecar either.
	unmeshed := e.req.From.Unmeshed || e.req.From.Namespace == ""
	switch {
	case unmeshed && mode == modeStrict:
		res.Decision = Denied
		res.Reason = fmt.Sprintf("mode STRICT (%s) accepts only mutual TLS; the source has no proxy and sends plaintext", level)
	case unmeshed:
		res.Decision = Allowed
		res.Reason = fmt.Sprintf("mode %s (%s) accepts plaintext; the connection carries no peer identity", mode, level)
	case mode == modeDisable:
		// Auto mTLS sends plaintext to a destination whose PeerAuthentication disables mTLS.
		res.Decision = Allowed
		res.Reason = fmt.Sprintf("mode DISABLE (%s): the connection is plaintext, without peer identity", level)
		res.Notes = append(res.Notes, "assumes auto mTLS (no DestinationRule overrides the client's TLS mode)")
	default:
		res.Decision = Allowed
		res.Reason = fmt.Sprintf("mode %s (%s); both sides have proxies: mutual TLS", mode, level)
		res.Notes = append(res.Notes, "assumes auto mTLS (no DestinationRule overrides the client's TLS mode)")
		st.mtls = true
		if e.req.From.ServiceAccount != "" {
			st.principal = fmt.Sprintf("%s/ns/%s/sa/%s", e.opts.TrustDomain, e.req.From.Namespace, e.req.From.ServiceAccount)
			st.principalKnown = true
		}
	}
	return res
}

func modeOf(m *securityv1beta1.PeerAuthentication_MutualTLS) string {
	return m.GetMode().String() // UNSET for nil
}

// notUnderstood is the answer of a layer that an object with a field meshguard does not know
// may decide: Unknown, naming the object and the field (fail closed rather than evaluate a
// policy that lost a field, such as a source with only serviceAccounts read as any source).
func notUnderstood(res LayerResult, u *unstructured.Unstructured, err error) LayerResult {
	res.Decision = Unknown
	res.Deciding = []Ref{refOf(u)}
	res.Reason = fmt.Sprintf("%s is not understood (%v): what it does cannot be evaluated", refOf(u), err)
	return res
}

// istioRequestAuthn validates the request's JWT.
//
// https://istio.io/latest/docs/reference/config/security/request_authentication/: "a request
// that contains an invalid token is rejected (401); a request without a token is accepted but
// has no authenticated identity"; every applicable RequestAuthentication's jwtRules are
// combined. A token whose issuer no jwtRule names is invalid ("Jwt issuer is not configured").
func (e *evaluator) istioRequestAuthn(st *istioState) LayerResult {
	res := LayerResult{Layer: LayerAuthentication}
	if e.req.HTTP == nil {
		res.Decision = NotApplicable
		res.Reason = "not an HTTP request: no JWT"
		return res
	}
	issuers := map[string][]Ref{}
	var applying []Ref
	for _, u := range e.istioCandidates("RequestAuthentication") {
		ra, err := meshapi.RequestAuthentication(u)
		if err != nil {
			return notUnderstood(res, u, err)
		}
		if binds, note := e.istioBinds(u, ra.GetSelector(), ra.GetTargetRef(), ra.GetTargetRefs()); !binds {
			if note != "" {
				res.Notes = append(res.Notes, note)
			}
			continue
		}
		applying = append(applying, refOf(u))
		for _, r := range ra.GetJwtRules() {
			issuers[r.GetIssuer()] = append(issuers[r.GetIssuer()], refOf(u))
		}
	}
	p := e.req.HTTP.Principal
	switch {
	case p == "":
		res.Decision = Allowed
		res.Deciding = applying
		res.Reason = "no token: accepted without a request principal (only an AuthorizationPolicy can require one)"
	case len(applying) == 0:
		res.Decision = Allowed
		res.Reason = "no RequestAuthentication applies: the token is not validated and gives no request principal"
	default:
		iss := p
		if i := strings.LastIndex(p, "/"); i > 0 {
			iss = p[:i]
		}
		if refs, ok := issuers[iss]; ok {
			res.Decision = Allowed
			res.Deciding = refs
			res.Reason = fmt.Sprintf("token of issuer %s accepted: request principal %s", iss, p)
			res.Notes = append(res.Notes, "assumes the token's signature, expiry and audiences are valid")
			st.requestPrincipal = p
		} else {
			res.Decision = Denied
			res.Deciding = applying
			res.Reason = fmt.Sprintf("issuer %s is in no jwtRule of the RequestAuthentications that apply: the token is invalid (401)", iss)
		}
	}
	return res
}

// istioAuthz evaluates AuthorizationPolicies.
//
// https://istio.io/latest/docs/concepts/security/#implicit-enablement and the
// AuthorizationPolicy reference: CUSTOM policies are evaluated first, then DENY, then ALLOW.
// "If there are any CUSTOM policies that match the request, evaluate and deny the request if
// the evaluation result is deny. If there are any DENY policies that match the request, deny
// the request. If there are no ALLOW policies for the workload, allow the request. If any of
// the ALLOW policies match the request, allow the request. Deny the request." AUDIT policies do
// not decide. A policy without rules matches nothing (an ALLOW one is allow-nothing).
func (e *evaluator) istioAuthz(st *istioState) (res LayerResult) {
	res = LayerResult{Layer: LayerAuthorization}
	byAction := map[string][]pol{}
	for _, u := range e.istioCandidates("AuthorizationPolicy") {
		ap, err := meshapi.AuthorizationPolicy(u)
		if err != nil {
			return notUnderstood(res, u, err)
		}
		if binds, note := e.istioBinds(u, ap.GetSelector(), ap.GetTargetRef(), ap.GetTargetRefs()); !binds {
			if note != "" {
				res.Notes = append(res.Notes, note)
			}
			continue
		}
		action := ap.GetAction().String() // ALLOW when unset
		if u.GetAnnotations()["istio.io/dry-run"] == "true" {
			// A dry-run policy never decides; the proxy evaluates the dry-run ALLOW and DENY
			// policies apart, in shadow engines of their own, and reports what they would deny
			// (https://istio.io/latest/docs/tasks/security/authorization/authz-dry-run/). Noted below.
			action = "SHADOW-" + action
		}
		byAction[action] = append(byAction[action], pol{u, ap})
	}
	for _, a := range byAction {
		sort.Slice(a, func(i, j int) bool { return refOf(a[i].u).String() < refOf(a[j].u).String() })
	}
	if n := len(byAction["AUDIT"]); n > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d AUDIT policies apply: they log, never decide", n))
	}
	matches := func(ps []pol, allow bool) (hit, maybe []Ref, why []string) {
		return matchRules(ps, func(r *securityv1beta1.Rule, ns string) (tri, []string) { return e.istioRuleMatch(r, ns, allow, st) })
	}

	defer func() {
		if hit, _, _ := matches(byAction["SHADOW-DENY"], false); len(hit) > 0 {
			res.Notes = append(res.Notes, "would deny (shadow): dry-run DENY rule "+hit[0].String()+" matches")
		}
		if allows := byAction["SHADOW-ALLOW"]; len(allows) > 0 {
			if hit, maybe, _ := matches(allows, true); len(hit)+len(maybe) == 0 {
				res.Notes = append(res.Notes, fmt.Sprintf("would deny (shadow): %d dry-run ALLOW policies apply to the workload and none matches", len(allows)))
			}
		}
	}()
	if hit, maybe, why := matches(byAction["CUSTOM"], false); len(hit)+len(maybe) > 0 {
		res.Decision = Unknown
		res.Deciding = append(hit, maybe...)
		providers := []string{}
		for _, p := range byAction["CUSTOM"] {
			if p.p.GetProvider() != nil {
				providers = append(providers, p.p.GetProvider().GetName())
			}
		}
		res.Reason = fmt.Sprintf("a CUSTOM policy sends the request to the external authorizer %s, which is not modelled", strings.Join(dedupe(providers), ", "))
		if len(why) > 0 {
			res.Reason += " (" + strings.Join(why, "; ") + ")"
		}
		return res
	}
	hit, maybe, why := matches(byAction["DENY"], false)
	if len(hit) > 0 {
		res.Decision = Denied
		res.Deciding = hit
		res.Reason = "a DENY policy matches"
		return res
	}
	if len(maybe) > 0 {
		res.Decision = Unknown
		res.Deciding = maybe
		res.Reason = "a DENY policy may match: " + strings.Join(why, "; ")
		return res
	}
	allows := byAction["ALLOW"]
	if len(allows) == 0 {
		res.Decision = Allowed
		res.Reason = "no ALLOW policy applies to the workload and no DENY policy matches: allowed by default"
		return res
	}
	hit, maybe, why = matches(allows, true)
	switch {
	case len(hit) > 0:
		res.Decision = Allowed
		res.Deciding = hit
		res.Reason = "an ALLOW policy matches"
	case len(maybe) > 0:
		res.Decision = Unknown
		res.Deciding = maybe
		res.Reason = "ALLOW policies apply and these rules may match: " + strings.Join(why, "; ")
	default:
		res.Decision = Denied
		for _, p := range allows {
			res.Deciding = append(res.Deciding, refOf(p.u))
		}
		res.Reason = fmt.Sprintf("%d ALLOW policies apply to the workload and none matches", len(allows))
	}
	return res
}

// istioRuleMatch: a rule matches when any from, any to and every when match; an empty list
// matches everything. For a TCP request, a rule with HTTP-only fields never matches in an
// ALLOW policy and matches as if those fields were absent in a DENY or CUSTOM one
// (https://istio.io/latest/docs/tasks/security/authorization/authz-tcp/ and the
// AuthorizationPolicy reference: "Istio ignores invalid fields ... in the more restrictive
// way").
//
// A TCP question (no method or path) is not a raw TCP connection the sender is bound to: on a
// port Istio treats as HTTP (declared, or detected) the sender simply makes HTTP requests, and
// the HTTP RBAC filter then applies the rule's HTTP conditions. The TCP filter skips an ALLOW
// rule with HTTP-only fields only for non-HTTP traffic (istio pilot/pkg/security/authz/builder/
// builder.go, "skipped rule ... on TCP filter chain"), and a DENY rule then denies only the
// requests matching its HTTP conditions. So when such a rule's other conditions match, the
// answer is unknown: "the port may speak HTTP; give method and path".
func (e *evaluator) istioRuleMatch(r *securityv1beta1.Rule, policyNS string, allow bool, st *istioState) (tri, []string) {
	http := e.req.HTTP != nil
	if !http && !e.req.To.OpaqueTCP && ruleHasHTTPOnly(r) {
		m, why := e.istioRuleMatchFields(r, policyNS, st, false)
		if m == no {
			return no, nil
		}
		return unknown, append(why, "the port may speak HTTP and this rule has HTTP conditions (methods, paths, hosts, request principals); give method and path")
	}
	if !http && allow && ruleHasHTTPOnly(r) {
		return no, nil // raw TCP: the ALLOW rule is skipped on the TCP filter chain
	}
	return e.istioRuleMatchFields(r, policyNS, st, http)
}

// istioRuleMatchFields matches a rule's fields; for TCP (http false), HTTP-only fields are
// ignored.
func (e *evaluator) istioRuleMatchFields(r *securityv1beta1.Rule, policyNS string, st *istioState, http bool) (tri, []string) {
	var why []string
	m := yes
	if len(r.GetFrom()) > 0 {
		fm := no
		for _, f := range r.GetFrom() {
			x, w := e.istioSourceMatch(f.GetSource(), policyNS, st, http)
			fm = fm.or(x)
			why = append(why, w...)
		}
		m = m.and(fm)
	}
	if len(r.GetTo()) > 0 {
		tm := no
		for _, t := range r.GetTo() {
			x, w := e.istioOperationMatch(t.GetOperation(), http)
			tm = tm.or(x)
			why = append(why, w...)
		}
		m = m.and(tm)
	}
	for _, c := range r.GetWhen() {
		x, w := e.istioConditionMatch(c, st, http)
		m = m.and(x)
		why = append(why, w...)
	}
	return m, why
}

func ruleHasHTTPOnly(r *securityv1beta1.Rule) bool {
	for _, f := range r.GetFrom() {
		s := f.GetSource()
		if len(s.GetRequestPrincipals())+len(s.GetNotRequestPrincipals()) > 0 {
			return true
		}
	}
	for _, t := range r.GetTo() {
		o := t.GetOperation()
		if len(o.GetHosts())+len(o.GetNotHosts())+len(o.GetMethods())+len(o.GetNotMethods())+len(o.GetPaths())+len(o.GetNotPaths()) > 0 {
			return true
		}
	}
	for _, c := range r.GetWhen() {
		if strings.HasPrefix(c.GetKey(), "request.") {
			return true
		}
	}
	return false
}

// value is an attribute of the request: absent, present with a value, or not known.
type value struct {
	s       string
	present bool
	known   bool
}

// strField matches a positive and a negative list of Istio string patterns (exact, prefix
// "x*", suffix "*x", presence "*"). An absent value matches no positive list and every
// negative one. Empty lists are not constraints.
func strField(v value, pos, neg []string, name string, match func(pattern, v string) bool) (tri, []string) {
	if len(pos)+len(neg) == 0 {
		return yes, nil
	}
	if !v.known {
		// A present value matches the presence pattern "*" whatever it is.
		if v.present && len(neg) == 0 && allStar(pos) {
			return yes, nil
		}
		return unknown, []string{name + " is not known"}
	}
	m := yes
	if len(pos) > 0 {
		m = no
		for _, p := range pos {
			if v.present && match(p, v.s) {
				m = yes
			}
		}
	}
	for _, p := range neg {
		if v.present && match(p, v.s) {
			m = no
		}
	}
	return m, nil
}

// istioStringMatch is Istio's string match: "*" any non-empty value, "abc*" prefix, "*abc"
// suffix, else exact.
func istioStringMatch(p, v string) bool {
	switch {
	case p == "*":
		return v != ""
	case strings.HasSuffix(p, "*"):
		return strings.HasPrefix(v, strings.TrimSuffix(p, "*"))
	case strings.HasPrefix(p, "*"):
		return strings.HasSuffix(v, strings.TrimPrefix(p, "*"))
	}
	return p == v
}

func (e *evaluator) istioSourceMatch(s *securityv1beta1.Source, policyNS string, st *istioState, http bool) (tri, []string) {
	var why []string
	m := yes
	add := func(x tri, w []string) {
		m = m.and(x)
		why = append(why, w...)
	}
	principal := value{s: st.principal, present: st.mtls, known: !st.mtls || st.principalKnown}
	add(strField(principal, s.GetPrincipals(), s.GetNotPrincipals(), "the source's service account", istioStringMatch))
	// The source namespace comes from the peer certificate: plaintext has none.
	ns := value{s: e.req.From.Namespace, present: st.mtls, known: true}
	add(strField(ns, s.GetNamespaces(), s.GetNotNamespaces(), "the source namespace", istioStringMatch))
	// Source.serviceAccounts: "<namespace>/<serviceaccount>" from the peer certificate (mTLS
	// only), or "<serviceaccount>" of the policy's namespace; no wildcard, so an exact match
	// (AuthorizationPolicy reference, Source.serviceAccounts).
	sa := value{s: e.req.From.Namespace + "/" + e.req.From.ServiceAccount, present: st.mtls, known: !st.mtls || st.principalKnown}
	add(strField(sa, qualifySA(s.GetServiceAccounts(), policyNS), qualifySA(s.GetNotServiceAccounts(), policyNS),
		"the source's service account", func(p, v string) bool { return p == v }))
	// Source.trustDomains: the peer certificate's trust domain (mTLS only); exact, prefix,
	// suffix and presence matches. Pods of this cluster carry the mesh's trust domain.
	td := value{s: e.opts.TrustDomain, present: st.mtls, known: true}
	add(strField(td, s.GetTrustDomains(), s.GetNotTrustDomains(), "the source's trust domain", istioStringMatch))
	if http {
		rp := value{s: st.requestPrincipal, present: st.requestPrincipal != "", known: true}
		add(strField(rp, s.GetRequestPrincipals(), s.GetNotRequestPrincipals(), "the request principal", istioStringMatch))
	}
	ip := value{s: e.req.From.IP, present: e.req.From.IP != "", known: e.req.From.IP != ""}
	add(strField(ip, s.GetIpBlocks(), s.GetNotIpBlocks(), "the source IP", ipMatch))
	// remoteIpBlocks use X-Forwarded-For / proxy protocol when configured; without them the
	// remote IP is the source IP.
	add(strField(ip, s.GetRemoteIpBlocks(), s.GetNotRemoteIpBlocks(), "the remote IP", ipMatch))
	return m, why
}

// qualifySA writes service accounts as "<namespace>/<name>", a bare name being of the policy's
// namespace.
func qualifySA(in []string, ns string) []string {
	out := make([]string, len(in))
	for i, sa := range in {
		if !strings.Contains(sa, "/") {
			sa = ns + "/" + sa
		}
		out[i] = sa
	}
	return out
}

func ipMatch(cidr, v string) bool {
	a, err := netip.ParseAddr(v)
	return err == nil && inCIDR(a, cidr)
}

func (e *evaluator) istioOperationMatch(o *securityv1beta1.Operation, http bool) (tri, []string) {
	var why []string
	m := yes
	add := func(x tri, w []string) {
		m = m.and(x)
		why = append(why, w...)
	}
	port := value{s: strconv.Itoa(int(e.req.To.Port)), present: true, known: true}
	add(strField(port, o.GetPorts(), o.GetNotPorts(), "the port", func(p, v string) bool { return p == v }))
	if !http {
		return m, why // HTTP-only fields are ignored for TCP (DENY/CUSTOM; ALLOW never gets here with them)
	}
	h := e.req.HTTP
	add(strField(value{s: h.Method, present: h.Method != "", known: h.Method != ""}, o.GetMethods(), o.GetNotMethods(), "the method", istioStringMatch))
	pathMatch := func(p, v string) bool { return istioStringMatch(p, v) }
	for _, p := range append(append([]string{}, o.GetPaths()...), o.GetNotPaths()...) {
		if strings.Contains(p, "{*}") || strings.Contains(p, "{**}") {
			m = m.and(unknown)
			why = append(why, "path template "+p+" is not modelled")
		}
	}
	add(strField(value{s: h.Path, present: h.Path != "", known: h.Path != ""}, o.GetPaths(), o.GetNotPaths(), "the path", pathMatch))
	host := value{s: strings.ToLower(h.Host), present: h.Host != "", known: h.Host != ""}
	add(strField(host, lower(o.GetHosts()), lower(o.GetNotHosts()), "the Host header", istioStringMatch))
	return m, why
}

func (e *evaluator) istioConditionMatch(c *securityv1beta1.Condition, st *istioState, http bool) (tri, []string) {
	var v value
	match := istioStringMatch
	switch c.GetKey() {
	case "source.ip", "remote.ip":
		v = value{s: e.req.From.IP, present: e.req.From.IP != "", known: e.req.From.IP != ""}
		match = ipMatch
	case "source.namespace":
		v = value{s: e.req.From.Namespace, present: st.mtls, known: true}
	case "source.principal":
		v = value{s: st.principal, present: st.mtls, known: !st.mtls || st.principalKnown}
	case "destination.port":
		v = value{s: strconv.Itoa(int(e.req.To.Port)), present: true, known: true}
		match = func(p, v string) bool { return p == v }
	case "request.auth.principal":
		if !http {
			return yes, nil // ignored for TCP in DENY/CUSTOM (ALLOW rules with it never match)
		}
		v = value{s: st.requestPrincipal, present: st.requestPrincipal != "", known: true}
	default:
		if !http && strings.HasPrefix(c.GetKey(), "request.") {
			return yes, nil
		}
		return unknown, []string{"condition " + c.GetKey() + " is not modelled"}
	}
	return strField(v, c.GetValues(), c.GetNotValues(), c.GetKey(), match)
}

func lower(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = strings.ToLower(s)
	}
	return out
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func allStar(patterns []string) bool {
	for _, p := range patterns {
		if p != "*" {
			return false
		}
	}
	return len(patterns) > 0
}

// pol is an AuthorizationPolicy among the inputs with its spec.
type pol struct {
	u *unstructured.Unstructured
	p *securityv1beta1.AuthorizationPolicy
}

// matchRules returns the rules of the policies that match (yes) and could match (unknown), as
// match (a sidecar's or ztunnel's reading of a rule) decides each.
func matchRules(ps []pol, match func(r *securityv1beta1.Rule, policyNS string) (tri, []string)) (hit, maybe []Ref, why []string) {
	for _, p := range ps {
		for i, r := range p.p.GetRules() {
			m, w := match(r, p.u.GetNamespace())
			switch m {
			case yes:
				hit = append(hit, ruleRef(p.u, i))
			case unknown:
				maybe = append(maybe, ruleRef(p.u, i))
				why = append(why, w...)
			}
		}
	}
	return hit, maybe, dedupe(why)
}
