package effective

import (
	"sort"
	"strings"

	securityv1beta1 "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/dataplane"
	"github.com/meshguard/meshguard/internal/meshapi"
)

// This file judges foreign policies bound with targetRefs, which Istio's waypoints enforce for the
// ambient pods behind them (research ../shared/research/ambient-and-beyond.md §1.3): a policy
// attached to a Service applies to the pods the Service selects when a waypoint serves the
// Service; one attached to the waypoint Gateway applies to every pod bound to that waypoint; one
// attached to the istio-waypoint GatewayClass from the root namespace applies to every waypoint
// (release note 54780, 1.26). Sidecars and ztunnel never apply them (pkg/config/validation
// allowedTargetRefs; pilot/pkg/serviceregistry/ambient/authorization.go "TargetRef is not intended
// for ztunnel"). Which pods a waypoint serves comes from internal/dataplane, on the facts the
// controller gathered (Options.DataPlane).

// policyTargets are a policy's targetRefs, the deprecated single targetRef first.
func policyTargets(one *typev1beta1.PolicyTargetReference, many []*typev1beta1.PolicyTargetReference) []*typev1beta1.PolicyTargetReference {
	if one != nil {
		return append([]*typev1beta1.PolicyTargetReference{one}, many...)
	}
	return many
}

// targetsKey identifies where a targetRefs policy attaches ("" for a selector policy), so that a
// foreign copy of a rule the profile renders for its waypoints is not reported.
func targetsKey(refs []*typev1beta1.PolicyTargetReference) string {
	if len(refs) == 0 {
		return ""
	}
	parts := make([]string, 0, len(refs))
	for _, r := range refs {
		parts = append(parts, r.GetGroup()+"/"+r.GetKind()+"/"+r.GetName())
	}
	sort.Strings(parts)
	return "targetRefs " + strings.Join(parts, ",") + "|"
}

// waypointPods returns the labels of the pods of the profile's namespace that a targetRefs policy
// of namespace ns binds through their waypoint; known is false without data plane facts.
func (f *finder) waypointPods(ns string, refs []*typev1beta1.PolicyTargetReference) (pods []map[string]string, known bool) {
	dp := f.dataPlane
	if dp == nil {
		return nil, false
	}
	classOf := map[string]string{}
	for _, g := range dp.Gateways {
		classOf[g.Namespace+"/"+g.Name] = g.ClassName
	}
	labels := map[string]map[string]string{}
	for _, p := range dp.Pods {
		labels[p.Name] = p.Labels
	}
	for _, w := range dataplane.Select(dp, nil).Workloads {
		if w.Class != dataplane.Waypoint || !binds(w, ns, refs, f.p.Namespace, f.root, classOf) {
			continue
		}
		pods = append(pods, labels[w.Pod])
	}
	return pods, true
}

// binds says whether a targetRefs policy of namespace ns reaches workload w through its waypoint.
func binds(w dataplane.Workload, ns string, refs []*typev1beta1.PolicyTargetReference, profileNS, root string, classOf map[string]string) bool {
	for _, r := range refs {
		group := r.GetGroup()
		switch {
		case r.GetKind() == "Service" && (group == "" || group == "core") && ns == profileNS:
			for _, t := range w.Targets {
				if t.Kind == "Service" && t.Name == r.GetName() {
					return true
				}
			}
		case r.GetKind() == "Gateway" && group == meshapi.GroupGatewayAPI:
			for _, wp := range w.Waypoints {
				if wp.Name == r.GetName() && wp.Namespace == ns {
					return true
				}
			}
		case r.GetKind() == "GatewayClass" && group == meshapi.GroupGatewayAPI && ns == root:
			for _, wp := range w.Waypoints {
				if classOf[wp.Namespace+"/"+wp.Name] == r.GetName() {
					return true
				}
			}
		}
	}
	return false
}

// targetedOverlaps says whether a targetRefs policy binds, through a waypoint, a pod that want
// selects (nil: every pod). Without data plane facts it is assumed to: fail closed.
func (f *finder) targetedOverlaps(u *unstructured.Unstructured, refs []*typev1beta1.PolicyTargetReference, want map[string]string) bool {
	pods, known := f.waypointPods(f.namespaceOf(u), refs)
	if !known {
		return true
	}
	for _, l := range pods {
		if dataplane.Matches(want, l) {
			return true
		}
	}
	return false
}

// targetedAllow judges a foreign ALLOW policy bound with targetRefs when the profile has no
// default-deny: at the waypoint its rules OR with the waypoint copies of the profile's Allow rules
// (render/ambient.go), so it admits more on every pod behind that waypoint a profile Allow rule
// selects, exactly as a selector policy does on the pods it selects. Without data plane facts
// nothing says which pods a waypoint serves, and the policy is not reported (as before ambient
// support).
func (f *finder) targetedAllow(u *unstructured.Unstructured, spec *securityv1beta1.AuthorizationPolicy, allows string) []v1alpha1.ExternalPolicy {
	if f.dataPlane == nil {
		return nil
	}
	pods, _ := f.waypointPods(f.namespaceOf(u), policyTargets(spec.GetTargetRef(), spec.GetTargetRefs()))
	var widened []string
	for _, r := range f.p.Spec.Authorization.Rules {
		if r.Action != "" && r.Action != v1alpha1.ActionAllow {
			continue
		}
		var rs map[string]string
		if r.Selector != nil {
			rs = r.Selector.MatchLabels
		}
		for _, l := range pods {
			if dataplane.Matches(rs, l) {
				widened = append(widened, r.Name)
				break
			}
		}
	}
	if len(widened) == 0 {
		return nil
	}
	sort.Strings(widened)
	return []v1alpha1.ExternalPolicy{f.report(u, "authorization.rules["+strings.Join(widened, ",")+"]: "+allows+" (through the waypoint)")}
}
