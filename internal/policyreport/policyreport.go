package policyreport

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// GroupVersionKind is the PolicyReport kind meshguard writes.
var GroupVersionKind = schema.GroupVersionKind{Group: "wgpolicyk8s.io", Version: "v1alpha2", Kind: "PolicyReport"}

// Source is the source of every result (the report API's field for the tool that produced it).
const Source = "meshguard"

// Category groups meshguard's results in report UIs.
const Category = "Mesh security"

// Rule names: stable, one per class of finding. Alerts, dashboards and Policy Reporter filters
// match on them.
const (
	// RuleApplied: every generated object exists as rendered (PoliciesApplied).
	RuleApplied = "policies-applied"
	// RuleInSync: no generated object was changed or deleted by someone else (InSync, drift).
	RuleInSync = "in-sync"
	// RuleNotWeakened: no object outside meshguard weakens the profile (Effective).
	RuleNotWeakened = "not-weakened"
	// RuleEnforceable: every part of the profile is enforced where its pods run (Istio data planes).
	RuleEnforceable = "enforceable"
	// RuleCertificates: the mesh CA certificates are valid, trusted and not expiring soon.
	RuleCertificates = "certificates"
	// RuleExpectations: every spec.expectations entry gets the answer it wants.
	RuleExpectations = "expectations"
	// RuleAtFloor: the profile asks for at least every cluster floor (no field held at a floor).
	RuleAtFloor = "at-floor"
)

// Result values and severities of the report API.
const (
	Pass  = "pass"
	Fail  = "fail"
	Warn  = "warn"
	Error = "error"

	SeverityCritical = "critical"
	SeverityHigh     = "high"
	SeverityMedium   = "medium"
	SeverityLow      = "low"
	SeverityInfo     = "info"
)

// Name is the report's name for a profile: one report per profile, and one governing profile per
// namespace (the others stall with ProfileConflict and have none).
func Name(profile string) string { return "meshguard-" + profile }

// Build returns the PolicyReport for the profile as unstructured content, or nil when the profile
// should have none: it does not govern its namespace (ProfileConflict), or meshguard has not
// reported on it yet. The object carries meshguard's two labels and a controller ownerReference to
// the profile (the report goes with it).
func Build(p *v1alpha1.MeshSecurityProfile) map[string]any {
	st := &p.Status
	ready := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady)
	if ready == nil {
		return nil
	}
	if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionStalled); c != nil && c.Status == metav1.ConditionTrue && c.Reason == v1alpha1.ReasonProfileConflict {
		return nil
	}
	profileRef := map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(), "kind": "MeshSecurityProfile",
		"namespace": p.Namespace, "name": p.Name, "uid": string(p.UID),
	}
	var results []map[string]any
	add := func(rule, result, severity, msg string, at metav1.Time, extra ...map[string]any) {
		r := map[string]any{
			"policy":    p.Name,
			"rule":      rule,
			"result":    result,
			"source":    Source,
			"category":  Category,
			"message":   trim(msg),
			"scored":    true,
			"resources": append([]any{profileRef}, anys(extra)...),
		}
		if result != Pass {
			r["severity"] = severity
		}
		if !at.IsZero() {
			r["timestamp"] = map[string]any{"seconds": at.Unix(), "nanos": int64(0)}
		}
		results = append(results, r)
	}
	fromCondition := func(rule, condType, severity string, failAs string) {
		c := meta.FindStatusCondition(st.Conditions, condType)
		if c == nil {
			return
		}
		switch c.Status {
		case metav1.ConditionTrue:
			add(rule, Pass, "", c.Message, c.LastTransitionTime)
		case metav1.ConditionFalse:
			add(rule, failAs, severity, c.Reason+": "+c.Message, c.LastTransitionTime)
		default:
			add(rule, Error, severity, c.Reason+": "+c.Message, c.LastTransitionTime)
		}
	}

	// Applied: a conflict, a refused write, a spec that cannot be applied.
	fromCondition(RuleApplied, v1alpha1.ConditionPoliciesApplied, SeverityHigh, Fail)
	// Drift: generated objects changed or deleted by others (Enforce restores them at once, so a
	// failure that stays is a fight or Audit mode).
	fromCondition(RuleInSync, v1alpha1.ConditionInSync, SeverityMedium, Fail)
	// Foreign weakening: the objects that weaken the profile are named as the result's resources.
	if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionEffective); c != nil {
		if c.Status == metav1.ConditionFalse {
			var refs []map[string]any
			for _, e := range st.ExternalPolicies {
				ns, name := p.Namespace, e.Name
				if i := strings.Index(e.Name, "/"); i >= 0 {
					ns, name = e.Name[:i], e.Name[i+1:]
				}
				refs = append(refs, map[string]any{"apiVersion": e.APIVersion, "kind": e.Kind, "namespace": ns, "name": name})
			}
			add(RuleNotWeakened, Fail, SeverityHigh, c.Reason+": "+c.Message, c.LastTransitionTime, refs...)
		} else {
			fromCondition(RuleNotWeakened, v1alpha1.ConditionEffective, SeverityHigh, Fail)
		}
	}
	// Unenforceable parts (Istio): rows enforced by nothing, or Ready's Unenforceable reason
	// (Istio did not bind a generated policy).
	if (p.Spec.GetMesh() == v1alpha1.MeshIstio && st.Enforcement != nil) || ready.Reason == v1alpha1.ReasonUnenforceable {
		var gaps []string
		for _, e := range st.Enforcement {
			if e.EnforcedBy == v1alpha1.EnforcedByNone {
				gaps = append(gaps, fmt.Sprintf("%s (%d pods): %s", e.Rule, e.PodCount, e.Reason))
			}
		}
		switch {
		case ready.Reason == v1alpha1.ReasonUnenforceable:
			add(RuleEnforceable, Fail, SeverityHigh, ready.Message, ready.LastTransitionTime)
		case len(gaps) > 0:
			add(RuleEnforceable, Fail, SeverityHigh, "enforced by nothing: "+strings.Join(gaps, "; "), ready.LastTransitionTime)
		default:
			add(RuleEnforceable, Pass, "", "every part of the profile is enforced where its pods run", ready.LastTransitionTime)
		}
	}
	// Certificates: expired or untrusted fail (critical), expiring soon warns.
	if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionCertificatesHealthy); c != nil {
		switch {
		case c.Status == metav1.ConditionTrue:
			add(RuleCertificates, Pass, "", c.Message, c.LastTransitionTime)
		case c.Reason == v1alpha1.ReasonCertExpiringSoon:
			add(RuleCertificates, Warn, SeverityMedium, c.Reason+": "+c.Message, c.LastTransitionTime)
		case c.Reason == v1alpha1.ReasonNotChecked || c.Status == metav1.ConditionUnknown:
			add(RuleCertificates, Error, SeverityMedium, c.Reason+": "+c.Message, c.LastTransitionTime)
		default:
			add(RuleCertificates, Fail, SeverityCritical, c.Reason+": "+c.Message, c.LastTransitionTime)
		}
	}
	// Expectations: only when the profile states some.
	fromCondition(RuleExpectations, v1alpha1.ConditionExpectationsMet, SeverityHigh, Fail)
	// Fields held at a cluster floor: applied as the floor says, stricter than written; the team's
	// profile asks for less than the platform allows, which is worth a warning, not a failure.
	if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionBaseline); c != nil {
		if len(st.HeldAtFloor) > 0 || c.Reason == v1alpha1.ReasonBelowBaseline {
			held := make([]string, 0, len(st.HeldAtFloor))
			for _, h := range st.HeldAtFloor {
				held = append(held, fmt.Sprintf("%s asks %s, held at %s by %s", h.Field, h.Asked, h.HeldAt, h.ClusterProfile))
			}
			msg := c.Message
			if len(held) > 0 {
				msg = "held at a cluster floor: " + strings.Join(held, "; ")
			}
			add(RuleAtFloor, Warn, SeverityLow, msg, c.LastTransitionTime)
		} else if c.Status == metav1.ConditionTrue {
			add(RuleAtFloor, Pass, "", c.Message, c.LastTransitionTime)
		}
	}

	sort.SliceStable(results, func(i, j int) bool { return results[i]["rule"].(string) < results[j]["rule"].(string) })
	summary := map[string]any{"pass": int64(0), "fail": int64(0), "warn": int64(0), "error": int64(0), "skip": int64(0)}
	items := make([]any, 0, len(results))
	for _, r := range results {
		summary[r["result"].(string)] = summary[r["result"].(string)].(int64) + 1
		items = append(items, r)
	}
	yes := true
	return map[string]any{
		"apiVersion": GroupVersionKind.GroupVersion().String(),
		"kind":       GroupVersionKind.Kind,
		"metadata": map[string]any{
			"name":      Name(p.Name),
			"namespace": p.Namespace,
			"labels": map[string]any{
				v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue,
				v1alpha1.LabelProfile:   p.Name,
			},
			"ownerReferences": []any{map[string]any{
				"apiVersion": v1alpha1.GroupVersion.String(), "kind": "MeshSecurityProfile",
				"name": p.Name, "uid": string(p.UID), "controller": yes, "blockOwnerDeletion": yes,
			}},
		},
		"results": items,
		"summary": summary,
	}
}

func anys(ms []map[string]any) []any {
	out := make([]any, 0, len(ms))
	for _, m := range ms {
		out = append(out, m)
	}
	return out
}

// trim keeps a result's message readable in report UIs.
func trim(s string) string {
	const max = 1024
	if len(s) > max {
		return s[:max-3] + "..."
	}
	return s
}
