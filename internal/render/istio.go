package render

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"

	securityv1beta1 "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/meshapi"
	"github.com/meshguard/meshguard/internal/meshsem"
)

// Kinds of the Istio objects meshguard generates. security.istio.io/v1 is the stored version of
// Istio's security CRDs since Istio 1.22.
var (
	gvkPeerAuthentication    = metav1.GroupVersionKind(meshapi.GVKPeerAuthentication)
	gvkRequestAuthentication = metav1.GroupVersionKind(meshapi.GVKRequestAuthentication)
	gvkAuthorizationPolicy   = metav1.GroupVersionKind(meshapi.GVKAuthorizationPolicy)
)

// istio renders the Istio security.istio.io/v1 objects of the profile.
//
// Profiles reach Render either defaulted by the API server or straight from a file (`manager
// render`, goldens), so empty values mean their defaults here. Input the CRD would refuse is an
// error naming the field, never a silently wider policy.
func (r *renderer) istio() {
	spec := field.NewPath("spec")
	r.istioMTLS(spec.Child("mtls"))
	r.ambientMTLS()
	if ra := r.p.Spec.RequestAuthentication; ra != nil {
		r.istioRequestAuthentication(ra, spec.Child("requestAuthentication"))
	}
	if az := r.p.Spec.Authorization; az != nil {
		r.istioAuthorization(az, spec.Child("authorization"))
		r.istioIdentityRules(az)
	}
	r.istioHTTPOnlyWarnings()
}

// istioMTLS renders one namespace-wide PeerAuthentication and one per override.
func (r *renderer) istioMTLS(path *field.Path) {
	m := r.p.Spec.MTLS
	if m == nil {
		// The API server defaults mtls to {mode: Strict}.
		m = &v1alpha1.MTLSSpec{}
	}
	mode, ok := istioMTLSMode(m.Mode)
	if !ok {
		r.errs = append(r.errs, unsupportedMTLSMode(path.Child("mode"), m.Mode))
		return
	}
	r.add(gvkPeerAuthentication, r.name("mtls"), &securityv1.PeerAuthentication{
		Spec: securityv1beta1.PeerAuthentication{
			Mtls: &securityv1beta1.PeerAuthentication_MutualTLS{Mode: mode},
		},
	})

	seen := map[string]bool{}
	for i, o := range m.Overrides {
		p := path.Child("overrides").Index(i)
		if errs := validateWorkloadSelector(&o.Selector, p.Child("selector")); len(errs) > 0 {
			r.errs = append(r.errs, errs...)
			continue
		}
		name := mtlsOverrideName(o)
		if o.Name != "" {
			if errs := validation.IsDNS1123Label(o.Name); len(errs) > 0 {
				r.errs = append(r.errs, field.Invalid(p.Child("name"), o.Name, strings.Join(errs, "; ")))
				continue
			}
		}
		if seen[name] {
			// Two overrides would write the same object; whichever came last would win.
			r.errs = append(r.errs, field.Duplicate(p, "override "+name+" (overrides without a name are named after their selector)"))
			continue
		}
		seen[name] = true
		if o.Mode == "" && len(o.Ports) == 0 {
			r.errs = append(r.errs, field.Required(p, "an override needs mode or ports"))
			continue
		}

		obj := &securityv1.PeerAuthentication{}
		pa := &obj.Spec
		pa.Selector = istioWorkloadSelector(&o.Selector)
		if o.Mode != "" {
			wm, ok := istioMTLSMode(o.Mode)
			if !ok {
				r.errs = append(r.errs, unsupportedMTLSMode(p.Child("mode"), o.Mode))
				continue
			}
			pa.Mtls = &securityv1beta1.PeerAuthentication_MutualTLS{Mode: wm}
		}
		// Without mode, mtls is left out: the workloads inherit the namespace's mode (UNSET).
		bad := false
		for j, pm := range o.Ports {
			pp := p.Child("ports").Index(j)
			if !validPort(pm.Port) {
				r.errs = append(r.errs, field.Invalid(pp.Child("port"), pm.Port, "must be between 1 and 65535"))
				bad = true
				continue
			}
			if pm.Mode == "" {
				r.errs = append(r.errs, field.Required(pp.Child("mode"), "a port needs a mode"))
				bad = true
				continue
			}
			pmode, ok := istioMTLSMode(pm.Mode)
			if !ok {
				r.errs = append(r.errs, unsupportedMTLSMode(pp.Child("mode"), pm.Mode))
				bad = true
				continue
			}
			if pa.PortLevelMtls == nil {
				pa.PortLevelMtls = map[uint32]*securityv1beta1.PeerAuthentication_MutualTLS{}
			}
			if _, dup := pa.PortLevelMtls[uint32(pm.Port)]; dup {
				r.errs = append(r.errs, field.Duplicate(pp.Child("port"), pm.Port))
				bad = true
				continue
			}
			pa.PortLevelMtls[uint32(pm.Port)] = &securityv1beta1.PeerAuthentication_MutualTLS{Mode: pmode}
		}
		if bad {
			continue
		}
		r.add(gvkPeerAuthentication, r.name("mtls", name), obj)
	}
}

// istioRequestAuthentication renders the RequestAuthentication and, when tokens are required,
// the AuthorizationPolicy that denies requests without one: a RequestAuthentication alone only
// rejects invalid tokens and lets requests that carry none through.
func (r *renderer) istioRequestAuthentication(ra *v1alpha1.RequestAuthenticationSpec, path *field.Path) {
	var selector *typev1beta1.WorkloadSelector
	if ra.Selector != nil {
		if errs := validateWorkloadSelector(ra.Selector, path.Child("selector")); len(errs) > 0 {
			r.errs = append(r.errs, errs...)
			return
		}
		selector = istioWorkloadSelector(ra.Selector)
	}
	if len(ra.Issuers) == 0 {
		r.errs = append(r.errs, field.Required(path.Child("issuers"), "at least one issuer is required"))
		return
	}

	var rules []*securityv1beta1.JWTRule
	seen := map[string]bool{}
	nerr := len(r.errs)
	for i, is := range ra.Issuers {
		p := path.Child("issuers").Index(i)
		if !isHTTPSURL(is.Issuer) {
			r.errs = append(r.errs, field.Invalid(p.Child("issuer"), is.Issuer, "issuer must be an https URL"))
			continue
		}
		if seen[is.Issuer] {
			r.errs = append(r.errs, field.Duplicate(p.Child("issuer"), is.Issuer))
			continue
		}
		seen[is.Issuer] = true
		if is.JwksURI != "" && !isHTTPSURL(is.JwksURI) {
			// Keys fetched over plain HTTP could be swapped by anyone on the path.
			r.errs = append(r.errs, field.Invalid(p.Child("jwksUri"), is.JwksURI, "jwksUri must be an https URL"))
			continue
		}
		rule := &securityv1beta1.JWTRule{
			Issuer:               is.Issuer,
			JwksUri:              is.JwksURI,
			ForwardOriginalToken: is.ForwardOriginalToken,
		}
		rule.Audiences = r.nonEmptySet(is.Audiences, p.Child("audiences"))
		for j, h := range is.FromHeaders {
			if h.Name == "" {
				r.errs = append(r.errs, field.Required(p.Child("fromHeaders").Index(j).Child("name"), "a header needs a name"))
				continue
			}
			// fromHeaders keeps the profile's order: it is an ordered (atomic) list.
			rule.FromHeaders = append(rule.FromHeaders, &securityv1beta1.JWTHeader{Name: h.Name, Prefix: h.Prefix})
		}
		rule.FromParams = r.nonEmptySet(is.FromParams, p.Child("fromParams"))
		rules = append(rules, rule)
	}
	if len(r.errs) > nerr {
		return
	}
	// Issuers are keyed by issuer; their order carries no meaning.
	sort.Slice(rules, func(i, j int) bool { return rules[i].Issuer < rules[j].Issuer })

	raObj := &securityv1.RequestAuthentication{
		Spec: securityv1beta1.RequestAuthentication{Selector: selector, JwtRules: rules},
	}
	var deny *securityv1.AuthorizationPolicy
	if ra.RequireToken {
		deny = &securityv1.AuthorizationPolicy{
			Spec: securityv1beta1.AuthorizationPolicy{
				Selector: istioWorkloadSelector(ra.Selector),
				Action:   securityv1beta1.AuthorizationPolicy_DENY,
				Rules: []*securityv1beta1.Rule{{
					From: []*securityv1beta1.Rule_From{{
						Source: &securityv1beta1.Source{NotRequestPrincipals: []string{"*"}},
					}},
				}},
			},
		}
	}
	r.placeRequestAuthentication(ra.Selector, raObj, deny)
}

// istioAuthorization renders the allow-nothing default-deny policy and one AuthorizationPolicy
// per rule.
func (r *renderer) istioAuthorization(az *v1alpha1.AuthorizationSpec, path *field.Path) {
	if az.DefaultDeny {
		// An ALLOW policy that matches nothing: with it, Istio denies every request no other ALLOW
		// policy admits. Its spec must be exactly {} (no selector, no rules).
		r.addAuthorizationPolicy(r.name("default-deny"), &securityv1.AuthorizationPolicy{})
		r.ambientDefaultDeny()
	}
	r.forEachRule(az, path, func(rule *v1alpha1.AuthorizationRule, p *field.Path) {
		r.checkPaths(rule, p)
		if ap, ok := r.istioRule(rule, p); ok {
			r.placeAuthorizationPolicy(policy{
				id: "authorization.rules[" + rule.Name + "]", name: r.name("rule", rule.Name),
				selector: rule.Selector, ap: ap, l7: isL7(ap),
			})
		}
	})
}

// istioRule translates one rule. Every list of from goes into one source and every list of to
// into one operation, so that they AND as the profile says. The policy always has exactly one
// non-empty rule: an empty rule would match every request (an ALLOW policy would allow all).
func (r *renderer) istioRule(rule *v1alpha1.AuthorizationRule, path *field.Path) (*securityv1.AuthorizationPolicy, bool) {
	nerr := len(r.errs)
	ap := &securityv1.AuthorizationPolicy{}
	spec := &ap.Spec
	switch rule.Action {
	case "", v1alpha1.ActionAllow:
		spec.Action = securityv1beta1.AuthorizationPolicy_ALLOW
	case v1alpha1.ActionDeny:
		spec.Action = securityv1beta1.AuthorizationPolicy_DENY
	default:
		r.errs = append(r.errs, field.NotSupported(path.Child("action"), rule.Action, []string{string(v1alpha1.ActionAllow), string(v1alpha1.ActionDeny)}))
	}
	if rule.Selector != nil {
		r.errs = append(r.errs, validateWorkloadSelector(rule.Selector, path.Child("selector"))...)
		spec.Selector = istioWorkloadSelector(rule.Selector)
	}
	if rule.From == nil && rule.To == nil {
		r.errs = append(r.errs, field.Required(path, "a rule needs from or to"))
		return nil, false
	}

	ir := &securityv1beta1.Rule{}
	if f := rule.From; f != nil {
		fp := path.Child("from")
		src := &securityv1beta1.Source{}
		var principals []string
		for j, sa := range f.ServiceAccounts {
			pr, err := istioPrincipal(r.opts.TrustDomain, sa)
			if err != nil {
				r.errs = append(r.errs, field.Invalid(fp.Child("serviceAccounts").Index(j), string(sa), err.Error()))
				continue
			}
			principals = append(principals, pr)
		}
		src.Principals = sortedSet(principals)
		src.Namespaces = r.dnsLabelSet(f.Namespaces, fp.Child("namespaces"))
		src.RequestPrincipals = r.nonEmptySet(f.RequestPrincipals, fp.Child("requestPrincipals"))
		for j, c := range f.IPBlocks {
			if _, err := netip.ParsePrefix(c); err != nil {
				r.errs = append(r.errs, field.Invalid(fp.Child("ipBlocks").Index(j), c, "must be a CIDR such as 10.0.0.0/8"))
			}
		}
		src.IpBlocks = sortedSet(f.IPBlocks)
		negated := r.istioNegatedSource(rule, fp, src)
		if len(f.ServiceAccounts)+len(f.Namespaces)+len(f.RequestPrincipals)+len(f.IPBlocks)+negated == 0 {
			r.errs = append(r.errs, field.Required(fp, "from needs at least one of serviceAccounts, namespaces, requestPrincipals or ipBlocks"))
		}
		ir.From = []*securityv1beta1.Rule_From{{Source: src}}
	}
	if t := rule.To; t != nil {
		tp := path.Child("to")
		op := &securityv1beta1.Operation{}
		for j, m := range t.Methods {
			if !isUpperAlpha(m) {
				r.errs = append(r.errs, field.Invalid(tp.Child("methods").Index(j), m, "must be an HTTP method in capitals, for example GET"))
			}
		}
		op.Methods = sortedSet(t.Methods)
		for j, pa := range t.Paths {
			if !strings.HasPrefix(pa, "/") && !strings.HasPrefix(pa, "*") {
				r.errs = append(r.errs, field.Invalid(tp.Child("paths").Index(j), pa, "must start with / or *"))
			}
		}
		op.Paths = sortedSet(t.Paths)
		op.Ports = r.portSet(t.Ports, tp.Child("ports"))
		if len(t.Methods)+len(t.Paths)+len(t.Ports) == 0 {
			r.errs = append(r.errs, field.Required(tp, "to needs at least one of methods, paths or ports"))
		}
		ir.To = []*securityv1beta1.Rule_To{{Operation: op}}
	}
	if len(r.errs) > nerr {
		return nil, false
	}
	spec.Rules = []*securityv1beta1.Rule{ir}
	return ap, true
}

// addAuthorizationPolicy adds an AuthorizationPolicy. Istio's JSON leaves out enum zero values
// and ALLOW is the zero value, so a policy with rules gets its action written explicitly: a
// reader of the object (or of a golden) then sees what it does. The allow-nothing policy keeps
// its spec exactly {}.
func (r *renderer) addAuthorizationPolicy(name string, ap *securityv1.AuthorizationPolicy) {
	n := len(r.objs)
	r.add(gvkAuthorizationPolicy, name, ap)
	if len(r.objs) > n && len(ap.Spec.Rules) > 0 && ap.Spec.Action == securityv1beta1.AuthorizationPolicy_ALLOW {
		if err := unstructured.SetNestedField(r.objs[n].Object, "ALLOW", "spec", "action"); err != nil {
			r.errs = append(r.errs, field.InternalError(field.NewPath("spec"), fmt.Errorf("set action of AuthorizationPolicy %s: %w", name, err)))
		}
	}
}

// istioPrincipal turns a "namespace/name" service account into the Istio (SPIFFE without the
// scheme) principal <trustDomain>/ns/<namespace>/sa/<name>. Both parts must be plain Kubernetes
// names: Istio reads a * in a principal as a wildcard, so nothing else may get through.
func istioPrincipal(trustDomain string, sa v1alpha1.ServiceAccountRef) (string, error) {
	ns, name, ok := strings.Cut(string(sa), "/")
	if !ok || len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
		return "", fmt.Errorf("must be written namespace/name, for example frontend/web")
	}
	return trustDomain + "/ns/" + ns + "/sa/" + name, nil
}

// istioMTLSMode maps a profile mode to Istio's; "" is the API default, Strict.
func istioMTLSMode(m v1alpha1.MTLSMode) (securityv1beta1.PeerAuthentication_MutualTLS_Mode, bool) {
	switch meshsem.Mode(m) {
	case v1alpha1.MTLSStrict:
		return securityv1beta1.PeerAuthentication_MutualTLS_STRICT, true
	case v1alpha1.MTLSPermissive:
		return securityv1beta1.PeerAuthentication_MutualTLS_PERMISSIVE, true
	case v1alpha1.MTLSDisable:
		return securityv1beta1.PeerAuthentication_MutualTLS_DISABLE, true
	}
	return securityv1beta1.PeerAuthentication_MutualTLS_UNSET, false
}

func unsupportedMTLSMode(p *field.Path, m v1alpha1.MTLSMode) *field.Error {
	return field.NotSupported(p, m, []string{string(v1alpha1.MTLSStrict), string(v1alpha1.MTLSPermissive), string(v1alpha1.MTLSDisable)})
}

// mtlsOverrideName is the name part of an override's object: its name, or "wl-" and the first 8
// hex digits of the SHA-256 of its selector written as sorted key=value pairs joined by commas
// (app=legacy,tier=db), so that reordering labels in the profile keeps the name.
func mtlsOverrideName(o v1alpha1.MTLSOverride) string {
	if o.Name != "" {
		return o.Name
	}
	return "wl-" + labelsHash(o.Selector.MatchLabels)
}

// labelsHash is the first 8 hex digits of the SHA-256 of the labels as sorted key=value pairs
// joined by commas. Label keys and values cannot hold "=" or ",", so the encoding is unambiguous.
func labelsHash(labels map[string]string) string {
	pairs := make([]string, 0, len(labels))
	for k, v := range labels {
		pairs = append(pairs, k+"="+v)
	}
	sort.Strings(pairs)
	sum := sha256.Sum256([]byte(strings.Join(pairs, ",")))
	return hex.EncodeToString(sum[:])[:8]
}

// validateWorkloadSelector refuses an empty selector: Istio reads a selector without labels as
// "every workload", which would turn a per-workload exception or rule into a namespace-wide one.
func validateWorkloadSelector(s *v1alpha1.WorkloadSelector, path *field.Path) field.ErrorList {
	if len(s.MatchLabels) == 0 {
		return field.ErrorList{field.Required(path.Child("matchLabels"), "a selector needs at least one label")}
	}
	return metav1validation.ValidateLabels(s.MatchLabels, path.Child("matchLabels"))
}

func istioWorkloadSelector(s *v1alpha1.WorkloadSelector) *typev1beta1.WorkloadSelector {
	if s == nil {
		return nil
	}
	m := make(map[string]string, len(s.MatchLabels))
	for k, v := range s.MatchLabels {
		m[k] = v
	}
	return &typev1beta1.WorkloadSelector{MatchLabels: m}
}

// nonEmptySet sorts and dedupes a list of strings, refusing empty strings.
func (r *renderer) nonEmptySet(in []string, path *field.Path) []string {
	for j, s := range in {
		if s == "" {
			r.errs = append(r.errs, field.Required(path.Index(j), "must not be empty"))
		}
	}
	return sortedSet(in)
}

// dnsLabelSet sorts and dedupes namespace names, refusing anything that is not a namespace name
// (Istio would read a * in one as a wildcard).
func (r *renderer) dnsLabelSet(in []string, path *field.Path) []string {
	for j, s := range in {
		if errs := validation.IsDNS1123Label(s); len(errs) > 0 {
			r.errs = append(r.errs, field.Invalid(path.Index(j), s, strings.Join(errs, "; ")))
		}
	}
	return sortedSet(in)
}

// portSet validates ports and returns them sorted numerically, deduped, as Istio's strings.
func (r *renderer) portSet(in []int32, path *field.Path) []string {
	ports := make([]int, 0, len(in))
	for j, p := range in {
		if !validPort(p) {
			r.errs = append(r.errs, field.Invalid(path.Index(j), p, "must be between 1 and 65535"))
			continue
		}
		ports = append(ports, int(p))
	}
	sort.Ints(ports)
	var out []string
	for i, p := range ports {
		if i > 0 && ports[i-1] == p {
			continue
		}
		out = append(out, strconv.Itoa(p))
	}
	return out
}

func validPort(p int32) bool { return p >= 1 && p <= 65535 }

func isHTTPSURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "https" && u.Host != ""
}

func isUpperAlpha(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}
