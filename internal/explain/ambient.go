package explain

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	securityv1beta1 "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshguard/meshguard/internal/dataplane"
	"github.com/meshguard/meshguard/internal/meshapi"
	"github.com/meshguard/meshguard/internal/meshsem"
)

// This file models Istio's ambient data plane for a destination that ztunnel captures
// (research: ../shared/research/ambient-and-beyond.md §1; docs/explain.md "Ambient"):
//   - ztunnel, on the destination's node, enforces mTLS (PeerAuthentication, DISABLE read as
//     PERMISSIVE) and the L4 parts of the AuthorizationPolicies bound by selector or namespace
//     (pilot/pkg/serviceregistry/ambient/authorization.go convertAuthorizationPolicy, handleRule);
//     it never validates a JWT;
//   - a waypoint, when one is in the destination's path, enforces the policies bound to it with
//     targetRefs (a Service selecting the pod, the waypoint Gateway, the istio-waypoint
//     GatewayClass in the root namespace), L4 and L7, and sees the client's identity; ztunnel then
//     sees the waypoint's identity, not the client's (istio.io docs/ambient/usage/l4-policy, "Which
//     identity ztunnel sees").
// The destination's data plane is decided by internal/dataplane, from Options.DataPlane or from
// the Pods, Namespace, Services and Gateways among the inputs.

// Layer names of an ambient destination: each names the proxy that decides.
const (
	LayerMTLSZtunnel            = LayerMTLS + " (ztunnel)"
	LayerAuthenticationZtunnel  = LayerAuthentication + " (ztunnel)"
	LayerAuthenticationWaypoint = LayerAuthentication + " (waypoint)"
	LayerAuthorizationWaypoint  = LayerAuthorization + " (waypoint)"
	LayerAuthorizationZtunnel   = LayerAuthorization + " (ztunnel)"
)

// hboneMTLSPort is the port ambient traffic between meshed pods arrives on (HBONE): the network
// sees it, not the application port (istio.io docs/ambient/usage/networkpolicy).
const hboneMTLSPort = 15008

// annotationBypassInbound makes ztunnel capture only a pod's outbound traffic
// (cni/pkg/nodeagent/net.go; Istio 1.24 change notes): its inbound policy is not enforced.
const annotationBypassInbound = "ambient.istio.io/bypass-inbound-capture"

// annotationDryRun marks an AuthorizationPolicy as dry-run.
const annotationDryRun = "istio.io/dry-run"

// ambientStage says which proxy the Istio layers are being evaluated for.
type ambientStage int

const (
	// stageSidecar is the sidecar evaluation (and every destination that is not ambient).
	stageSidecar ambientStage = iota
	// stageWaypoint: policies bound with targetRefs to the waypoint in the path.
	stageWaypoint
)

// ambientPlan is where the policy of an ambient destination is enforced.
type ambientPlan struct {
	// class is dataplane.Ambient (ztunnel alone) or dataplane.Waypoint.
	class dataplane.Class
	// waypoint is the waypoint in the path (class Waypoint) and targets where policy attaches
	// to be enforced by it.
	waypoint dataplane.WaypointRef
	targets  []dataplane.Target
	gateway  dataplane.Gateway
	facts    *dataplane.Facts
	// unanswerable says why the destination cannot be answered as one workload.
	unanswerable string
	// bypass says why inbound traffic skips ztunnel.
	bypass string
	// sourceSidecar: the client is known to run a sidecar (it skips waypoints); sourceKnown: its
	// data plane is known.
	sourceSidecar, sourceKnown bool
	notes                      []string
}

// throughWaypoint says whether the request goes through the destination's waypoint: it has one,
// and the client is meshed without a sidecar ("Sidecars won't go through waypoints right now",
// istio/istio PR #54483). A plaintext client reaches the destination's ztunnel directly (hedged).
func (e *evaluator) throughWaypoint() bool {
	a := e.amb
	return a != nil && a.class == dataplane.Waypoint && !a.sourceSidecar && e.sourceMeshed()
}

// sourceMeshed says whether the client sends mutual TLS: a pod that is not declared unmeshed.
func (e *evaluator) sourceMeshed() bool {
	return e.req.From.Namespace != "" && !e.req.From.Unmeshed
}

// planAmbient classifies the destination with internal/dataplane; nil unless Istio's ambient data
// plane (ztunnel, with or without a waypoint) serves it.
func (e *evaluator) planAmbient() *ambientPlan {
	if e.mesh != MeshIstio || e.req.To.Namespace == "" || e.req.To.Unmeshed {
		return nil
	}
	f := e.dataPlaneFacts(e.req.To.Namespace)
	sel := dataplane.Select(f, e.req.To.PodLabels)
	if !sel.Has(dataplane.Ambient) && !sel.Has(dataplane.Waypoint) {
		return nil
	}
	a := &ambientPlan{facts: f}
	if sel.Expected {
		a.notes = append(a.notes, "no Pod with the destination's labels among the inputs: its data plane is taken from the namespace's labels (istio.io/dataplane-mode, istio.io/use-waypoint)")
	}
	if classes := sel.Classes(); len(classes) > 1 {
		var parts []string
		for _, c := range classes {
			parts = append(parts, fmt.Sprintf("%s: %s", c, strings.Join(sel.Pods(c), ", ")))
		}
		a.unanswerable = "the destination's pods run on different data planes (" + strings.Join(parts, "; ") + "): each enforces other policies; give pod labels that select one of them"
		return a
	}
	first := sel.Workloads[0]
	a.class = first.Class
	if e.opts.DataPlane == nil || e.opts.DataPlane.Namespace != f.Namespace {
		if wp := missingWaypoint(f, sel); wp != "" {
			// The controller reads every Gateway a label points to; inputs may lack one, and a
			// waypoint changes which identity ztunnel sees: no answer rather than a wrong one.
			a.unanswerable = "istio.io/use-waypoint puts the waypoint " + wp + " in the destination's path, and that Gateway is not among the inputs (give it)"
			return a
		}
	}
	if a.class == dataplane.Waypoint {
		key := func(w dataplane.Workload) string { return fmt.Sprint(w.Waypoints, w.Targets) }
		for _, w := range sel.Workloads[1:] {
			if key(w) != key(first) {
				a.unanswerable = fmt.Sprintf("the destination's pods %s and %s are bound to different waypoints or Services: give pod labels that select one of them", first.Pod, w.Pod)
				return a
			}
		}
		if len(first.Waypoints) > 1 {
			var names []string
			for _, wp := range first.Waypoints {
				names = append(names, wp.Namespace+"/"+wp.Name)
			}
			a.unanswerable = "the destination is in the path of several waypoints (" + strings.Join(names, ", ") + "): which one a request takes depends on whether it is addressed to the pod or to a Service; not modelled"
			return a
		}
		a.waypoint, a.targets = first.Waypoints[0], first.Targets
		for _, g := range f.Gateways {
			if g.Namespace == a.waypoint.Namespace && g.Name == a.waypoint.Name {
				a.gateway = g
			}
		}
		a.notes = append(a.notes, first.Problems...)
	}
	for _, p := range e.inputPods(e.req.To.Namespace) {
		if v, ok := p.Annotations[annotationBypassInbound]; ok && meshsem.Selects(e.req.To.PodLabels, p.Labels) {
			a.bypass = fmt.Sprintf("pod %s has %s=%q: ztunnel captures its outbound traffic only", p.Name, annotationBypassInbound, v)
			return a
		}
	}
	a.sourceKnown, a.sourceSidecar = e.sourceDataPlane()
	return a
}

// missingWaypoint names a waypoint that istio.io/use-waypoint binds the selected pods (or the
// Services selecting them) to and that is not among the facts' Gateways; "" when there is none.
// Like dataplane's GetUseWaypoint, an object without the label takes its namespace's.
func missingWaypoint(f *dataplane.Facts, sel dataplane.Selection) string {
	check := func(l map[string]string) string {
		src := l
		if _, ok := l[dataplane.LabelUseWaypoint]; !ok {
			src = f.NamespaceLabels
		}
		name := src[dataplane.LabelUseWaypoint]
		if name == "" || name == dataplane.UseWaypointNone {
			return ""
		}
		ns := src[dataplane.LabelUseWaypointNamespace]
		if ns == "" {
			ns = f.Namespace
		}
		for _, g := range f.Gateways {
			if g.Namespace == ns && g.Name == name {
				return ""
			}
		}
		return ns + "/" + name
	}
	labels := map[string]map[string]string{}
	for _, p := range f.Pods {
		labels[p.Name] = p.Labels
	}
	for _, w := range sel.Workloads {
		l := labels[w.Pod]
		if w.Pod == dataplane.NoPods {
			l = nil
		}
		if wp := check(l); wp != "" {
			return wp
		}
		for _, svc := range f.Services {
			if len(svc.Selector) > 0 && l != nil && dataplane.Matches(svc.Selector, l) {
				if wp := check(svc.Labels); wp != "" {
					return wp
				}
			}
		}
	}
	return ""
}

// sourceDataPlane says whether the client's data plane is known and whether it is a sidecar,
// from its pods among the inputs (or Options.DataPlane for its namespace).
func (e *evaluator) sourceDataPlane() (known, sidecar bool) {
	s := e.req.From
	if s.Namespace == "" || s.Unmeshed {
		return true, false
	}
	if s.LabelsUnknown {
		return false, false
	}
	sel := dataplane.Select(e.dataPlaneFacts(s.Namespace), s.PodLabels)
	if sel.Expected {
		return false, false
	}
	classes := sel.Classes()
	if len(classes) != 1 {
		return false, false
	}
	return true, classes[0] == dataplane.Sidecar
}

// dataPlaneFacts are the facts of namespace ns: Options.DataPlane when it is that namespace's,
// else what the inputs hold (Pods, the Namespace's labels, Services, Gateways of any namespace).
func (e *evaluator) dataPlaneFacts(ns string) *dataplane.Facts {
	if f := e.opts.DataPlane; f != nil && f.Namespace == ns {
		return f
	}
	f := &dataplane.Facts{Namespace: ns}
	if l, known := e.objs.namespaceLabels(ns); known {
		f.NamespaceLabels = l
	}
	f.Pods = e.inputPods(ns)
	for _, u := range e.objs.in("", "Service", ns) {
		sel, _, _ := unstructured.NestedStringMap(u.Object, "spec", "selector")
		f.Services = append(f.Services, dataplane.Service{Name: u.GetName(), Labels: u.GetLabels(), Selector: sel})
	}
	for _, u := range e.objs.byKindGroup(groupGatewayAPI, "Gateway") {
		class, _, _ := unstructured.NestedString(u.Object, "spec", "gatewayClassName")
		f.Gateways = append(f.Gateways, dataplane.Gateway{Namespace: u.GetNamespace(), Name: u.GetName(), ClassName: class, Labels: u.GetLabels(), Annotations: u.GetAnnotations()})
	}
	return f
}

// DataPlaneFacts are the data plane facts of namespace ns that objects hold: its Pods, its
// Namespace's labels (when given), its Services, and the Gateways of every namespace. `manager
// explain` renders profiles with them, as the controller renders with the facts it gathers.
func DataPlaneFacts(objs []*unstructured.Unstructured, ns string) *dataplane.Facts {
	e := &evaluator{objs: index(objs)}
	return e.dataPlaneFacts(ns)
}

// inputPods are the Pods among the inputs in namespace ns, as classification reads them.
func (e *evaluator) inputPods(ns string) []dataplane.Pod {
	var out []dataplane.Pod
	for _, u := range e.objs.in("", "Pod", ns) {
		if u.GetDeletionTimestamp() != nil {
			continue
		}
		out = append(out, dataplane.Pod{Name: u.GetName(), Labels: u.GetLabels(), Annotations: u.GetAnnotations()})
	}
	return out
}

// ambientWirePort is the port the network sees for an ambient destination: meshed clients reach
// it over HBONE (TCP 15008), through its waypoint or not (istio.io docs/ambient/usage/
// networkpolicy; a sidecar client is assumed to speak HBONE to an ambient destination too).
func (e *evaluator) ambientWirePort() (int32, bool) {
	a := e.amb
	if a == nil || a.bypass != "" || a.unanswerable != "" || !e.sourceMeshed() {
		return 0, false
	}
	return hboneMTLSPort, true
}

// ambientPeers are the peers the NetworkPolicy layers see: through a waypoint, the client talks
// to the waypoint's pods and the destination hears from them.
func (e *evaluator) ambientPeers(src, dst endpoint) (egressPeer, ingressPeer endpoint) {
	if !e.throughWaypoint() || e.amb.unanswerable != "" || e.amb.bypass != "" {
		return dst, src
	}
	wp := e.waypointEndpoint()
	return wp, wp
}

// ambientNetworkNotes say what the NetworkPolicy layers saw of an ambient connection.
func (e *evaluator) ambientNetworkNotes(layers []LayerResult) []LayerResult {
	if _, ok := e.ambientWirePort(); !ok {
		return layers
	}
	note := fmt.Sprintf("ambient: the connection is HBONE, TCP %d, not port %d (a sidecar client is assumed to speak HBONE to an ambient pod too)", hboneMTLSPort, e.req.To.Port)
	if e.throughWaypoint() {
		wp := e.amb.waypoint
		note = fmt.Sprintf("ambient: the connection goes through the waypoint %s/%s as HBONE, TCP %d: the client sends to the waypoint's pods and the destination hears from them (the waypoint's own NetworkPolicies are not evaluated)", wp.Namespace, wp.Name, hboneMTLSPort)
	}
	for i := range layers {
		if layers[i].Layer == LayerEgress || layers[i].Layer == LayerIngress {
			layers[i].Notes = append(layers[i].Notes, note)
		}
	}
	return layers
}

// waypointEndpoint is a pod of the waypoint: its labels from the facts or inputs, else only the
// gateway-name label Istio's deployment controller sets (other labels then unknown).
func (e *evaluator) waypointEndpoint() endpoint {
	wp := e.amb.waypoint
	ep := endpoint{pod: true, namespace: wp.Namespace, labels: map[string]string{dataplane.LabelGatewayName: wp.Name}, labelsUnknown: true}
	pods := e.inputPods(wp.Namespace)
	if f := e.amb.facts; f.Namespace == wp.Namespace {
		pods = append(f.Pods, pods...)
	}
	for _, p := range pods {
		if p.Labels[dataplane.LabelGatewayName] == wp.Name {
			ep.labels, ep.labelsUnknown = p.Labels, false
			break
		}
	}
	return ep
}

// ambientLayers are the mesh layers of an ambient destination, each named after its proxy.
func (e *evaluator) ambientLayers() []LayerResult {
	a := e.amb
	if a.unanswerable != "" {
		return []LayerResult{{Layer: LayerAuthorization, Decision: Unknown, Reason: a.unanswerable}}
	}
	if a.bypass != "" {
		return []LayerResult{{Layer: LayerAuthorization, Decision: NotApplicable, Reason: a.bypass + ": mesh policies are not enforced on inbound traffic (hedged: Istio 1.24 change notes)"}}
	}
	var st istioState
	mtls := e.istioMTLS(&st)
	mtls.Layer = LayerMTLSZtunnel
	mtls.Notes = without(mtls.Notes, autoMTLSNote)
	out := []LayerResult{mtls}

	if a.class == dataplane.Ambient {
		out = append(out, e.ztunnelAuthn(), e.ztunnelAuthz(&st))
		return out
	}
	wpName := a.waypoint.Namespace + "/" + a.waypoint.Name
	switch {
	case !e.sourceMeshed():
		why := "the client sends plaintext: it reaches the destination's ztunnel directly, not the waypoint " + wpName + " (hedged)"
		out = append(out,
			LayerResult{Layer: LayerAuthenticationWaypoint, Decision: NotApplicable, Reason: why},
			LayerResult{Layer: LayerAuthorizationWaypoint, Decision: NotApplicable, Reason: why})
		out = append(out, e.ztunnelAuthz(&st))
		return out
	case a.sourceSidecar:
		why := "the client runs a sidecar, and sidecars do not go through waypoints (istio/istio PR #54483): the waypoint " + wpName + " is skipped"
		out = append(out,
			LayerResult{Layer: LayerAuthenticationWaypoint, Decision: NotApplicable, Reason: why},
			LayerResult{Layer: LayerAuthorizationWaypoint, Decision: NotApplicable, Reason: why})
		out = append(out, e.ztunnelAuthz(&st))
		return out
	}
	out = append(out, e.waypointLayers(st)...)
	if !a.sourceKnown {
		out[len(out)-1].Notes = append(out[len(out)-1].Notes, "assumes the client is captured by ztunnel and goes through the waypoint "+wpName+"; a client with a sidecar skips waypoints (give the client's Pods to check)")
	}
	out[len(out)-1].Notes = append(out[len(out)-1].Notes, "assumes the request is addressed to the Service (a service waypoint does not see traffic addressed to a pod IP)")

	// From the waypoint on, ztunnel sees the waypoint's identity (l4-policy docs).
	zst := istioState{mtls: true, principalKnown: true,
		principal: fmt.Sprintf("%s/ns/%s/sa/%s", e.opts.TrustDomain, a.waypoint.Namespace, a.waypoint.ServiceAccount)}
	saved := e.req.From
	e.req.From = Source{Namespace: a.waypoint.Namespace, ServiceAccount: a.waypoint.ServiceAccount}
	z := e.ztunnelAuthz(&zst)
	e.req.From = saved
	z.Notes = append(z.Notes, fmt.Sprintf("the connection comes from the waypoint %s: ztunnel sees its identity, service account %s/%s", wpName, a.waypoint.Namespace, a.waypoint.ServiceAccount))
	return append(out, z)
}

// waypointLayers evaluate the policies bound to the waypoint with targetRefs, with the client's
// identity. With several Services in front of the destination, each has its own policies: the
// answer is the same through each, or Unknown.
func (e *evaluator) waypointLayers(st istioState) []LayerResult {
	a := e.amb
	var groups [][]dataplane.Target
	var names []string
	var gw []dataplane.Target
	for _, t := range a.targets {
		if t.Kind != "Service" {
			gw = append(gw, t)
		}
	}
	for _, t := range a.targets {
		if t.Kind == "Service" {
			groups = append(groups, append([]dataplane.Target{t}, gw...))
			names = append(names, "Service "+t.Name)
		}
	}
	if len(groups) == 0 {
		groups, names = [][]dataplane.Target{gw}, []string{"the waypoint"}
	}
	e.stage = stageWaypoint
	defer func() { e.stage, e.stageTargets = stageSidecar, nil }()
	var answers [][]LayerResult
	for _, g := range groups {
		e.stageTargets = g
		s := st
		authn := e.istioRequestAuthn(&s)
		authn.Layer = LayerAuthenticationWaypoint
		authz := e.istioAuthz(&s)
		authz.Layer = LayerAuthorizationWaypoint
		answers = append(answers, []LayerResult{authn, authz})
	}
	out := answers[0]
	for i := 1; i < len(answers); i++ {
		for l := range out {
			if answers[i][l].Decision != out[l].Decision {
				var parts []string
				for j := range answers {
					parts = append(parts, fmt.Sprintf("%s: %s (%s)", names[j], answers[j][l].Decision, answers[j][l].Reason))
				}
				out[l] = LayerResult{Layer: out[l].Layer, Decision: Unknown,
					Reason: "the answer depends on the Service the request is addressed to: " + strings.Join(parts, "; ")}
			}
		}
	}
	if len(groups) > 1 {
		out[1].Notes = append(out[1].Notes, "the same through "+strings.Join(names, ", ")+" where the decisions agree")
	}
	return out
}

// ztunnelAuthn is the request authentication layer at ztunnel: none.
func (e *evaluator) ztunnelAuthn() LayerResult {
	res := LayerResult{Layer: LayerAuthenticationZtunnel, Decision: NotApplicable,
		Reason: "ztunnel never validates JWTs: only a waypoint does, with a RequestAuthentication bound by targetRefs (no request principal here)"}
	for _, u := range e.istioCandidates("RequestAuthentication") {
		ra, err := meshapi.RequestAuthentication(u)
		if err != nil || ra.GetTargetRef() != nil || len(ra.GetTargetRefs()) > 0 {
			continue
		}
		if ra.GetSelector() == nil || meshsem.Selects(ra.GetSelector().GetMatchLabels(), e.req.To.PodLabels) {
			res.Notes = append(res.Notes, fmt.Sprintf("%s applies by selector or namespace: it does nothing for an ambient pod (Kiali KIA1110, istio/istio#45502)", refOf(u)))
		}
	}
	return res
}

// ztunnelAuthz evaluates the AuthorizationPolicies ztunnel enforces for the destination. Dry-run
// policies are enforced by Istio 1.24.0-1.25.1 (no dry-run code for ambient) and dropped by
// 1.25.2-1.28 (PR #55414) and by 1.29+ unless istiod enables AMBIENT_ENABLE_DRY_RUN_AUTHORIZATION_POLICY
// (research §1.7): both are evaluated, and a difference is Unknown.
func (e *evaluator) ztunnelAuthz(st *istioState) LayerResult {
	dropped := e.ztunnelAuthzWith(st, false)
	if !e.hasZtunnelDryRun() {
		return dropped
	}
	enforced := e.ztunnelAuthzWith(st, true)
	if enforced.Decision == dropped.Decision {
		dropped.Notes = append(dropped.Notes, "dry-run policies apply: the answer is the same whether ztunnel enforces them (Istio 1.24.0-1.25.1) or drops them (1.25.2+)")
		return dropped
	}
	return LayerResult{Layer: dropped.Layer, Decision: Unknown, Deciding: append(enforced.Deciding, dropped.Deciding...),
		Reason: fmt.Sprintf("the answer depends on the Istio version: ztunnel enforces dry-run policies on Istio 1.24.0-1.25.1 (%s: %s) and drops them on 1.25.2+ (%s: %s)",
			enforced.Decision, enforced.Reason, dropped.Decision, dropped.Reason),
		Notes: dedupe(append(enforced.Notes, dropped.Notes...))}
}

func (e *evaluator) hasZtunnelDryRun() bool {
	for _, u := range e.istioCandidates("AuthorizationPolicy") {
		if dry, _ := strconv.ParseBool(u.GetAnnotations()[annotationDryRun]); dry {
			return true
		}
	}
	return false
}

// ztunnelAuthzWith evaluates the policies bound to ztunnel: those without targetRefs ("TargetRef
// is not intended for ztunnel"), ALLOW and DENY only (CUSTOM and AUDIT are refused with
// ZtunnelAccepted=False, UnsupportedValue), in Istio's order: DENY, then ALLOW.
func (e *evaluator) ztunnelAuthzWith(st *istioState, dryRunEnforced bool) (res LayerResult) {
	res = LayerResult{Layer: LayerAuthorizationZtunnel}
	var denies, allows []pol
	for _, u := range e.istioCandidates("AuthorizationPolicy") {
		ap, err := meshapi.AuthorizationPolicy(u)
		if err != nil {
			r := notUnderstood(res, u, err)
			r.Layer = res.Layer
			return r
		}
		if ap.GetTargetRef() != nil || len(ap.GetTargetRefs()) > 0 {
			if e.amb.class == dataplane.Ambient {
				res.Notes = append(res.Notes, fmt.Sprintf("%s has targetRefs: only a waypoint enforces it, and none is in the destination's path", refOf(u)))
			}
			continue
		}
		if ap.GetSelector() != nil && !meshsem.Selects(ap.GetSelector().GetMatchLabels(), e.req.To.PodLabels) {
			continue
		}
		if dry, _ := strconv.ParseBool(u.GetAnnotations()[annotationDryRun]); dry && !dryRunEnforced {
			continue
		}
		switch ap.GetAction() {
		case securityv1beta1.AuthorizationPolicy_ALLOW:
			allows = append(allows, pol{u, ap})
		case securityv1beta1.AuthorizationPolicy_DENY:
			denies = append(denies, pol{u, ap})
		default:
			res.Notes = append(res.Notes, fmt.Sprintf("%s: ztunnel does not support the %s action, the policy is ignored (ZtunnelAccepted=False)", refOf(u), ap.GetAction()))
		}
	}
	for _, ps := range [][]pol{denies, allows} {
		sort.Slice(ps, func(i, j int) bool { return refOf(ps[i].u).String() < refOf(ps[j].u).String() })
	}
	matches := func(ps []pol, allow bool) (hit, maybe []Ref, why []string) {
		return matchRules(ps, func(r *securityv1beta1.Rule, ns string) (tri, []string) { return e.ztunnelRuleMatch(r, ns, allow, st) })
	}
	for _, p := range append(append([]pol{}, denies...), allows...) {
		for i, r := range p.p.GetRules() {
			if ztunnelL7(r) {
				what := "the rule never matches at ztunnel (an ALLOW rule with HTTP fields is dropped)"
				if p.p.GetAction() == securityv1beta1.AuthorizationPolicy_DENY {
					what = "ztunnel matches its L4 fields only; a part left empty matches nothing"
				}
				res.Notes = append(res.Notes, fmt.Sprintf("%s has HTTP fields: %s", ruleRef(p.u, i), what))
			}
		}
	}
	hit, maybe, why := matches(denies, false)
	switch {
	case len(hit) > 0:
		res.Decision, res.Deciding, res.Reason = Denied, hit, "a DENY policy matches at ztunnel"
		return res
	case len(maybe) > 0:
		res.Decision, res.Deciding, res.Reason = Unknown, maybe, "a DENY policy may match at ztunnel: "+strings.Join(why, "; ")
		return res
	}
	if len(allows) == 0 {
		res.Decision, res.Reason = Allowed, "no ALLOW policy binds the workload at ztunnel and no DENY policy matches: allowed by default"
		return res
	}
	hit, maybe, why = matches(allows, true)
	switch {
	case len(hit) > 0:
		res.Decision, res.Deciding, res.Reason = Allowed, hit, "an ALLOW policy matches at ztunnel"
	case len(maybe) > 0:
		res.Decision, res.Deciding, res.Reason = Unknown, maybe, "ALLOW policies bind the workload at ztunnel and these rules may match: "+strings.Join(why, "; ")
	default:
		res.Decision = Denied
		for _, p := range allows {
			res.Deciding = append(res.Deciding, refOf(p.u))
		}
		res.Reason = fmt.Sprintf("%d ALLOW policies bind the workload at ztunnel and none matches", len(allows))
	}
	return res
}

// ztunnelL4When are the when keys ztunnel evaluates (authorization.go l4WhenAttributes).
var ztunnelL4When = map[string]bool{
	"source.ip": true, "source.namespace": true, "source.principal": true, "destination.ip": true, "destination.port": true,
}

// ztunnelL7 says whether a rule has fields ztunnel treats as HTTP: hosts, methods, paths,
// remoteIpBlocks, requestPrincipals, trustDomains (and their not* forms), or a when key that is not
// L4 (authorization.go httpOperations, httpSources, handleRule).
func ztunnelL7(r *securityv1beta1.Rule) bool {
	for _, f := range r.GetFrom() {
		s := f.GetSource()
		if len(s.GetRemoteIpBlocks())+len(s.GetNotRemoteIpBlocks())+len(s.GetRequestPrincipals())+len(s.GetNotRequestPrincipals())+
			len(s.GetTrustDomains())+len(s.GetNotTrustDomains()) > 0 {
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
		if !ztunnelL4When[c.GetKey()] {
			return true
		}
	}
	return false
}

// ztunnelRuleMatch matches a rule as ztunnel receives it (authorization.go handleRule): an ALLOW
// rule with HTTP fields is dropped (never matches); otherwise the rule is clauses that AND — its
// to list, its from list, each when condition — each an OR of matches built from the L4 fields
// only. A match with no L4 field is empty, and ztunnel skips empty matches (match-none, not
// match-all: isMatchEmpty, hasEffectiveRules), so a DENY whose list holds only HTTP fields never
// matches (istio/istio#61126). A rule without from, to and when matches everything.
func (e *evaluator) ztunnelRuleMatch(r *securityv1beta1.Rule, policyNS string, allow bool, st *istioState) (tri, []string) {
	if allow && ztunnelL7(r) {
		return no, nil
	}
	var why []string
	m := yes
	if len(r.GetTo()) > 0 {
		c := no
		for _, t := range r.GetTo() {
			o := t.GetOperation()
			if len(o.GetPorts())+len(o.GetNotPorts()) == 0 {
				continue // empty match
			}
			port := value{s: strconv.Itoa(int(e.req.To.Port)), present: true, known: true}
			x, w := strField(port, o.GetPorts(), o.GetNotPorts(), "the port", func(p, v string) bool { return p == v })
			c = c.or(x)
			why = append(why, w...)
		}
		m = m.and(c)
	}
	if len(r.GetFrom()) > 0 {
		c := no
		for _, f := range r.GetFrom() {
			s := ztunnelSource(f.GetSource())
			if s == nil {
				continue // empty match
			}
			x, w := e.istioSourceMatch(s, policyNS, st, false)
			c = c.or(x)
			why = append(why, w...)
		}
		m = m.and(c)
	}
	for _, cond := range r.GetWhen() {
		if !ztunnelL4When[cond.GetKey()] || len(cond.GetValues())+len(cond.GetNotValues()) == 0 {
			m = m.and(no) // an empty match: the clause matches nothing
			continue
		}
		x, w := e.istioConditionMatch(cond, st, false)
		m = m.and(x)
		why = append(why, w...)
	}
	return m, why
}

// ztunnelSource keeps the L4 fields of a source; nil when none is set (an empty match).
func ztunnelSource(s *securityv1beta1.Source) *securityv1beta1.Source {
	if s == nil {
		return nil
	}
	out := &securityv1beta1.Source{
		Principals: s.GetPrincipals(), NotPrincipals: s.GetNotPrincipals(),
		Namespaces: s.GetNamespaces(), NotNamespaces: s.GetNotNamespaces(),
		ServiceAccounts: s.GetServiceAccounts(), NotServiceAccounts: s.GetNotServiceAccounts(),
		IpBlocks: s.GetIpBlocks(), NotIpBlocks: s.GetNotIpBlocks(),
	}
	if proto.Equal(out, &securityv1beta1.Source{}) {
		return nil
	}
	return out
}

// istioBinds says whether a policy among the candidates binds the destination at the proxy being
// evaluated, and a note when it is left out. A sidecar takes policies bound by selector (or
// namespace-wide); a waypoint takes those bound with targetRefs to the Service the request is
// addressed to, to the waypoint's Gateway, or to its GatewayClass from the root namespace
// (pkg/config/validation allowedTargetRefs; pilot/pkg/serviceregistry/ambient/policies.go).
func (e *evaluator) istioBinds(u *unstructured.Unstructured, sel *typev1beta1.WorkloadSelector, one *typev1beta1.PolicyTargetReference, refs []*typev1beta1.PolicyTargetReference) (bool, string) {
	if one != nil {
		refs = append([]*typev1beta1.PolicyTargetReference{one}, refs...)
	}
	if e.stage != stageWaypoint {
		if len(refs) > 0 {
			return false, fmt.Sprintf("%s has targetRefs (gateways, waypoints): not applied to sidecars, not modelled", refOf(u))
		}
		return sel == nil || meshsem.Selects(sel.GetMatchLabels(), e.req.To.PodLabels), ""
	}
	wp := e.amb.waypoint
	for _, r := range refs {
		group := r.GetGroup()
		switch {
		case r.GetKind() == "Service" && (group == "" || group == "core"):
			for _, t := range e.stageTargets {
				if t.Kind == "Service" && t.Name == r.GetName() && u.GetNamespace() == e.req.To.Namespace {
					return true, ""
				}
			}
		case r.GetKind() == "Gateway" && group == groupGatewayAPI:
			if r.GetName() == wp.Name && u.GetNamespace() == wp.Namespace {
				return true, ""
			}
		case r.GetKind() == "GatewayClass" && group == groupGatewayAPI:
			if u.GetNamespace() == e.opts.IstioRootNamespace && e.amb.gateway.ClassName != "" && r.GetName() == e.amb.gateway.ClassName {
				return true, ""
			}
		}
	}
	return false, ""
}

// waypointNamespace is the namespace of the waypoint in the path when the policies bound to it
// live outside the destination's and the root namespace ("" otherwise).
func (e *evaluator) waypointNamespace() string {
	if e.stage != stageWaypoint {
		return ""
	}
	ns := e.amb.waypoint.Namespace
	if ns == e.req.To.Namespace || ns == e.opts.IstioRootNamespace {
		return ""
	}
	return ns
}

// autoMTLSNote is the sidecar mTLS layer's assumption, which does not hold in ambient: HBONE is
// always mutual TLS.
const autoMTLSNote = "assumes auto mTLS (no DestinationRule overrides the client's TLS mode)"

func without(in []string, s string) []string {
	var out []string
	for _, x := range in {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}
