package render

import (
	"fmt"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"
	securityv1beta1 "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/dataplane"
)

// This file renders Istio profiles for workloads on the ambient data plane, where enforcement is
// split (research: ../shared/research/ambient-and-beyond.md §1; docs/semantics.md):
//   - ztunnel enforces the L4 parts of AuthorizationPolicies bound by selector: sources by
//     principal, namespace, service account or IP block, ports, and a few L4 when keys. An ALLOW
//     rule with any L7 field is dropped whole, a DENY loses its L7 parts, and a DENY with only L7
//     fields has no effect at all (istio/istio#61126) (pilot/pkg/serviceregistry/ambient/
//     authorization.go convertAuthorizationPolicy, handleRule).
//   - a waypoint enforces policies bound with targetRefs (Service or Gateway), L4 and L7, and sees
//     the client's identity; ztunnel then sees the waypoint's identity, not the client's
//     (istio.io docs/ambient/usage/l4-policy).
//   - RequestAuthentication works only at a waypoint (ztunnel never validates JWTs).
//   - mTLS Disable is ignored in ambient: HBONE always uses mutual TLS (architecture/ambient/
//     peer-authentication.md).
//
// Every rule is placed per data plane of the pods it selects, deterministically; a rule that
// cannot be enforced for some pods is reported (Result.Unenforceable) and replaced by a
// fail-closed placeholder, never rendered in a form that would fail open.

// ambientState collects what ambient placement decided while rendering.
type ambientState struct {
	rows          map[rowKey]*rowPods
	unenforceable []string
	bound         []string
}

type rowKey struct {
	rule   string
	point  v1alpha1.EnforcementPoint
	reason string
}

type rowPods struct{ pods []string }

// maxRowPods is how many pod names one enforcement row lists (the CRD's limit).
const maxRowPods = 8

// maxRowReason is the CRD's limit on an enforcement row's reason (MaxLength=1024): a long list of
// targets or Services is cut rather than have the API server refuse the whole status.
const maxRowReason = 1024

// hboneMTLSPort is ztunnel's inbound port: ambient traffic reaches a pod on TCP 15008 (HBONE),
// whatever port it was sent to (istio.io docs/ambient/usage/networkpolicy).
const hboneMTLSPort = 15008

// labelGatewayName is set on the pods of a Gateway's deployment by Istio's deployment controller
// (manifests/charts/istio-control/istio-discovery/files/waypoint.yaml).
const labelGatewayName = dataplane.LabelGatewayName

// ambientResult copies the placement decisions into the result, sorted.
func (r *renderer) ambientResult(res *Result) {
	a := &r.ambient
	keys := make([]rowKey, 0, len(a.rows))
	for k := range a.rows {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		x, y := keys[i], keys[j]
		if x.rule != y.rule {
			return x.rule < y.rule
		}
		if x.point != y.point {
			return x.point < y.point
		}
		return x.reason < y.reason
	})
	for _, k := range keys {
		pods := sortedSet(a.rows[k].pods)
		reason := k.reason
		if len(reason) > maxRowReason {
			reason = reason[:maxRowReason-3] + "..."
		}
		row := v1alpha1.RuleEnforcementStatus{Rule: k.rule, EnforcedBy: k.point, PodCount: int32(len(pods)), Reason: reason}
		if len(pods) > maxRowPods {
			pods = pods[:maxRowPods]
		}
		row.Pods = pods
		res.Enforcement = append(res.Enforcement, row)
	}
	res.Unenforceable = sortedSet(a.unenforceable)
	res.AmbientBound = sortedSet(a.bound)
}

func (r *renderer) enforced(rule string, point v1alpha1.EnforcementPoint, pods []string, reason string) {
	if len(pods) == 0 {
		return
	}
	if r.ambient.rows == nil {
		r.ambient.rows = map[rowKey]*rowPods{}
	}
	k := rowKey{rule: rule, point: point, reason: reason}
	if r.ambient.rows[k] == nil {
		r.ambient.rows[k] = &rowPods{}
	}
	r.ambient.rows[k].pods = append(r.ambient.rows[k].pods, pods...)
}

// unenforceable records that nothing enforces rule for pods, and why.
func (r *renderer) unenforceable(rule string, pods []string, reason string) {
	if len(pods) == 0 {
		return
	}
	r.enforced(rule, v1alpha1.EnforcedByNone, pods, reason)
	r.ambient.unenforceable = append(r.ambient.unenforceable, fmt.Sprintf("%s: %s (pods %s)", rule, reason, podList(pods)))
}

func podList(pods []string) string {
	if len(pods) > maxRowPods {
		return strings.Join(pods[:maxRowPods], ", ") + fmt.Sprintf(" and %d more", len(pods)-maxRowPods)
	}
	return strings.Join(pods, ", ")
}

// selection classifies the pods a workload selector selects (nil: every pod of the namespace).
func (r *renderer) selection(sel *v1alpha1.WorkloadSelector) dataplane.Selection {
	var m map[string]string
	if sel != nil {
		m = sel.MatchLabels
	}
	return dataplane.Select(r.opts.DataPlane, m)
}

// policy is one authorization part of the profile to place: a rule, the requireToken deny, or
// the default-deny.
type policy struct {
	id       string // the part of the profile, as status names it
	name     string // the name of its sidecar-form object
	selector *v1alpha1.WorkloadSelector
	ap       *securityv1.AuthorizationPolicy
	// l7: the policy has fields only Envoy (a sidecar or a waypoint) can evaluate.
	l7 bool
}

// isL7 says whether an AuthorizationPolicy has fields ztunnel treats as HTTP: hosts, methods,
// paths, requestPrincipals, remoteIpBlocks (and their not* forms), or a when key other than the
// L4 ones (pilot/pkg/serviceregistry/ambient/authorization.go handleRule).
func isL7(ap *securityv1.AuthorizationPolicy) bool {
	for _, rule := range ap.Spec.Rules {
		for _, f := range rule.From {
			s := f.GetSource()
			if len(s.GetRequestPrincipals())+len(s.GetNotRequestPrincipals())+len(s.GetRemoteIpBlocks())+len(s.GetNotRemoteIpBlocks()) > 0 {
				return true
			}
		}
		for _, t := range rule.To {
			o := t.GetOperation()
			if len(o.GetHosts())+len(o.GetNotHosts())+len(o.GetMethods())+len(o.GetNotMethods())+len(o.GetPaths())+len(o.GetNotPaths()) > 0 {
				return true
			}
		}
		for _, c := range rule.When {
			if !l4WhenKeys[c.GetKey()] {
				return true
			}
		}
	}
	return false
}

// l4WhenKeys are the when keys ztunnel evaluates (authorization.go handleRule).
var l4WhenKeys = map[string]bool{
	"source.ip": true, "source.namespace": true, "source.principal": true, "destination.ip": true, "destination.port": true,
}

// placeAuthorizationPolicy renders one authorization part for the data planes of its pods.
// Without data plane facts it is the sidecar form, exactly as before.
func (r *renderer) placeAuthorizationPolicy(pl policy) {
	if r.opts.DataPlane == nil {
		r.addAuthorizationPolicy(pl.name, pl.ap)
		return
	}
	s := r.selection(pl.selector)
	sc, un, z, w := s.Pods(dataplane.Sidecar), s.Pods(dataplane.Unmeshed), s.Pods(dataplane.Ambient), s.Pods(dataplane.Waypoint)
	r.enforced(pl.id, v1alpha1.EnforcedByNone, un, notMeshed)
	if len(z)+len(w) == 0 {
		r.enforced(pl.id, v1alpha1.EnforcedBySidecar, sc, "")
		r.addAuthorizationPolicy(pl.name, pl.ap)
		return
	}
	allow := pl.ap.Spec.Action == securityv1beta1.AuthorizationPolicy_ALLOW
	targets, waypoints, problems := r.waypointPlan(s, pl.selector)
	if why := cannotPlace(pl.l7, sc, un, z, w, problems); why != "" {
		// Every meshed pod of the selector loses the rule to the placeholder, sidecar ones too.
		r.unenforceable(pl.id, append(append(append([]string{}, z...), w...), sc...), why)
		r.placeholder(pl, allow)
		return
	}
	r.enforced(pl.id, v1alpha1.EnforcedBySidecar, sc, "")
	if !pl.l7 {
		// L4: one selector policy serves sidecars and ztunnel alike, naming senders in a form
		// ztunnel matches in any trust domain.
		r.addAuthorizationPolicy(pl.name, r.ambientIdentities(pl.ap))
		r.ambient.bound = append(r.ambient.bound, pl.name)
		r.enforced(pl.id, v1alpha1.EnforcedByZtunnel, z, "")
	}
	if len(w) == 0 {
		return
	}
	// At the waypoint: the same policy with targetRefs; it sees the client's identity.
	wp := r.ambientIdentities(pl.ap)
	wp.Spec.Selector = nil
	wp.Spec.TargetRefs = targetRefs(targets)
	r.addAuthorizationPolicy(pl.name+"-waypoint", wp)
	r.ambient.bound = append(r.ambient.bound, pl.name+"-waypoint")
	bypass := ingressJudgedAtZtunnel
	switch {
	case pl.l7 && allow:
		bypass = ingressRefused
	case pl.l7:
		bypass = ingressSkipsDeny
	}
	r.enforcedAtWaypoint(pl.id, s, "targetRefs "+targetsText(targets), bypass)
	switch {
	case pl.l7 && !allow:
		// A DENY only the waypoint enforces: refuse at ztunnel every identity but the waypoint's,
		// whatever other parts' ALLOW policies admit there (see denyAllButWaypoints).
		r.addAuthorizationPolicy(pl.name+"-ztunnel", r.denyAllButWaypoints(pl.selector, waypoints))
		r.ambient.bound = append(r.ambient.bound, pl.name+"-ztunnel")
		r.enforced(pl.id, v1alpha1.EnforcedByZtunnel, w, denyAllButText(waypoints))
	case pl.l7 || allow:
		// At ztunnel, traffic from the waypoint carries the waypoint's identity: admit only it,
		// so that the waypoint's policy cannot be bypassed by calling the pods directly (the
		// l4-policy docs' advice). Direct callers, sidecar clients (they skip waypoints) and
		// ingress without istio.io/ingress-use-waypoint are then refused by this part: fail
		// closed. (Other ALLOW parts may admit their own senders directly: ALLOWs add up, as in
		// the profile.)
		r.addAuthorizationPolicy(pl.name+"-ztunnel", r.onlyWaypoints(pl.selector, waypoints))
		r.ambient.bound = append(r.ambient.bound, pl.name+"-ztunnel")
		r.enforced(pl.id, v1alpha1.EnforcedByZtunnel, w, "admits only the waypoint's identity ("+waypointsText(waypoints)+"), so the waypoint cannot be bypassed")
	}
}

// What happens at ztunnel to ingress-gateway traffic that does not go through the waypoint
// (without istio.io/ingress-use-waypoint: istio/istio#51214), per kind of waypoint-enforced part.
const (
	// An L7 ALLOW: at ztunnel the part is the policy that admits only the waypoint's identity.
	ingressRefused = "ztunnel admits only the waypoint, so ingress to these pods is refused"
	// An L7 DENY or the JWT requirement: at ztunnel the part is a DENY of every identity but
	// the waypoint's (denyAllButWaypoints).
	ingressSkipsDeny = "ztunnel refuses every identity but the waypoint's for this part, so ingress to these pods is refused"
	// An L4 part or the default-deny: ztunnel enforces its selector form on ingress directly.
	ingressJudgedAtZtunnel = "ztunnel enforces this part's L4 form on ingress to these pods instead"
)

// enforcedAtWaypoint records the Waypoint rows of part id for the waypoint-bound pods of s, one
// per way ingress-gateway traffic reaches them: through the waypoint (istio.io/ingress-use-waypoint
// on the Service or the namespace, istio/istio#54483) or past it, then bypass says what ztunnel
// does with it (istio/istio#51214).
func (r *renderer) enforcedAtWaypoint(id string, s dataplane.Selection, base, bypass string) {
	groups := map[string][]string{}
	for _, w := range s.Workloads {
		if w.Class != dataplane.Waypoint {
			continue
		}
		var why string
		switch {
		case w.IngressUsesWaypoint():
			why = "ingress-gateway traffic uses the waypoint (istio.io/ingress-use-waypoint)"
		case len(w.IngressSkips) > 0:
			why = "ingress-gateway traffic does not use the waypoint (no istio.io/ingress-use-waypoint on Service " +
				podList(w.IngressSkips) + " or the namespace): " + bypass
		default:
			why = "ingress-gateway traffic does not use a workload waypoint (istio.io/ingress-use-waypoint applies to Services bound to a service waypoint): " + bypass
		}
		groups[why] = append(groups[why], w.Pod)
	}
	for why, pods := range groups {
		r.enforced(id, v1alpha1.EnforcedByWaypoint, pods, base+"; "+why)
	}
}

const notMeshed = "not in the mesh: no proxy enforces policy for these pods"

// cannotPlace says why a part cannot be enforced for the pods of a selector, or "".
func cannotPlace(l7 bool, sc, un, z, w, problems []string) string {
	switch {
	case l7 && len(z) > 0:
		return "ztunnel enforces only L4 policy and ambient pods " + podList(z) + " have no waypoint: methods, paths, hosts and JWT (requestPrincipals, requireToken) need one (label the Service or namespace istio.io/use-waypoint)"
	case l7 && len(sc)+len(un) > 0:
		return "the selector selects sidecar or unmeshed pods (" + podList(append(append([]string{}, sc...), un...)) + ") and waypoint-bound ambient pods (" + podList(w) + "): a selector policy with L7 fields would reach ztunnel for the ambient pods, and a waypoint does not serve the others; give the ambient pods labels of their own"
	case len(problems) > 0:
		return strings.Join(problems, "; ")
	}
	return ""
}

// placeholder stands in for a part that cannot be enforced: an ALLOW becomes an allow-nothing
// policy on the same selector, a DENY a deny-everything one. Either is stricter than the profile;
// neither fails open, and neither carries a field ztunnel cannot enforce.
func (r *renderer) placeholder(pl policy, allow bool) {
	ap := &securityv1.AuthorizationPolicy{}
	ap.Spec.Selector = istioWorkloadSelector(pl.selector)
	if !allow {
		ap.Spec.Action = securityv1beta1.AuthorizationPolicy_DENY
		ap.Spec.Rules = []*securityv1beta1.Rule{{}}
	}
	r.addAuthorizationPolicy(pl.name, ap)
	r.ambient.bound = append(r.ambient.bound, pl.name)
	what := "admits nothing"
	if !allow {
		what = "denies everything"
	}
	r.warnings = append(r.warnings, fmt.Sprintf("%s: cannot be enforced where its pods run (see status.enforcement); AuthorizationPolicy %s %s until it can be", pl.id, pl.name, what))
}

// waypointPlan collects the targetRefs and waypoints of the waypoint-bound pods of a selection,
// and what keeps them from carrying the policy: a waypoint whose Gateway is in another namespace,
// or a target whose policy would also apply to pods outside the selector.
func (r *renderer) waypointPlan(s dataplane.Selection, sel *v1alpha1.WorkloadSelector) ([]dataplane.Target, []dataplane.WaypointRef, []string) {
	tset := map[dataplane.Target]bool{}
	wset := map[dataplane.WaypointRef]bool{}
	var problems []string
	for _, w := range s.Workloads {
		if w.Class != dataplane.Waypoint {
			continue
		}
		problems = append(problems, w.Problems...)
		if len(w.Targets) == 0 && len(w.Problems) == 0 {
			problems = append(problems, "pod "+w.Pod+" has no Service or Gateway in the profile's namespace to attach a policy to")
		}
		for _, t := range w.Targets {
			tset[t] = true
		}
		for _, wp := range w.Waypoints {
			wset[wp] = true
		}
	}
	var m map[string]string
	if sel != nil {
		m = sel.MatchLabels
	}
	selected := map[string]bool{}
	for _, w := range s.Workloads {
		selected[w.Pod] = true
	}
	targets := make([]dataplane.Target, 0, len(tset))
	for t := range tset {
		targets = append(targets, t)
		if len(m) == 0 {
			continue
		}
		var outside []string
		for _, p := range dataplane.TargetPods(r.opts.DataPlane, t) {
			if !selected[p] {
				outside = append(outside, p)
			}
		}
		if len(outside) > 0 {
			problems = append(problems, fmt.Sprintf("%s %s also serves pods outside the selector (%s): a policy attached to it would apply to them too", t.Kind, t.Name, podList(outside)))
		}
	}
	if len(targets) > maxTargetRefs {
		problems = append(problems, tooManyTargets(len(targets)))
	}
	sort.Slice(targets, func(i, j int) bool {
		if targets[i].Kind != targets[j].Kind {
			return targets[i].Kind < targets[j].Kind
		}
		return targets[i].Name < targets[j].Name
	})
	wps := make([]dataplane.WaypointRef, 0, len(wset))
	for wp := range wset {
		wps = append(wps, wp)
	}
	sort.Slice(wps, func(i, j int) bool {
		if wps[i].Namespace != wps[j].Namespace {
			return wps[i].Namespace < wps[j].Namespace
		}
		return wps[i].Name < wps[j].Name
	})
	sort.Strings(problems)
	return targets, wps, sortedSet(problems)
}

// maxTargetRefs is the most targetRefs an AuthorizationPolicy or RequestAuthentication may have
// (istio.io/api kubernetes/customresourcedefinitions.gen.yaml: targetRefs maxItems 16); the API
// server refuses more.
const maxTargetRefs = 16

func tooManyTargets(n int) string {
	return fmt.Sprintf("the pods are behind %d Services and Gateways bound to waypoints, more than the %d targetRefs one policy may have", n, maxTargetRefs)
}

// targetRefs are the policy attachments for targets: a Service (core group, empty) or a
// Gateway (gateway.networking.k8s.io), in the policy's own namespace (namespace left empty, as
// Istio's validation requires: pkg/config/validation allowedTargetRefs).
func targetRefs(targets []dataplane.Target) []*typev1beta1.PolicyTargetReference {
	out := make([]*typev1beta1.PolicyTargetReference, 0, len(targets))
	for _, t := range targets {
		ref := &typev1beta1.PolicyTargetReference{Kind: t.Kind, Name: t.Name}
		if t.Kind == "Gateway" {
			ref.Group = "gateway.networking.k8s.io"
		}
		out = append(out, ref)
	}
	return out
}

func targetsText(targets []dataplane.Target) string {
	s := make([]string, len(targets))
	for i, t := range targets {
		s[i] = t.Kind + " " + t.Name
	}
	return strings.Join(s, ", ")
}

func waypointsText(wps []dataplane.WaypointRef) string {
	s := make([]string, len(wps))
	for i, w := range wps {
		s[i] = w.Namespace + "/" + w.ServiceAccount
	}
	return strings.Join(s, ", ")
}

// onlyWaypoints is the ztunnel policy that admits the waypoints' identities to the selected pods.
func (r *renderer) onlyWaypoints(sel *v1alpha1.WorkloadSelector, wps []dataplane.WaypointRef) *securityv1.AuthorizationPolicy {
	var accounts []string
	for _, w := range wps {
		accounts = append(accounts, w.Namespace+"/"+w.ServiceAccount)
	}
	ap := &securityv1.AuthorizationPolicy{}
	ap.Spec.Selector = istioWorkloadSelector(sel)
	ap.Spec.Action = securityv1beta1.AuthorizationPolicy_ALLOW
	ap.Spec.Rules = []*securityv1beta1.Rule{{From: r.sourcesFor(sortedSet(accounts), nil)}}
	return ap
}

// denyAllButWaypoints is the anti-bypass policy of a DENY that only the waypoint enforces
// (requireToken, an L7 Deny rule): a ztunnel DENY of every identity but the waypoints'. An ALLOW
// admitting only the waypoint would not do: an L4 Allow rule of the same pods is also a selector
// policy at ztunnel, ALLOW policies add up, and its senders would reach the pods without the
// waypoint, and without the DENY, by pod IP, through a sidecar (sidecars skip waypoints:
// istio/istio#54483) or as ingress without istio.io/ingress-use-waypoint. A DENY is evaluated
// before every ALLOW (istio.io docs/concepts/security "implicit enablement"), and ztunnel enforces
// notPrincipals and notServiceAccounts (pilot/pkg/serviceregistry/ambient/authorization.go).
func (r *renderer) denyAllButWaypoints(sel *v1alpha1.WorkloadSelector, wps []dataplane.WaypointRef) *securityv1.AuthorizationPolicy {
	var accounts []string
	for _, w := range wps {
		accounts = append(accounts, w.Namespace+"/"+w.ServiceAccount)
	}
	accounts = sortedSet(accounts)
	src := &securityv1beta1.Source{}
	if r.opts.IstioSourceServiceAccounts {
		// One source, not sourcesFor's chunks of 16: "not in A" OR "not in B" would match the
		// waypoints too. More than 16 waypoints for one selector, which the CRD refuses, is not a
		// real case.
		src.NotServiceAccounts = accounts
	} else {
		for _, a := range accounts {
			ns, name, _ := strings.Cut(a, "/")
			src.NotPrincipals = append(src.NotPrincipals, r.opts.TrustDomain+"/ns/"+ns+"/sa/"+name)
		}
	}
	ap := &securityv1.AuthorizationPolicy{}
	ap.Spec.Selector = istioWorkloadSelector(sel)
	ap.Spec.Action = securityv1beta1.AuthorizationPolicy_DENY
	ap.Spec.Rules = []*securityv1beta1.Rule{{From: []*securityv1beta1.Rule_From{{Source: src}}}}
	return ap
}

func denyAllButText(wps []dataplane.WaypointRef) string {
	return "refuses every identity but the waypoint's (" + waypointsText(wps) + "), so no caller skips this part at the waypoint, whatever other parts admit"
}

// sourcesFor names service accounts ("ns/name") in the form ztunnel matches in any trust domain:
// source.serviceAccounts when the installed CRD has it (at most 16 per source, so longer lists
// become several sources, which OR), else principals in the configured trust domain.
func (r *renderer) sourcesFor(accounts []string, base *securityv1beta1.Source) []*securityv1beta1.Rule_From {
	mk := func() *securityv1beta1.Source {
		if base == nil {
			return &securityv1beta1.Source{}
		}
		return proto.Clone(base).(*securityv1beta1.Source)
	}
	if !r.opts.IstioSourceServiceAccounts {
		src := mk()
		for _, a := range accounts {
			ns, name, _ := strings.Cut(a, "/")
			src.Principals = append(src.Principals, r.opts.TrustDomain+"/ns/"+ns+"/sa/"+name)
		}
		src.Principals = sortedSet(src.Principals)
		return []*securityv1beta1.Rule_From{{Source: src}}
	}
	const maxPerSource = 16 // the CRD's maxItems
	var out []*securityv1beta1.Rule_From
	for i := 0; i < len(accounts); i += maxPerSource {
		src := mk()
		src.ServiceAccounts = accounts[i:min(i+maxPerSource, len(accounts))]
		out = append(out, &securityv1beta1.Rule_From{Source: src})
	}
	return out
}

// ambientIdentities rewrites the principals meshguard derived from service accounts into
// sourcesFor's form. The CRD refuses serviceAccounts next to namespaces, so a source with both
// keeps the accounts whose namespace is listed (what the AND of the two lists admits).
func (r *renderer) ambientIdentities(in *securityv1.AuthorizationPolicy) *securityv1.AuthorizationPolicy {
	ap := in.DeepCopy()
	if !r.opts.IstioSourceServiceAccounts {
		return ap
	}
	prefix := r.opts.TrustDomain + "/ns/"
	for _, rule := range ap.Spec.Rules {
		var from []*securityv1beta1.Rule_From
		for _, f := range rule.From {
			src := f.GetSource()
			if len(src.GetPrincipals()) == 0 {
				from = append(from, f)
				continue
			}
			nsAllowed := map[string]bool{}
			for _, ns := range src.GetNamespaces() {
				nsAllowed[ns] = true
			}
			var accounts []string
			for _, p := range src.GetPrincipals() {
				ns, name, ok := strings.Cut(strings.TrimPrefix(p, prefix), "/sa/")
				if !ok || !strings.HasPrefix(p, prefix) {
					// Not one meshguard derived: keep the source as it is.
					accounts = nil
					break
				}
				if len(nsAllowed) == 0 || nsAllowed[ns] {
					accounts = append(accounts, ns+"/"+name)
				}
			}
			if len(accounts) == 0 {
				from = append(from, f)
				continue
			}
			base := proto.Clone(src).(*securityv1beta1.Source)
			base.Principals, base.Namespaces = nil, nil
			from = append(from, r.sourcesFor(sortedSet(accounts), base)...)
		}
		rule.From = from
	}
	return ap
}

// ambientDefaultDeny puts the namespace's default-deny on the waypoints of its waypoint-bound
// pods too: the namespace policy binds ztunnel and sidecars, not waypoints (they take only
// targetRefs policies).
func (r *renderer) ambientDefaultDeny() {
	if r.opts.DataPlane == nil {
		return
	}
	id := "authorization.defaultDeny"
	s := r.selection(nil)
	r.enforced(id, v1alpha1.EnforcedBySidecar, s.Pods(dataplane.Sidecar), "")
	r.enforced(id, v1alpha1.EnforcedByNone, s.Pods(dataplane.Unmeshed), notMeshed)
	r.enforced(id, v1alpha1.EnforcedByZtunnel, s.Pods(dataplane.Ambient), "")
	w := s.Pods(dataplane.Waypoint)
	if len(w) == 0 {
		return
	}
	r.ambient.bound = append(r.ambient.bound, r.name("default-deny"))
	// Traffic through a waypoint reaches ztunnel as the waypoint's identity, which the
	// default-deny refuses unless a rule admits it there: fail closed.
	r.enforced(id, v1alpha1.EnforcedByZtunnel, w, "")
	targets, _, _ := r.waypointPlan(s, nil)
	if len(targets) == 0 {
		return
	}
	if len(targets) > maxTargetRefs {
		r.unenforceable(id, w, tooManyTargets(len(targets)))
		return
	}
	ap := &securityv1.AuthorizationPolicy{}
	ap.Spec.TargetRefs = targetRefs(targets)
	r.addAuthorizationPolicy(r.name("default-deny", "waypoint"), ap)
	r.ambient.bound = append(r.ambient.bound, r.name("default-deny", "waypoint"))
	r.enforcedAtWaypoint(id, s, "targetRefs "+targetsText(targets), ingressJudgedAtZtunnel)
}

// ambientMTLS reports where mTLS is enforced, and that Disable is not: ztunnel always uses
// mutual TLS over HBONE and reads a workload or port DISABLE as PERMISSIVE
// (architecture/ambient/peer-authentication.md; convertPeerAuthentication).
func (r *renderer) ambientMTLS() {
	if r.opts.DataPlane == nil {
		return
	}
	m := r.p.Spec.MTLS
	if m == nil {
		m = &v1alpha1.MTLSSpec{}
	}
	const id = "mtls"
	all := r.selection(nil)
	r.enforced(id, v1alpha1.EnforcedBySidecar, all.Pods(dataplane.Sidecar), "")
	r.enforced(id, v1alpha1.EnforcedByNone, all.Pods(dataplane.Unmeshed), notMeshed)
	ambient := append(all.Pods(dataplane.Ambient), all.Pods(dataplane.Waypoint)...)
	const disableWhy = "ambient ignores mTLS Disable: ztunnel always uses mutual TLS (HBONE) and acts as Permissive; take the pods out of ambient (istio.io/dataplane-mode=none) to disable it"
	if m.Mode == v1alpha1.MTLSDisable {
		r.unenforceable(id, ambient, disableWhy)
	} else {
		r.enforced(id, v1alpha1.EnforcedByZtunnel, ambient, "")
	}
	for i, o := range m.Overrides {
		disable := o.Mode == v1alpha1.MTLSDisable
		for _, pm := range o.Ports {
			disable = disable || pm.Mode == v1alpha1.MTLSDisable
		}
		if !disable {
			continue
		}
		s := r.selection(&o.Selector)
		pods := append(s.Pods(dataplane.Ambient), s.Pods(dataplane.Waypoint)...)
		if len(pods) > 0 {
			r.unenforceable(fmt.Sprintf("mtls.overrides[%d]", i), pods, disableWhy)
		}
	}
}

// ambientIngress lets ambient traffic through an ingress NetworkPolicy: it arrives on TCP 15008
// (HBONE), and through a waypoint it comes from the waypoint's pods (istio.io
// docs/ambient/usage/networkpolicy: Istio "does not and will never bypass" NetworkPolicy).
//
// It returns the waypoints of the profile's namespace in the path: their own pods must admit the
// rule's peers on 15008 too, or a namespace's ingress default-deny cuts the clients off from them.
func (r *renderer) ambientIngress(sel *metav1.LabelSelector, rule *networkingv1.NetworkPolicyIngressRule) []string {
	f := r.opts.DataPlane
	if f == nil || r.p.Spec.GetMesh() != v1alpha1.MeshIstio {
		return nil
	}
	selector := labels.Everything()
	if sel != nil {
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			return nil // already an error naming the field
		}
		selector = s
	}
	var ambient bool
	wset := map[dataplane.WaypointRef]bool{}
	var matched []dataplane.Pod
	for _, p := range f.Pods {
		if selector.Matches(labels.Set(p.Labels)) {
			matched = append(matched, p)
		}
	}
	sels := []dataplane.Selection{}
	if len(matched) == 0 {
		var m map[string]string
		if sel != nil {
			m = sel.MatchLabels
		}
		sels = append(sels, dataplane.Select(f, m))
	}
	for _, p := range matched {
		sels = append(sels, dataplane.Select(&dataplane.Facts{Namespace: f.Namespace, NamespaceLabels: f.NamespaceLabels, Pods: []dataplane.Pod{p}, Services: f.Services, Gateways: f.Gateways}, nil))
	}
	for _, s := range sels {
		for _, w := range s.Workloads {
			if w.Class == dataplane.Ambient || w.Class == dataplane.Waypoint {
				ambient = true
			}
			for _, wp := range w.Waypoints {
				wset[wp] = true
			}
		}
	}
	if !ambient {
		return nil
	}
	if len(rule.Ports) > 0 && !npHasPort(rule.Ports, hboneMTLSPort) {
		rule.Ports = append(rule.Ports, npPort(corev1.ProtocolTCP, hboneMTLSPort))
	}
	wps := make([]dataplane.WaypointRef, 0, len(wset))
	for wp := range wset {
		wps = append(wps, wp)
	}
	sort.Slice(wps, func(i, j int) bool {
		if wps[i].Namespace != wps[j].Namespace {
			return wps[i].Namespace < wps[j].Namespace
		}
		return wps[i].Name < wps[j].Name
	})
	var local []string
	for _, wp := range wps {
		peer := networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{labelGatewayName: wp.Name}}}
		if wp.Namespace != r.p.Namespace {
			peer.NamespaceSelector = namespaceNameSelector(wp.Namespace)
		} else {
			local = append(local, wp.Name)
		}
		rule.From = append(rule.From, peer)
	}
	return local
}

// waypointIngress is the NetworkPolicy that lets a rule's peers reach a waypoint of the
// namespace on HBONE (15008), the only port clients use to reach it.
func waypointIngress(waypoint string, peers []networkingv1.NetworkPolicyPeer) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{Spec: networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{labelGatewayName: waypoint}},
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		Ingress: []networkingv1.NetworkPolicyIngressRule{{
			From:  peers,
			Ports: []networkingv1.NetworkPolicyPort{npPort(corev1.ProtocolTCP, hboneMTLSPort)},
		}},
	}}
}

func npHasPort(ports []networkingv1.NetworkPolicyPort, port int32) bool {
	for _, p := range ports {
		if p.Port == nil || (p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP) {
			continue
		}
		end := p.Port.IntVal
		if p.EndPort != nil {
			end = *p.EndPort
		}
		if p.Port.IntVal <= port && port <= end {
			return true
		}
	}
	return false
}

// placeRequestAuthentication renders the RequestAuthentication and its requireToken deny for the
// data planes of their pods. ztunnel never validates JWTs: for ambient pods both work only at a
// waypoint, bound with targetRefs (a selector RequestAuthentication does nothing there: Kiali
// KIA1110, istio/istio#45502), and the deny's notRequestPrincipals is L7 only, so at ztunnel it
// would have no effect at all (istio/istio#61126).
func (r *renderer) placeRequestAuthentication(sel *v1alpha1.WorkloadSelector, ra *securityv1.RequestAuthentication, deny *securityv1.AuthorizationPolicy) {
	if r.opts.DataPlane == nil {
		r.add(gvkRequestAuthentication, r.name("jwt"), ra)
		if deny != nil {
			r.addAuthorizationPolicy(r.name("require-jwt"), deny)
		}
		return
	}
	const id = "requestAuthentication"
	s := r.selection(sel)
	sc, un, z, w := s.Pods(dataplane.Sidecar), s.Pods(dataplane.Unmeshed), s.Pods(dataplane.Ambient), s.Pods(dataplane.Waypoint)
	targets, waypoints, problems := r.waypointPlan(s, sel)
	r.enforced(id, v1alpha1.EnforcedByNone, un, notMeshed)
	if len(z)+len(w) == 0 {
		r.enforced(id, v1alpha1.EnforcedBySidecar, sc, "")
		r.add(gvkRequestAuthentication, r.name("jwt"), ra)
		if deny != nil {
			r.addAuthorizationPolicy(r.name("require-jwt"), deny)
		}
		return
	}
	if why := cannotPlace(true, sc, un, z, w, problems); why != "" {
		r.unenforceable(id, append(append(append([]string{}, z...), w...), sc...), why)
		if deny != nil {
			r.placeholder(policy{id: id, name: r.name("require-jwt"), selector: sel, l7: true}, false)
		}
		return
	}
	r.enforced(id, v1alpha1.EnforcedBySidecar, sc, "")
	wra := ra.DeepCopy()
	wra.Spec.Selector = nil
	wra.Spec.TargetRefs = targetRefs(targets)
	r.add(gvkRequestAuthentication, r.name("jwt", "waypoint"), wra)
	bypass := ingressRefused
	if deny != nil {
		bypass = ingressSkipsDeny
	}
	r.enforcedAtWaypoint(id, s, "targetRefs "+targetsText(targets), bypass)
	if deny != nil {
		wd := deny.DeepCopy()
		wd.Spec.Selector = nil
		wd.Spec.TargetRefs = targetRefs(targets)
		r.addAuthorizationPolicy(r.name("require-jwt", "waypoint"), wd)
		r.ambient.bound = append(r.ambient.bound, r.name("require-jwt", "waypoint"))
	}
	if deny != nil {
		// requireToken is a DENY only the waypoint enforces (see denyAllButWaypoints).
		r.addAuthorizationPolicy(r.name("jwt", "ztunnel"), r.denyAllButWaypoints(sel, waypoints))
		r.enforced(id, v1alpha1.EnforcedByZtunnel, w, denyAllButText(waypoints))
	} else {
		r.addAuthorizationPolicy(r.name("jwt", "ztunnel"), r.onlyWaypoints(sel, waypoints))
		r.enforced(id, v1alpha1.EnforcedByZtunnel, w, "admits only the waypoint's identity ("+waypointsText(waypoints)+"), so the waypoint cannot be bypassed")
	}
	r.ambient.bound = append(r.ambient.bound, r.name("jwt", "ztunnel"))
}
