package effective

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// authorizationPolicySpec is the part of security.istio.io AuthorizationPolicy that matters here.
type authorizationPolicySpec struct {
	Selector   *istioSelector `json:"selector,omitempty"`
	TargetRef  *targetRef     `json:"targetRef,omitempty"`
	TargetRefs []targetRef    `json:"targetRefs,omitempty"`
	Action     string         `json:"action,omitempty"`
	Rules      []authzRule    `json:"rules,omitempty"`
}

type targetRef struct {
	Kind string `json:"kind,omitempty"`
	Name string `json:"name,omitempty"`
}

type authzRule struct {
	From []struct {
		Source *authzSource `json:"source,omitempty"`
	} `json:"from,omitempty"`
	To []struct {
		Operation *authzOperation `json:"operation,omitempty"`
	} `json:"to,omitempty"`
	When []struct {
		Key string `json:"key,omitempty"`
	} `json:"when,omitempty"`
}

type authzSource struct {
	Principals           []string `json:"principals,omitempty"`
	NotPrincipals        []string `json:"notPrincipals,omitempty"`
	ServiceAccounts      []string `json:"serviceAccounts,omitempty"`
	NotServiceAccounts   []string `json:"notServiceAccounts,omitempty"`
	Namespaces           []string `json:"namespaces,omitempty"`
	NotNamespaces        []string `json:"notNamespaces,omitempty"`
	TrustDomains         []string `json:"trustDomains,omitempty"`
	NotTrustDomains      []string `json:"notTrustDomains,omitempty"`
	RequestPrincipals    []string `json:"requestPrincipals,omitempty"`
	NotRequestPrincipals []string `json:"notRequestPrincipals,omitempty"`
	IPBlocks             []string `json:"ipBlocks,omitempty"`
	NotIPBlocks          []string `json:"notIpBlocks,omitempty"`
	RemoteIPBlocks       []string `json:"remoteIpBlocks,omitempty"`
	NotRemoteIPBlocks    []string `json:"notRemoteIpBlocks,omitempty"`
}

type authzOperation struct {
	Hosts      []string `json:"hosts,omitempty"`
	NotHosts   []string `json:"notHosts,omitempty"`
	Ports      []string `json:"ports,omitempty"`
	NotPorts   []string `json:"notPorts,omitempty"`
	Methods    []string `json:"methods,omitempty"`
	NotMethods []string `json:"notMethods,omitempty"`
	Paths      []string `json:"paths,omitempty"`
	NotPaths   []string `json:"notPaths,omitempty"`
}

// profileAuthorization collects the rules of the profile's rendered ALLOW AuthorizationPolicies,
// keyed by where they apply and what they match, so that a foreign copy of one is not reported.
func profileAuthorization(objs []*unstructured.Unstructured) map[string]bool {
	out := map[string]bool{}
	for _, u := range objs {
		if u.GetKind() != kindAuthorizationPolicy {
			continue
		}
		var spec authorizationPolicySpec
		if !decodeSpec(u, &spec) || !isAllow(spec.Action) {
			continue
		}
		rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
		for _, r := range rules {
			out[ruleKey(spec.Selector.labels(), r)] = true
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
	var spec authorizationPolicySpec
	if !decodeSpec(u, &spec) || !isAllow(spec.Action) || len(spec.Rules) == 0 {
		return nil
	}
	raw, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
	targeted := spec.TargetRef != nil || len(spec.TargetRefs) > 0
	var open []authzRule
	for i, r := range spec.Rules {
		if !targeted && i < len(raw) && f.authz[ruleKey(spec.Selector.labels(), raw[i])] {
			// The profile declares the same rule for the same workloads.
			continue
		}
		open = append(open, r)
	}
	if len(open) == 0 {
		return nil
	}
	allows := fmt.Sprintf("allows %s on %s", rulesText(open), f.workloadsText(u, &spec))
	if az.DefaultDeny {
		return []v1alpha1.ExternalPolicy{f.report(u, "authorization.defaultDeny: "+allows)}
	}
	if targeted {
		return nil
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
		if overlaps(spec.Selector.labels(), rs) {
			widened = append(widened, r.Name)
		}
	}
	if len(widened) == 0 {
		return nil
	}
	sort.Strings(widened)
	return []v1alpha1.ExternalPolicy{f.report(u, "authorization.rules["+strings.Join(widened, ",")+"]: "+allows)}
}

// isAllow says whether an action is ALLOW, the default.
func isAllow(action string) bool {
	return action == "" || strings.EqualFold(action, "ALLOW")
}

// overlaps says whether two workload selectors surely select some workloads in common: when
// either selects every workload, or one's labels include the other's.
func overlaps(a, b map[string]string) bool {
	return len(a) == 0 || len(b) == 0 || includes(a, b) || includes(b, a)
}

// workloadsText says where a policy applies.
func (f *finder) workloadsText(u *unstructured.Unstructured, spec *authorizationPolicySpec) string {
	everywhere := f.namespaceOf(u) == f.root && f.root != f.p.Namespace
	refs := spec.TargetRefs
	if spec.TargetRef != nil {
		refs = append([]targetRef{*spec.TargetRef}, refs...)
	}
	if len(refs) > 0 {
		names := make([]string, 0, len(refs))
		for _, r := range refs {
			names = append(names, r.Kind+" "+r.Name)
		}
		sort.Strings(names)
		return strings.Join(names, ", ")
	}
	w := "all workloads"
	if sel := spec.Selector.labels(); sel != nil {
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
func rulesText(rules []authzRule) string {
	parts := make([]string, 0, len(rules))
	for _, r := range rules {
		parts = append(parts, ruleText(r))
	}
	return strings.Join(capRules(parts), "; ")
}

func ruleText(r authzRule) string {
	var from []string
	for _, f := range r.From {
		if f.Source == nil {
			continue
		}
		s := f.Source
		from = append(from, listsText([]namedList{
			{"principals", s.Principals}, {"not principals", s.NotPrincipals},
			{"service accounts", s.ServiceAccounts}, {"not service accounts", s.NotServiceAccounts},
			{"namespaces", s.Namespaces}, {"not namespaces", s.NotNamespaces},
			{"trust domains", s.TrustDomains}, {"not trust domains", s.NotTrustDomains},
			{"request principals", s.RequestPrincipals}, {"not request principals", s.NotRequestPrincipals},
			{"IP blocks", s.IPBlocks}, {"not IP blocks", s.NotIPBlocks},
			{"remote IP blocks", s.RemoteIPBlocks}, {"not remote IP blocks", s.NotRemoteIPBlocks},
		}, "any source"))
	}
	text := "any source"
	if len(from) > 0 {
		text = strings.Join(from, " or ")
	}
	var to []string
	for _, t := range r.To {
		if t.Operation == nil {
			continue
		}
		o := t.Operation
		if op := listsText([]namedList{
			{"hosts", o.Hosts}, {"not hosts", o.NotHosts},
			{"ports", o.Ports}, {"not ports", o.NotPorts},
			{"methods", o.Methods}, {"not methods", o.NotMethods},
			{"paths", o.Paths}, {"not paths", o.NotPaths},
		}, ""); op != "" {
			to = append(to, op)
		}
	}
	if len(to) > 0 {
		text += " to " + strings.Join(to, " or ")
	}
	var when []string
	for _, c := range r.When {
		if c.Key != "" {
			when = append(when, c.Key)
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
