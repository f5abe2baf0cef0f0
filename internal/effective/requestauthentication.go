package effective

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/meshapi"
	"github.com/meshguard/meshguard/internal/meshsem"
)

const kindRequestAuthentication = "RequestAuthentication"

// requestAuthentication judges a RequestAuthentication of the profile's namespace or of the root
// namespace. Istio merges the jwtRules of every RequestAuthentication that applies to a workload
// (its namespace's and the root namespace's): "When multiple policies match a workload, Istio
// combines all rules as if they were specified as a single policy" (RequestAuthentication
// reference). A token from any issuer they trust then carries a request principal, so a foreign
// issuer satisfies requestAuthentication.requireToken (a DENY of notRequestPrincipals ["*"]) and
// every requestPrincipals pattern that matches its principals. An issuer the profile also trusts
// weakens it only with other keys (another jwksUri or inline jwks).
func (f *finder) requestAuthentication(u *unstructured.Unstructured) []v1alpha1.ExternalPolicy {
	ra := f.p.Spec.RequestAuthentication
	spec, err := meshapi.RequestAuthentication(u)
	if err != nil {
		if (ra == nil || !ra.RequireToken) && f.p.Spec.Authorization == nil {
			return nil // nothing of the profile depends on which tokens are trusted
		}
		return []v1alpha1.ExternalPolicy{f.notUnderstood(u, "requestAuthentication", err)}
	}
	if len(spec.GetJwtRules()) == 0 {
		return nil
	}
	trusted := map[string]v1alpha1.JWTIssuer{}
	if ra != nil {
		for _, is := range ra.Issuers {
			trusted[is.Issuer] = is
		}
	}
	var extra []string
	for _, r := range spec.GetJwtRules() {
		is, ok := trusted[r.GetIssuer()]
		switch {
		case !ok:
			extra = append(extra, r.GetIssuer())
		case r.GetJwks() != "" || (r.GetJwksUri() != "" && r.GetJwksUri() != is.JwksURI):
			extra = append(extra, r.GetIssuer()+" (other keys)")
		}
	}
	if len(extra) == 0 {
		return nil
	}
	sort.Strings(extra)
	sel := selectorLabels(spec.GetSelector())
	refs := policyTargets(spec.GetTargetRef(), spec.GetTargetRefs())
	targeted := len(refs) > 0
	trusts := "trusts tokens of " + strings.Join(extra, ", ")

	var out []v1alpha1.ExternalPolicy
	if ra != nil && ra.RequireToken {
		var want map[string]string
		if ra.Selector != nil {
			want = ra.Selector.MatchLabels
		}
		if (targeted && f.targetedOverlaps(u, refs, want)) || (!targeted && meshsem.MayOverlap(sel, want)) {
			out = append(out, f.report(u, "requestAuthentication.requireToken: "+trusts))
		}
	}
	if az := f.p.Spec.Authorization; az != nil {
		var rules []string
		for _, r := range az.Rules {
			if r.Action == v1alpha1.ActionDeny || r.From == nil || len(r.From.RequestPrincipals) == 0 {
				continue
			}
			var rs map[string]string
			if r.Selector != nil {
				rs = r.Selector.MatchLabels
			}
			if (targeted && !f.targetedOverlaps(u, refs, rs)) || (!targeted && !meshsem.MayOverlap(sel, rs)) {
				continue
			}
			for _, iss := range extra {
				iss = strings.TrimSuffix(iss, " (other keys)")
				if anyPrincipalOf(iss, r.From.RequestPrincipals) {
					rules = append(rules, r.Name)
					break
				}
			}
		}
		if len(rules) > 0 {
			sort.Strings(rules)
			out = append(out, f.report(u, fmt.Sprintf("authorization.rules[%s].from.requestPrincipals: %s", strings.Join(rules, ","), trusts)))
		}
	}
	return out
}

// anyPrincipalOf says whether a principal of the issuer ("<iss>/<sub>") can match one of the
// patterns, which Istio matches exactly, by prefix ("x*"), by suffix ("*x") or as "*".
func anyPrincipalOf(issuer string, patterns []string) bool {
	for _, p := range patterns {
		switch {
		case p == "*":
			return true
		case strings.HasPrefix(p, "*"):
			// A suffix: the subject can end with anything.
			return true
		case strings.HasSuffix(p, "*"):
			pre := strings.TrimSuffix(p, "*")
			if strings.HasPrefix(issuer+"/", pre) || strings.HasPrefix(pre, issuer+"/") {
				return true
			}
		case strings.HasPrefix(p, issuer+"/"):
			return true
		}
	}
	return false
}
