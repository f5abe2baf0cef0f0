package render

import (
	"net/netip"

	securityv1beta1 "istio.io/api/security/v1beta1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// istioNegatedSource renders a rule's from.notRequestPrincipals and from.notIpBlocks into the
// Istio source and returns how many entries it rendered. They are for Deny rules only (the CRD
// refuses them on Allow rules, and so does this, for specs that did not pass through it): in an
// ALLOW they would admit everything they do not name. A floor's requireToken and its ceilings
// come through here as Deny rules of the merged profile (internal/merge). Istio's Source has
// both fields: "notRequestPrincipals: A list of negative match of request identities",
// "notIpBlocks: A list of negative match of IP blocks"
// (https://istio.io/latest/docs/reference/config/security/authorization-policy/#Source).
func (r *renderer) istioNegatedSource(rule *v1alpha1.AuthorizationRule, fp *field.Path, src *securityv1beta1.Source) int {
	f := rule.From
	n := len(f.NotRequestPrincipals) + len(f.NotIPBlocks)
	if n == 0 {
		return 0
	}
	if rule.Action != v1alpha1.ActionDeny {
		r.errs = append(r.errs, field.Forbidden(fp, "notRequestPrincipals and notIpBlocks are for Deny rules only: in an Allow rule they would admit everything they do not name"))
		return n
	}
	for j, c := range f.NotIPBlocks {
		if _, err := netip.ParsePrefix(c); err != nil {
			r.errs = append(r.errs, field.Invalid(fp.Child("notIpBlocks").Index(j), c, "must be a CIDR such as 10.0.0.0/8"))
		}
	}
	src.NotRequestPrincipals = r.nonEmptySet(f.NotRequestPrincipals, fp.Child("notRequestPrincipals"))
	src.NotIpBlocks = sortedSet(f.NotIPBlocks)
	return n
}
