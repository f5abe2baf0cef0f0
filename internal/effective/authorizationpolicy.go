package effective

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	securityv1beta1 "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/meshapi"
	"github.com/meshguard/meshguard/internal/meshsem"
)

// profileAuthorization collects the rules of the profile's rendered ALLOW AuthorizationPolicies,
// keyed by where they apply and what they match, so that a foreign copy of one is not reported.
func profileAuthorization(objs []*unstructured.Unstructured) map[string]bool {
	out := map[string]bool{}
	for _, u := range objs {
		if u.GetKind() != kindAuthorizationPolicy {
			continue
		}
		spec, err := meshapi.AuthorizationPolicy(u)
		if err != nil || spec.GetAction() != securityv1beta1.AuthorizationPolicy_ALLOW {
			continue
		}
		rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
		prefix := targetsKey(policyTargets(spec.GetTargetRef(), spec.GetTargetRefs())) // waypoint.go; "" for a selector policy
		for _, r := range rules {
			out[prefix+ruleKey(selectorLabels(spec.GetSelector()), r)] = true
		}
	}
	return out
}

// authorizationPolicy judges an AuthorizationPolicy of the profile's namespace or of the root
// namespace (which applies to every namespace).
//
// Istio evaluates CUSTOM, then DENY, then ALLOW policies. A CUSTOM policy can only reject (an
// external authorizer's "allow" still goes through DENY and ALLOW), DENY only rejects and AUDIT
// decides nothing, so only an ALLOW policy can admit more, and only with rules: an ALLOW policy
// without rules matches nothing.
//
// With authorization.defaultDeny, every request no profile rule admits is denied, so any rule of
// a foreign ALLOW policy admits more. Without it, an ALLOW policy makes Istio deny by default
// whatever it does not admit on the workloads it selects; it admits more only on workloads where
// a profile Allow rule already restricts who may call (the two policies' rules are ORed). It
// never bypasses requestAuthentication.requireToken, which is a DENY policy.
func (f *finder) authorizationPolicy(u *unstructured.Unstructured) []v1alpha1.ExternalPolicy {
	az := f.p.Spec.Authorization
	if az == nil {
		return nil
	}
	spec, err := meshapi.AuthorizationPolicy(u)
	if err != nil {
		return []v1alpha1.ExternalPolicy{f.notUnderstood(u, "authorization", err)}
	}
	if spec.GetAction() != securityv1beta1.AuthorizationPolicy_ALLOW || len(spec.GetRules()) == 0 {
		return nil
	}
	raw, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
	targeted := spec.GetTargetRef() != nil || len(spec.GetTargetRefs()) > 0
	sel := selectorLabels(spec.GetSelector())
	var open []*securityv1beta1.Rule
	for i, r := range spec.GetRules() {
		if i < len(raw) && f.authz[targetsKey(policyTargets(spec.GetTargetRef(), spec.GetTargetRefs()))+ruleKey(sel, raw[i])] {
			// The profile declares the same rule for the same workloads (or waypoint targets).
			continue
		}
		open = append(open, r)
	}
	if len(open) == 0 {
		return nil
	}
	allows := fmt.Sprintf("allows %s on %s", rulesText(open), f.workloadsText(u, spec))
	if az.DefaultDeny {
		return []v1alpha1.ExternalPolicy{f.report(u, "authorization.defaultDeny: "+allows)}
	}
	if targeted {
		return f.targetedAllow(u, spec, allows) // waypoint.go
	}
	var widened []string
	for _, r := range az.Rules {
		if r.Action != "" && r.Action != v1alpha1.ActionAllow {
			continue
		}
		var rs map[string]string
		if r.Selector != nil {
			rs = r.Selector.MatchLabels
		}
		if overlaps(sel, rs) {
			widened = append(widened, r.Name)
		}
	}
	if len(widened) == 0 {
		return nil
	}
	sort.Strings(widened)
	return []v1alpha1.ExternalPolicy{f.report(u, "authorization.rules["+strings.Join(widened, ",")+"]: "+allows)}
}

// selectorLabels is an Istio WorkloadSelector's labels; nil for no selector or an empty one,
// which Istio both reads as "every workload".
func selectorLabels(s *typev1beta1.WorkloadSelector) map[string]string {
	if len(s.GetMatchLabels()) == 0 {
		return nil
	}
	return s.GetMatchLabels()
}

// overlaps says whether two workload selectors surely select some workloads in common: when
// either selects every workload, or one's labels include the other's.
func overlaps(a, b map[string]string) bool {
	return len(a) == 0 || len(b) == 0 || meshsem.Selects(b, a) || meshsem.Selects(a, b)
}

// workloadsText says where a policy applies.
func (f *finder) workloadsText(u *unstructured.Unstructured, spec *securityv1beta1.AuthorizationPolicy) string {
	everywhere := f.namespaceOf(u) == f.root && f.root != f.p.Namespace
	refs := spec.GetTargetRefs()
	if spec.GetTargetRef() != nil {
		refs = append([]*typev1beta1.PolicyTargetReference{spec.GetTargetRef()}, refs...)
	}
	if len(refs) > 0 {
		names := make([]string, 0, len(refs))
		for _, r := range refs {
			names = append(names, r.GetKind()+" "+r.GetName())
		}
		sort.Strings(names)
		return strings.Join(names, ", ")
	}
	w := "all workloads"
	if sel := selectorLabels(spec.GetSelector()); sel != nil {
		w = "pods " + labelsText(sel)
	}
	if everywhere {
		w += " in every namespace"
	}
	return w
}

// maxRulesText is how many rules a message describes; the rest are counted.
const maxRulesText = 3

// rulesText summarises rules: "any source" for a rule that matches every request, else who sends
// and what they may ask for.
func rulesText(rules []*securityv1beta1.Rule) string {
	parts := make([]string, 0, len(rules))
	for _, r := range rules {
		parts = append(parts, ruleText(r))
	}
	return strings.Join(capRules(parts), "; ")
}

func ruleText(r *securityv1beta1.Rule) string {
	var from []string
	for _, f := range r.GetFrom() {
		s := f.GetSource()
		if s == nil {
			continue
		}
		from = append(from, listsText([]namedList{
			{"principals", s.GetPrincipals()}, {"not principals", s.GetNotPrincipals()},
			{"service accounts", s.GetServiceAccounts()}, {"not service accounts", s.GetNotServiceAccounts()},
			{"namespaces", s.GetNamespaces()}, {"not namespaces", s.GetNotNamespaces()},
			{"trust domains", s.GetTrustDomains()}, {"not trust domains", s.GetNotTrustDomains()},
			{"request principals", s.GetRequestPrincipals()}, {"not request principals", s.GetNotRequestPrincipals()},
			{"IP blocks", s.GetIpBlocks()}, {"not IP blocks", s.GetNotIpBlocks()},
			{"remote IP blocks", s.GetRemoteIpBlocks()}, {"not remote IP blocks", s.GetNotRemoteIpBlocks()},
		}, "any source"))
	}
	text := "any source"
	if len(from) > 0 {
		text = strings.Join(from, " or ")
	}
	var to []string
	for _, t := range r.GetTo() {
		o := t.GetOperation()
		if o == nil {
			continue
		}
		if op := listsText([]namedList{
			{"hosts", o.GetHosts()}, {"not hosts", o.GetNotHosts()},
			{"ports", o.GetPorts()}, {"not ports", o.GetNotPorts()},
			{"methods", o.GetMethods()}, {"not methods", o.GetNotMethods()},
			{"paths", o.GetPaths()}, {"not paths", o.GetNotPaths()},
		}, ""); op != "" {
			to = append(to, op)
		}
	}
	if len(to) > 0 {
		text += " to " + strings.Join(to, " or ")
	}
	var when []string
	for _, c := range r.GetWhen() {
		if c.GetKey() != "" {
			when = append(when, c.GetKey())
		}
	}
	if len(when) > 0 {
		text += " when " + strings.Join(when, ", ") + " match"
	}
	return text
}

type namedList struct {
	name   string
	values []string
}

// listsText writes the lists that are set as "name v1, v2" joined by " and " (they AND), or
// empty when none is.
func listsText(lists []namedList, empty string) string {
	var parts []string
	for _, l := range lists {
		if len(l.values) > 0 {
			parts = append(parts, l.name+" "+strings.Join(l.values, ", "))
		}
	}
	if len(parts) == 0 {
		return empty
	}
	return strings.Join(parts, " and ")
}

// ruleKey identifies a rule applied to the selected workloads, independent of the order of its
// lists (they are all ORed sets) and of empty fields.
func ruleKey(sel map[string]string, rule any) string {
	b, err := json.Marshal(canonical(rule))
	if err != nil {
		return ""
	}
	return labelsText(sel) + "|" + string(b)
}

// canonical drops empty values and sorts lists, recursively.
func canonical(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			if c := canonical(x); !isEmpty(c) {
				out[k] = c
			}
		}
		return out
	case []any:
		type item struct {
			key string
			v   any
		}
		items := make([]item, 0, len(t))
		for _, x := range t {
			c := canonical(x)
			b, _ := json.Marshal(c)
			items = append(items, item{string(b), c})
		}
		sort.Slice(items, func(i, j int) bool { return items[i].key < items[j].key })
		out := make([]any, 0, len(items))
		for i, it := range items {
			if i > 0 && it.key == items[i-1].key {
				continue
			}
			out = append(out, it.v)
		}
		return out
	}
	return v
}

func isEmpty(v any) bool {
	switch t := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(t) == 0
	case []any:
		return len(t) == 0
	case string:
		return t == ""
	}
	return false
}
