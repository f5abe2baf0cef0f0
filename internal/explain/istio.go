package explain

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Istio's objects, decoded leniently from their JSON form (field names of security.istio.io/v1).
type istioSelector struct {
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
}

type istioTargetRef struct {
	Group string `json:"group,omitempty"`
	Kind  string `json:"kind,omitempty"`
	Name  string `json:"name,omitempty"`
}

type istioMode struct {
	Mode string `json:"mode,omitempty"`
}

type peerAuthentication struct {
	Spec struct {
		Selector      *istioSelector       `json:"selector,omitempty"`
		MTLS          *istioMode           `json:"mtls,omitempty"`
		PortLevelMTLS map[string]istioMode `json:"portLevelMtls,omitempty"`
	} `json:"spec"`
}

type requestAuthentication struct {
	Spec struct {
		Selector   *istioSelector   `json:"selector,omitempty"`
		TargetRef  *istioTargetRef  `json:"targetRef,omitempty"`
		TargetRefs []istioTargetRef `json:"targetRefs,omitempty"`
		JWTRules   []struct {
			Issuer string `json:"issuer,omitempty"`
		} `json:"jwtRules,omitempty"`
	} `json:"spec"`
}

type authorizationPolicy struct {
	Spec struct {
		Selector   *istioSelector   `json:"selector,omitempty"`
		TargetRef  *istioTargetRef  `json:"targetRef,omitempty"`
		TargetRefs []istioTargetRef `json:"targetRefs,omitempty"`
		Action     string           `json:"action,omitempty"`
		Provider   *struct {
			Name string `json:"name,omitempty"`
		} `json:"provider,omitempty"`
		Rules []istioRule `json:"rules,omitempty"`
	} `json:"spec"`
}

type istioRule struct {
	From []struct {
		Source istioSource `json:"source"`
	} `json:"from,omitempty"`
	To []struct {
		Operation istioOperation `json:"operation"`
	} `json:"to,omitempty"`
	When []istioCondition `json:"when,omitempty"`
}

type istioSource struct {
	Principals           []string `json:"principals,omitempty"`
	NotPrincipals        []string `json:"notPrincipals,omitempty"`
	RequestPrincipals    []string `json:"requestPrincipals,omitempty"`
	NotRequestPrincipals []string `json:"notRequestPrincipals,omitempty"`
	Namespaces           []string `json:"namespaces,omitempty"`
	NotNamespaces        []string `json:"notNamespaces,omitempty"`
	IPBlocks             []string `json:"ipBlocks,omitempty"`
	NotIPBlocks          []string `json:"notIpBlocks,omitempty"`
	RemoteIPBlocks       []string `json:"remoteIpBlocks,omitempty"`
	NotRemoteIPBlocks    []string `json:"notRemoteIpBlocks,omitempty"`
}

type istioOperation struct {
	Hosts      []string `json:"hosts,omitempty"`
	NotHosts   []string `json:"notHosts,omitempty"`
	Ports      []string `json:"ports,omitempty"`
	NotPorts   []string `json:"notPorts,omitempty"`
	Methods    []string `json:"methods,omitempty"`
	NotMethods []string `json:"notMethods,omitempty"`
	Paths      []string `json:"paths,omitempty"`
	NotPaths   []string `json:"notPaths,omitempty"`
}

type istioCondition struct {
	Key       string   `json:"key"`
	Values    []string `json:"values,omitempty"`
	NotValues []string `json:"notValues,omitempty"`
}

// Istio mTLS modes.
const (
	modeUnset      = "UNSET"
	modeDisable    = "DISABLE"
	modePermissive = "PERMISSIVE"
	modeStrict     = "STRICT"
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
	for _, u := range e.istioCandidates("PeerAuthentication") {
		pa := &peerAuthentication{}
		if err := decode(u, pa); err != nil {
			res.Notes = append(res.Notes, fmt.Sprintf("%s ignored: %v", refOf(u), err))
			continue
		}
		hasSelector := pa.Spec.Selector != nil && len(pa.Spec.Selector.MatchLabels) > 0
		switch {
		case !hasSelector && u.GetNamespace() == e.opts.IstioRootNamespace:
			mesh = append(mesh, u)
		case !hasSelector:
			namespace = append(namespace, u)
		case u.GetNamespace() != e.opts.IstioRootNamespace && matchLabelsSelect(pa.Spec.Selector.MatchLabels, e.req.To.PodLabels):
			workload = append(workload, u)
		}
	}
	mode, from := modePermissive, (*unstructured.Unstructured)(nil)
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
		pa := &peerAuthentication{}
		_ = decode(u, pa)
		if m := modeOf(pa.Spec.MTLS); m != modeUnset {
			mode, from, level = m, u, lv.name+" PeerAuthentication"
		}
		if lv.name == "workload" {
			if pm, ok := pa.Spec.PortLevelMTLS[strconv.Itoa(int(e.req.To.Port))]; ok && modeOf(&pm) != modeUnset {
				mode, from, level = modeOf(&pm), u, fmt.Sprintf("portLevelMtls %d of the workload PeerAuthentication", e.req.To.Port)
			}
		}
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

func modeOf(m *istioMode) string {
	if m == nil || m.Mode == "" {
		return modeUnset
	}
	return strings.ToUpper(m.Mode)
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
		ra := &requestAuthentication{}
		if err := decode(u, ra); err != nil {
			res.Notes = append(res.Notes, fmt.Sprintf("%s ignored: %v", refOf(u), err))
			continue
		}
		if ra.Spec.TargetRef != nil || len(ra.Spec.TargetRefs) > 0 {
			res.Notes = append(res.Notes, fmt.Sprintf("%s has targetRefs (gateways, waypoints): not applied to sidecars, not modelled", refOf(u)))
			continue
		}
		if ra.Spec.Selector != nil && !matchLabelsSelect(ra.Spec.Selector.MatchLabels, e.req.To.PodLabels) {
			continue
		}
		applying = append(applying, refOf(u))
		for _, r := range ra.Spec.JWTRules {
			issuers[r.Issuer] = append(issuers[r.Issuer], refOf(u))
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
func (e *evaluator) istioAuthz(st *istioState) LayerResult {
	res := LayerResult{Layer: LayerAuthorization}
	type pol struct {
		u *unstructured.Unstructured
		p *authorizationPolicy
	}
	byAction := map[string][]pol{}
	for _, u := range e.istioCandidates("AuthorizationPolicy") {
		ap := &authorizationPolicy{}
		if err := decode(u, ap); err != nil {
			res.Notes = append(res.Notes, fmt.Sprintf("%s ignored: %v", refOf(u), err))
			continue
		}
		if ap.Spec.TargetRef != nil || len(ap.Spec.TargetRefs) > 0 {
			res.Notes = append(res.Notes, fmt.Sprintf("%s has targetRefs (gateways, waypoints): not applied to sidecars, not modelled", refOf(u)))
			continue
		}
		if ap.Spec.Selector != nil && !matchLabelsSelect(ap.Spec.Selector.MatchLabels, e.req.To.PodLabels) {
			continue
		}
		action := strings.ToUpper(ap.Spec.Action)
		if action == "" {
			action = "ALLOW"
		}
		byAction[action] = append(byAction[action], pol{u, ap})
	}
	for _, a := range byAction {
		sort.Slice(a, func(i, j int) bool { return refOf(a[i].u).String() < refOf(a[j].u).String() })
	}
	if n := len(byAction["AUDIT"]); n > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d AUDIT policies apply: they log, never decide", n))
	}
	// matches returns the rules of the policies that match (yes) and could match (unknown).
	matches := func(ps []pol, allow bool) (hit, maybe []Ref, why []string) {
		for _, p := range ps {
			for i, r := range p.p.Spec.Rules {
				m, w := e.istioRuleMatch(r, allow, st)
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

	if hit, maybe, why := matches(byAction["CUSTOM"], false); len(hit)+len(maybe) > 0 {
		res.Decision = Unknown
		res.Deciding = append(hit, maybe...)
		providers := []string{}
		for _, p := range byAction["CUSTOM"] {
			if p.p.Spec.Provider != nil {
				providers = append(providers, p.p.Spec.Provider.Name)
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
func (e *evaluator) istioRuleMatch(r istioRule, allow bool, st *istioState) (tri, []string) {
	http := e.req.HTTP != nil
	if !http && allow && ruleHasHTTPOnly(r) {
		return no, nil
	}
	var why []string
	m := yes
	if len(r.From) > 0 {
		fm := no
		for _, f := range r.From {
			x, w := e.istioSourceMatch(f.Source, st, http)
			fm = fm.or(x)
			why = append(why, w...)
		}
		m = m.and(fm)
	}
	if len(r.To) > 0 {
		tm := no
		for _, t := range r.To {
			x, w := e.istioOperationMatch(t.Operation, http)
			tm = tm.or(x)
			why = append(why, w...)
		}
		m = m.and(tm)
	}
	for _, c := range r.When {
		x, w := e.istioConditionMatch(c, st, http)
		m = m.and(x)
		why = append(why, w...)
	}
	return m, why
}

func ruleHasHTTPOnly(r istioRule) bool {
	for _, f := range r.From {
		if len(f.Source.RequestPrincipals)+len(f.Source.NotRequestPrincipals) > 0 {
			return true
		}
	}
	for _, t := range r.To {
		o := t.Operation
		if len(o.Hosts)+len(o.NotHosts)+len(o.Methods)+len(o.NotMethods)+len(o.Paths)+len(o.NotPaths) > 0 {
			return true
		}
	}
	for _, c := range r.When {
		if strings.HasPrefix(c.Key, "request.") {
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

func (e *evaluator) istioSourceMatch(s istioSource, st *istioState, http bool) (tri, []string) {
	var why []string
	m := yes
	add := func(x tri, w []string) {
		m = m.and(x)
		why = append(why, w...)
	}
	principal := value{s: st.principal, present: st.mtls, known: !st.mtls || st.principalKnown}
	add(strField(principal, s.Principals, s.NotPrincipals, "the source's service account", istioStringMatch))
	// The source namespace comes from the peer certificate: plaintext has none.
	ns := value{s: e.req.From.Namespace, present: st.mtls, known: true}
	add(strField(ns, s.Namespaces, s.NotNamespaces, "the source namespace", istioStringMatch))
	if http {
		rp := value{s: st.requestPrincipal, present: st.requestPrincipal != "", known: true}
		add(strField(rp, s.RequestPrincipals, s.NotRequestPrincipals, "the request principal", istioStringMatch))
	}
	ip := value{s: e.req.From.IP, present: e.req.From.IP != "", known: e.req.From.IP != ""}
	add(strField(ip, s.IPBlocks, s.NotIPBlocks, "the source IP", ipMatch))
	// remoteIpBlocks use X-Forwarded-For / proxy protocol when configured; without them the
	// remote IP is the source IP.
	add(strField(ip, s.RemoteIPBlocks, s.NotRemoteIPBlocks, "the remote IP", ipMatch))
	return m, why
}

func ipMatch(cidr, v string) bool {
	a, err := netip.ParseAddr(v)
	return err == nil && inCIDR(a, cidr)
}

func (e *evaluator) istioOperationMatch(o istioOperation, http bool) (tri, []string) {
	var why []string
	m := yes
	add := func(x tri, w []string) {
		m = m.and(x)
		why = append(why, w...)
	}
	port := value{s: strconv.Itoa(int(e.req.To.Port)), present: true, known: true}
	add(strField(port, o.Ports, o.NotPorts, "the port", func(p, v string) bool { return p == v }))
	if !http {
		return m, why // HTTP-only fields are ignored for TCP (DENY/CUSTOM; ALLOW never gets here with them)
	}
	h := e.req.HTTP
	add(strField(value{s: h.Method, present: h.Method != "", known: h.Method != ""}, o.Methods, o.NotMethods, "the method", istioStringMatch))
	pathMatch := func(p, v string) bool { return istioStringMatch(p, v) }
	for _, p := range append(append([]string{}, o.Paths...), o.NotPaths...) {
		if strings.Contains(p, "{*}") || strings.Contains(p, "{**}") {
			m = m.and(unknown)
			why = append(why, "path template "+p+" is not modelled")
		}
	}
	add(strField(value{s: h.Path, present: h.Path != "", known: h.Path != ""}, o.Paths, o.NotPaths, "the path", pathMatch))
	host := value{s: strings.ToLower(h.Host), present: h.Host != "", known: h.Host != ""}
	add(strField(host, lower(o.Hosts), lower(o.NotHosts), "the Host header", istioStringMatch))
	return m, why
}

func (e *evaluator) istioConditionMatch(c istioCondition, st *istioState, http bool) (tri, []string) {
	var v value
	match := istioStringMatch
	switch c.Key {
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
		if !http && strings.HasPrefix(c.Key, "request.") {
			return yes, nil
		}
		return unknown, []string{"condition " + c.Key + " is not modelled"}
	}
	return strField(v, c.Values, c.NotValues, c.Key, match)
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
