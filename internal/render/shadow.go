package render

import (
	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// Rules in shadow: the mesh evaluates them, logs and counts what they would deny, and denies
// nothing because of them.
//
// Istio: the AuthorizationPolicy gets the istio.io/dry-run: "true" annotation
// (https://istio.io/latest/docs/tasks/security/authorization/authz-dry-run/): the proxy evaluates
// dry-run ALLOW and DENY policies in separate shadow engines and reports the result in its rbac
// log, in envoy_http_..._rbac{authz_dry_run_action,authz_dry_run_result} and in trace tags.
// Sidecars and waypoints (Envoy, one authz builder) honour it; ztunnel does not reliably: Istio
// 1.24–1.25.1 enforce dry-run policies at ztunnel, 1.25.2–1.28 drop them, and 1.29+ honour them
// only with AMBIENT_ENABLE_DRY_RUN_AUTHORIZATION_POLICY (../shared/research/ambient-and-beyond.md
// §1.7, istio/istio PR #55414).
//
// Linkerd has no per-policy dry run and no Deny rules; authorization.enforcement: Shadow makes
// what would be "deny" (the namespace default and the Servers' accessPolicy) admit instead, so
// that requests no AuthorizationPolicy authorizes are served by the default policy, which the
// proxy labels in inbound_http_authz_allow_total / inbound_tcp_authz_allow_total
// (authz_kind="default"). On a Permissive or Disable port that is "audit", Linkerd's own audit
// policy (all-unauthenticated, and authz_name=audit in logs and metrics:
// https://linkerd.io/2.18/features/server-policy/); on a Strict port it is "all-authenticated":
// audit would also admit plaintext, wider than the profile's mTLS, which Shadow does not put in
// shadow.

// IstioDryRunAnnotation marks an Istio AuthorizationPolicy that is evaluated and reported, not
// enforced.
const IstioDryRunAnnotation = "istio.io/dry-run"

// AuthorizationShadow says whether the profile's whole authorization (default deny and every
// rule) is in shadow.
func AuthorizationShadow(p *v1alpha1.MeshSecurityProfile) bool {
	az := p.Spec.Authorization
	return az != nil && az.Enforcement == v1alpha1.RuleEnforcementShadow
}

// RuleShadow says whether a rule is in shadow, by itself or with the whole authorization.
func RuleShadow(p *v1alpha1.MeshSecurityProfile, rule *v1alpha1.AuthorizationRule) bool {
	return AuthorizationShadow(p) || rule.Enforcement == v1alpha1.RuleEnforcementShadow
}

// ShadowRules lists what is in shadow, for status.shadowRules: the names of the rules in shadow,
// and default-deny when the default deny is.
func ShadowRules(p *v1alpha1.MeshSecurityProfile) []string {
	az := p.Spec.Authorization
	if az == nil {
		return nil
	}
	var out []string
	if az.DefaultDeny && AuthorizationShadow(p) {
		out = append(out, "default-deny")
	}
	for i := range az.Rules {
		if RuleShadow(p, &az.Rules[i]) {
			out = append(out, az.Rules[i].Name)
		}
	}
	return out
}

// istioShadow annotates the AuthorizationPolicies of the rules in shadow (and the allow-nothing
// default deny when the whole authorization is) with istio.io/dry-run: "true".
func (r *renderer) istioShadow() {
	az := r.p.Spec.Authorization
	if az == nil {
		return
	}
	// A part placed for ambient pods has up to three policies (ambient.go): the selector policy,
	// its copy on the waypoint (-waypoint) and the ztunnel policy admitting only the waypoint
	// (-ztunnel). All of them are the part, so all of them are in shadow with it: a waypoint is
	// Envoy and honours dry-run as a sidecar does (pilot/pkg/security/authz/builder serves both).
	dry := map[string]bool{}
	shadow := func(name string) {
		dry[name], dry[name+"-waypoint"], dry[name+"-ztunnel"] = true, true, true
	}
	if AuthorizationShadow(r.p) {
		shadow(r.name("default-deny"))
	}
	for i := range az.Rules {
		if RuleShadow(r.p, &az.Rules[i]) {
			shadow(r.name("rule", az.Rules[i].Name))
		}
	}
	if len(dry) == 0 {
		return
	}
	for _, o := range r.objs {
		if o.GetKind() != gvkAuthorizationPolicy.Kind || !dry[o.GetName()] {
			continue
		}
		a := o.GetAnnotations()
		if a == nil {
			a = map[string]string{}
		}
		a[IstioDryRunAnnotation] = "true"
		o.SetAnnotations(a)
	}
	r.warnings = append(r.warnings, "spec.authorization: rules in Shadow are dry-run AuthorizationPolicies, honoured by Istio sidecars and waypoints: ambient workloads without a waypoint (ztunnel) enforce them on Istio 1.24–1.25.1, ignore them on 1.25.2–1.28 and count them on 1.29+ only with AMBIENT_ENABLE_DRY_RUN_AUTHORIZATION_POLICY (docs/adoption.md)")
}
