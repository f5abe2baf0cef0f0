package render

import (
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/meshapi"
	"github.com/meshguard/meshguard/internal/meshsem"
)

// Linkerd's policy model, and how a profile maps onto it.
//
// Linkerd has no PeerAuthentication: inbound policy is a default per pod, taken from the
// config.linkerd.io/default-inbound-policy annotation of the pod or its namespace, replaced on a
// port by a Server that selects that port. A Server admits what an AuthorizationPolicy targeting
// it (or one of its HTTPRoutes) authorizes, and applies its accessPolicy (default deny) to all
// other traffic. So:
//
//   - spec.mtls.mode sets the namespace annotation; spec.authorization.defaultDeny overrides it
//     with "deny" (stricter than any mode).
//   - Every port that an mTLS override or an authorization rule names gets one Server for its
//     (selector, port) pair: Linkerd's admission webhook refuses two Servers with the same
//     selector and port, and a Server has exactly one port.
//   - Each Allow rule becomes, per port, an AuthorizationPolicy targeting the Server (or, with
//     methods/paths, an HTTPRoute of that Server), requiring a MeshTLSAuthentication for its
//     identities and/or a NetworkAuthentication for its ipBlocks. requiredAuthenticationRefs are
//     ANDed by Linkerd, as the lists of a rule's from are by the profile.
//
// What Linkerd cannot express (Deny rules, JWT principals, workload-wide mTLS exceptions, ports
// left out) is reported in Result.Unsupported and nothing is generated for the profile.
//
// Version notes: Server policy.linkerd.io/v1beta3 (with accessPolicy) and HTTPRoute v1beta3 need
// Linkerd 2.16 or later; AuthorizationPolicy, MeshTLSAuthentication and NetworkAuthentication are
// v1alpha1, their only version.
var (
	gvkLinkerdServer                = metav1.GroupVersionKind(meshapi.GVKLinkerdServer)
	gvkLinkerdHTTPRoute             = metav1.GroupVersionKind(meshapi.GVKLinkerdHTTPRoute)
	gvkLinkerdAuthorizationPolicy   = metav1.GroupVersionKind(meshapi.GVKLinkerdAuthorizationPolicy)
	gvkLinkerdMeshTLSAuthentication = metav1.GroupVersionKind(meshapi.GVKLinkerdMeshTLSAuthentication)
	gvkLinkerdNetworkAuthentication = metav1.GroupVersionKind(meshapi.GVKLinkerdNetworkAuthentication)
)

const (
	linkerdPolicyGroup = meshapi.GroupLinkerdPolicy

	// LinkerdDefaultInboundPolicyAnnotation is the namespace annotation that sets the inbound
	// policy of every pod of the namespace on ports no Server selects (meshsem says what each
	// policy admits).
	LinkerdDefaultInboundPolicyAnnotation = meshsem.LinkerdDefaultInboundPolicyAnnotation

	// linkerdProxyProtocolUnknown is the Server's default proxyProtocol: Linkerd detects HTTP/1,
	// HTTP/2 and gRPC, and treats the rest as opaque TCP.
	linkerdProxyProtocolUnknown = "unknown"

	// linkerdMaxMatchesPerRule and linkerdMaxMatches keep an HTTPRoute within the Gateway API
	// limits that Linkerd's HTTPRoute schema inherits across its versions (8 matches per rule
	// in the oldest, 128 matches in a route in the newest).
	linkerdMaxMatchesPerRule = 8
	linkerdMaxMatches        = 128
	// linkerdMaxPathLength is the maxLength of an HTTPRoute match's path value.
	linkerdMaxPathLength = 1024

	// HTTPRoute path match types (Gateway API's HTTPPathMatch, as policy.linkerd.io copies it).
	linkerdPathExact             = "Exact"
	linkerdPathPrefix            = "PathPrefix"
	linkerdPathRegularExpression = "RegularExpression"
)

// linkerdHTTPMethods are the methods an HTTPRoute match accepts.
var linkerdHTTPMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "DELETE": true,
	"CONNECT": true, "OPTIONS": true, "TRACE": true, "PATCH": true,
}

// lkServer is one Server: the pods of a selector, one port.
type lkServer struct {
	name     string
	labels   map[string]string // nil: every pod of the namespace
	port     int32
	source   *field.Path // the first profile field that asked for it, for messages
	portMode v1alpha1.MTLSMode
	rules    []*lkRule
}

// lkRule is an Allow rule, translated once and attached to each Server of its ports.
type lkRule struct {
	name string
	// matches are the HTTPRoute matches of the rule's methods and paths; nil when the rule
	// admits every request on its ports.
	matches []map[string]any
	// identities are the Linkerd identities of from.serviceAccounts / from.namespaces; nil when
	// the rule does not name senders by identity.
	identities []string
	// noSender: serviceAccounts and namespaces were both set and no service account is in one of
	// the namespaces, so the rule admits nobody.
	noSender  bool
	networks  []string // from.ipBlocks
	anySource bool     // no from: the rule does not restrict the sender
}

// linkerd renders the Linkerd policy.linkerd.io objects of the profile.
func (r *renderer) linkerd() {
	spec := field.NewPath("spec")
	nsMode := meshsem.NamespaceMode(r.p.Spec.MTLS)
	if _, ok := meshsem.LinkerdPolicyForMode(nsMode); !ok {
		r.errs = append(r.errs, unsupportedMTLSMode(spec.Child("mtls", "mode"), nsMode))
		return
	}
	defaultDeny := r.p.Spec.Authorization != nil && r.p.Spec.Authorization.DefaultDeny

	// The namespace default. With defaultDeny, Linkerd still authorizes kubelet probes on ports
	// that have no Server, or a Server without HTTPRoutes ("default authorizations" in Linkerd's
	// authorization policy docs), so pods keep passing their probes and nothing else is needed.
	// On a port whose Server has HTTPRoutes (rules with methods or paths) Linkerd stops doing that,
	// and probes on that port are admitted only if a rule admits them: the profile has no probe
	// paths to authorize them with (see linkerdServer).
	policy, _ := meshsem.LinkerdNamespacePolicy(&r.p.Spec, AuthorizationShadow(r.p))
	r.nsAnnots = map[string]string{LinkerdDefaultInboundPolicyAnnotation: policy}

	if r.p.Spec.RequestAuthentication != nil {
		r.unsupported = append(r.unsupported, spec.Child("requestAuthentication").String()+
			": Linkerd does not validate JSON Web Tokens; use an ingress or the application to check them")
	}

	servers := map[string]*lkServer{}
	if m := r.p.Spec.MTLS; m != nil {
		r.linkerdMTLSOverrides(m, nsMode, spec.Child("mtls"), servers)
	}
	if az := r.p.Spec.Authorization; az != nil {
		r.linkerdRules(az, spec.Child("authorization"), servers)
	}
	r.linkerdOverlaps(servers)
	if len(r.errs) > 0 || len(r.unsupported) > 0 {
		return
	}

	names := make([]string, 0, len(servers))
	for n := range servers {
		names = append(names, n)
	}
	sort.Strings(names)
	authns := map[string]bool{}
	for _, n := range names {
		r.linkerdServer(servers[n], nsMode, defaultDeny, authns)
	}
}

// linkerdMTLSOverrides records the per-port modes of the overrides on their Servers.
func (r *renderer) linkerdMTLSOverrides(m *v1alpha1.MTLSSpec, nsMode v1alpha1.MTLSMode, path *field.Path, servers map[string]*lkServer) {
	for i, o := range m.Overrides {
		p := path.Child("overrides").Index(i)
		if errs := validateWorkloadSelector(&o.Selector, p.Child("selector")); len(errs) > 0 {
			r.errs = append(r.errs, errs...)
			continue
		}
		if o.Name != "" {
			if errs := validation.IsDNS1123Label(o.Name); len(errs) > 0 {
				r.errs = append(r.errs, field.Invalid(p.Child("name"), o.Name, strings.Join(errs, "; ")))
				continue
			}
		}
		if o.Mode == "" && len(o.Ports) == 0 {
			r.errs = append(r.errs, field.Required(p, "an override needs mode or ports"))
			continue
		}
		if o.Mode != "" {
			if _, ok := meshsem.LinkerdPolicyForMode(o.Mode); !ok {
				r.errs = append(r.errs, unsupportedMTLSMode(p.Child("mode"), o.Mode))
				continue
			}
			// A workload-wide mode equal to the namespace's changes nothing. A different one would
			// need the pods' own default-inbound-policy annotation, which belongs to their
			// workload, not to meshguard.
			if o.Mode != nsMode {
				r.unsupported = append(r.unsupported, p.Child("mode").String()+
					": Linkerd sets inbound policy per Server port, not per workload; list the workload's ports under ports with their mode")
			}
		}
		for j, pm := range o.Ports {
			pp := p.Child("ports").Index(j)
			if !validPort(pm.Port) {
				r.errs = append(r.errs, field.Invalid(pp.Child("port"), pm.Port, "must be between 1 and 65535"))
				continue
			}
			if pm.Mode == "" {
				r.errs = append(r.errs, field.Required(pp.Child("mode"), "a port needs a mode"))
				continue
			}
			if _, ok := meshsem.LinkerdPolicyForMode(pm.Mode); !ok {
				r.errs = append(r.errs, unsupportedMTLSMode(pp.Child("mode"), pm.Mode))
				continue
			}
			s := r.lkServerFor(servers, o.Selector.MatchLabels, pm.Port, pp)
			if s.portMode != "" && s.portMode != pm.Mode {
				r.errs = append(r.errs, field.Invalid(pp.Child("mode"), pm.Mode,
					fmt.Sprintf("another override sets port %d of the same workloads to %s", pm.Port, s.portMode)))
				continue
			}
			s.portMode = pm.Mode
		}
	}
}

// linkerdRules translates the rules and attaches them to the Servers of their ports.
func (r *renderer) linkerdRules(az *v1alpha1.AuthorizationSpec, path *field.Path, servers map[string]*lkServer) {
	r.forEachRule(az, path, func(rule *v1alpha1.AuthorizationRule, p *field.Path) {
		r.checkPaths(rule, p)
		lr, ports, ok := r.linkerdRule(rule, p)
		if !ok {
			return
		}
		var labels map[string]string
		if rule.Selector != nil {
			labels = rule.Selector.MatchLabels
		}
		for _, port := range ports {
			s := r.lkServerFor(servers, labels, port, p)
			s.rules = append(s.rules, lr)
		}
	})
}

// linkerdRule validates one rule and translates what Linkerd can express; ok is false when
// anything was invalid or unsupported.
func (r *renderer) linkerdRule(rule *v1alpha1.AuthorizationRule, path *field.Path) (lr *lkRule, ports []int32, ok bool) {
	nerr, nuns := len(r.errs), len(r.unsupported)
	lr = &lkRule{name: rule.Name}
	switch rule.Action {
	case "", v1alpha1.ActionAllow:
	case v1alpha1.ActionDeny:
		// AuthorizationPolicy only authorizes; nothing in Linkerd's policy subtracts from what
		// another policy or the Server's accessPolicy admits.
		r.unsupported = append(r.unsupported, path.Child("action").String()+
			": Linkerd has no deny policies (an AuthorizationPolicy can only authorize); leave the senders out of the Allow rules instead")
	default:
		r.errs = append(r.errs, field.NotSupported(path.Child("action"), rule.Action, []string{string(v1alpha1.ActionAllow), string(v1alpha1.ActionDeny)}))
	}
	if rule.Selector != nil {
		r.errs = append(r.errs, validateWorkloadSelector(rule.Selector, path.Child("selector"))...)
	}
	if rule.From == nil && rule.To == nil {
		r.errs = append(r.errs, field.Required(path, "a rule needs from or to"))
		return nil, nil, false
	}

	if f := rule.From; f != nil {
		r.linkerdRuleFrom(f, path.Child("from"), lr)
	} else {
		lr.anySource = true
	}

	tp := path.Child("to")
	t := rule.To
	if t == nil || len(t.Ports) == 0 {
		// A Server has one port, and Linkerd has no policy for "every port of a pod" short of the
		// pod's default policy, which meshguard does not own.
		r.unsupported = append(r.unsupported, tp.Child("ports").String()+
			": Linkerd authorizes per Server port; ports are required")
	}
	if t != nil {
		ports = r.linkerdPorts(t.Ports, tp.Child("ports"))
		lr.matches = r.linkerdMatches(t, tp)
		if len(t.Methods)+len(t.Paths)+len(t.Ports) == 0 {
			r.errs = append(r.errs, field.Required(tp, "to needs at least one of methods, paths or ports"))
		}
	}
	if len(r.errs) > nerr || len(r.unsupported) > nuns {
		return nil, nil, false
	}
	return lr, ports, true
}

// linkerdRuleFrom translates the senders of a rule.
func (r *renderer) linkerdRuleFrom(f *v1alpha1.RuleSource, fp *field.Path, lr *lkRule) {
	if len(f.ServiceAccounts)+len(f.Namespaces)+len(f.RequestPrincipals)+len(f.IPBlocks) == 0 {
		r.errs = append(r.errs, field.Required(fp, "from needs at least one of serviceAccounts, namespaces, requestPrincipals or ipBlocks"))
		return
	}
	if len(f.RequestPrincipals) > 0 {
		r.unsupported = append(r.unsupported, fp.Child("requestPrincipals").String()+
			": Linkerd does not authenticate requests by JSON Web Token; name the senders by serviceAccounts or namespaces")
	}
	namespaces := r.dnsLabelSet(f.Namespaces, fp.Child("namespaces"))
	inNamespaces := map[string]bool{}
	for _, ns := range namespaces {
		inNamespaces[ns] = true
	}

	var ids []string
	for j, sa := range f.ServiceAccounts {
		id, ns, err := r.linkerdServiceAccountIdentity(sa)
		if err != nil {
			r.errs = append(r.errs, field.Invalid(fp.Child("serviceAccounts").Index(j), string(sa), err.Error()))
			continue
		}
		// serviceAccounts AND namespaces: a service account matches only when it also lives in one
		// of the namespaces. Linkerd ANDs the authentications of a policy, but two
		// MeshTLSAuthentications (accounts; *.namespace) would need one client identity to be in
		// both, which is exactly this intersection, so it is computed here into one list.
		if len(f.Namespaces) > 0 && !inNamespaces[ns] {
			continue
		}
		ids = append(ids, id)
	}
	switch {
	case len(f.ServiceAccounts) > 0:
		lr.identities = sortedSet(ids)
		lr.noSender = len(lr.identities) == 0
	case len(f.Namespaces) > 0:
		for _, ns := range namespaces {
			// "*." matches every service account of the namespace; Linkerd matches the * against
			// one DNS label only.
			ids = append(ids, "*."+r.linkerdIdentitySuffix(ns))
		}
		lr.identities = sortedSet(ids)
	}

	for j, c := range f.IPBlocks {
		if _, err := netip.ParsePrefix(c); err != nil {
			r.errs = append(r.errs, field.Invalid(fp.Child("ipBlocks").Index(j), c, "must be a CIDR such as 10.0.0.0/8"))
		}
	}
	lr.networks = sortedSet(f.IPBlocks)
}

// linkerdServiceAccountIdentity is the Linkerd identity of a "namespace/name" service account:
// <name>.<namespace>.serviceaccount.identity.<control plane namespace>.<trust domain>.
func (r *renderer) linkerdServiceAccountIdentity(sa v1alpha1.ServiceAccountRef) (id, ns string, err error) {
	ns, name, ok := strings.Cut(string(sa), "/")
	if !ok || len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
		return "", "", fmt.Errorf("must be written namespace/name, for example frontend/web")
	}
	return name + "." + r.linkerdIdentitySuffix(ns), ns, nil
}

// linkerdIdentitySuffix is what follows the service account in the identities of a namespace.
// Linkerd's identities are lower-case DNS names (its CRD refuses capitals), and DNS names are
// case-insensitive, so the trust domain is lower-cased.
func (r *renderer) linkerdIdentitySuffix(ns string) string {
	return ns + ".serviceaccount.identity." + r.opts.LinkerdNamespace + "." + strings.ToLower(r.opts.TrustDomain)
}

// linkerdPorts validates, sorts and dedupes a rule's ports.
func (r *renderer) linkerdPorts(in []int32, path *field.Path) []int32 {
	seen := map[int32]bool{}
	var out []int32
	for j, p := range in {
		if !validPort(p) {
			r.errs = append(r.errs, field.Invalid(path.Index(j), p, "must be between 1 and 65535"))
			continue
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// linkerdMatches turns methods and paths into HTTPRoute matches: one per path and method (a
// match ANDs its path and method; the matches of a route are ORed). It returns nil when the rule
// admits every request.
//
// Paths are Istio-style, and each becomes the Linkerd match that admits exactly the same request
// paths, never more:
//   - "*" is any path;
//   - "/*" is every path: PathPrefix "/";
//   - "/api/*" is, in Istio, every path that starts with the string "/api/" (and not "/api").
//     Linkerd's PathPrefix cannot say that: the proxy trims trailing slashes from the prefix and
//     the path before comparing whole segments, so PathPrefix "/api/" also matches "/api"
//     (linkerd2-proxy linkerd/http/route/src/http/match/path.rs, MatchPath::Prefix; its test
//     path_prefix asserts that "/foo/" matches "/foo"). So it becomes RegularExpression
//     "/api/.*": the policy controller passes it to the proxy as a regex
//     (policy-controller/k8s/index/src/routes/http.rs, path_match), and the proxy only accepts a
//     regex match that spans the whole path (path.rs, MatchPath::Regex: start 0, end len);
//   - a prefix that does not end at a segment ("/api*") is unsupported: Istio's "/api*" also
//     matches "/apis", and meshguard keeps Linkerd's routes to whole segments;
//   - a suffix ("*.json") is unsupported: HTTPRoute has no suffix match;
//   - anything else is an Exact path (the proxy compares it with the whole path, as Istio does).
//
// In a regex, every character of the prefix is quoted (regexp.QuoteMeta; the quoted characters
// are metacharacters of Rust's regex crate too), so a "*" inside a path stays a literal "*", as it
// is for Istio.
func (r *renderer) linkerdMatches(t *v1alpha1.RuleTarget, tp *field.Path) []map[string]any {
	for j, m := range t.Methods {
		if !isUpperAlpha(m) {
			r.errs = append(r.errs, field.Invalid(tp.Child("methods").Index(j), m, "must be an HTTP method in capitals, for example GET"))
			continue
		}
		if !linkerdHTTPMethods[m] {
			r.unsupported = append(r.unsupported, tp.Child("methods").Index(j).String()+
				": Linkerd's HTTPRoute matches only the standard methods GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE and PATCH")
		}
	}
	methods := sortedSet(t.Methods)

	type pathMatch struct{ typ, value string }
	var paths []pathMatch
	anyPath := t.Paths == nil
	for j, pa := range t.Paths {
		pp := tp.Child("paths").Index(j)
		switch {
		case !strings.HasPrefix(pa, "/") && !strings.HasPrefix(pa, "*"):
			r.errs = append(r.errs, field.Invalid(pp, pa, "must start with / or *"))
		case pa == "*":
			anyPath = true
		case strings.HasPrefix(pa, "*"):
			r.unsupported = append(r.unsupported, pp.String()+
				": Linkerd's HTTPRoute has no suffix match; list the exact paths or a prefix such as /api/*")
		case pa == "/*":
			paths = append(paths, pathMatch{linkerdPathPrefix, "/"})
		case strings.HasSuffix(pa, "/*"):
			re := regexp.QuoteMeta(strings.TrimSuffix(pa, "*")) + ".*"
			if len(re) > linkerdMaxPathLength {
				r.unsupported = append(r.unsupported, pp.String()+fmt.Sprintf(
					": as a Linkerd regular expression (%d characters) it exceeds the %d characters of an HTTPRoute path", len(re), linkerdMaxPathLength))
				continue
			}
			paths = append(paths, pathMatch{linkerdPathRegularExpression, re})
		case strings.HasSuffix(pa, "*"):
			r.unsupported = append(r.unsupported, pp.String()+
				": Linkerd matches path prefixes by whole segments; end the prefix with /* (for example /api/*)")
		default:
			paths = append(paths, pathMatch{linkerdPathExact, pa})
		}
	}
	if anyPath {
		paths = nil
	}
	if len(paths) == 0 && len(methods) == 0 {
		return nil
	}
	sort.Slice(paths, func(i, j int) bool {
		if paths[i].value != paths[j].value {
			return paths[i].value < paths[j].value
		}
		return paths[i].typ < paths[j].typ
	})

	var matches []map[string]any
	addMatch := func(pm *pathMatch, method string) {
		m := map[string]any{}
		if pm != nil {
			m["path"] = map[string]any{"type": pm.typ, "value": pm.value}
		}
		if method != "" {
			m["method"] = method
		}
		matches = append(matches, m)
	}
	switch {
	case len(paths) == 0:
		// A match without a path is stored with the CRD's default path, PathPrefix "/" (every
		// path): written here so that the live object equals the rendered one.
		every := pathMatch{linkerdPathPrefix, "/"}
		for _, m := range methods {
			addMatch(&every, m)
		}
	case len(methods) == 0:
		for i := range paths {
			addMatch(&paths[i], "")
		}
	default:
		for i := range paths {
			for _, m := range methods {
				addMatch(&paths[i], m)
			}
		}
	}
	if len(matches) > linkerdMaxMatches {
		r.unsupported = append(r.unsupported, tp.String()+fmt.Sprintf(
			": %d combinations of path and method exceed the %d matches of a Linkerd HTTPRoute; split the rule", len(matches), linkerdMaxMatches))
	}
	return matches
}

// lkServerFor returns the Server of a selector and port, creating it on first use. Its name is
// "<profile>-<port>-<selector>", the selector being "all" for every pod or the labels hash of
// mtlsOverrideName, so that the name stays put however the profile is reordered.
func (r *renderer) lkServerFor(servers map[string]*lkServer, labels map[string]string, port int32, source *field.Path) *lkServer {
	sel := "all"
	if len(labels) > 0 {
		sel = "wl-" + labelsHash(labels)
	}
	name := r.name(strconv.Itoa(int(port)), sel)
	if s, ok := servers[name]; ok {
		return s
	}
	s := &lkServer{name: name, labels: labels, port: port, source: source}
	servers[name] = s
	return s
}

// linkerdOverlaps refuses Servers that would select the same pod port. Linkerd picks one of two
// overlapping Servers (its webhook only catches identical selectors), so the profile's meaning
// would depend on which. Where one selector's labels are a subset of another's, every pod of the
// narrower selector is selected twice. Selectors with different labels that happen to match the
// same pods cannot be seen from the profile; Linkerd's admission webhook and status report those.
func (r *renderer) linkerdOverlaps(servers map[string]*lkServer) {
	list := make([]*lkServer, 0, len(servers))
	for _, s := range servers {
		list = append(list, s)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].name < list[j].name })
	for i, a := range list {
		for _, b := range list[i+1:] {
			if a.port != b.port || !(labelsSubset(a.labels, b.labels) || labelsSubset(b.labels, a.labels)) {
				continue
			}
			r.unsupported = append(r.unsupported, fmt.Sprintf(
				"%s: Linkerd allows one Server per pod port, and the selectors %s and %s (from %s) both select port %d of some pods; use the same selector for both",
				b.source, selectorString(b.labels), selectorString(a.labels), a.source, a.port))
		}
	}
}

func labelsSubset(sub, super map[string]string) bool {
	for k, v := range sub {
		if w, ok := super[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func selectorString(labels map[string]string) string {
	if len(labels) == 0 {
		return "{} (every pod)"
	}
	pairs := make([]string, 0, len(labels))
	for k, v := range labels {
		pairs = append(pairs, k+"="+v)
	}
	sort.Strings(pairs)
	return "{" + strings.Join(pairs, ",") + "}"
}

// linkerdServer renders a Server, and the routes, policies and authentications of its rules.
func (r *renderer) linkerdServer(s *lkServer, nsMode v1alpha1.MTLSMode, defaultDeny bool, authns map[string]bool) {
	mode := nsMode
	if s.portMode != "" {
		mode = s.portMode
	}
	// What the Server admits when no AuthorizationPolicy does. A port with rules admits only what
	// they allow (as an Istio ALLOW policy does on its workloads); with defaultDeny nothing else
	// is admitted either, whatever the port's mTLS mode; otherwise an mTLS override's port admits
	// what its mode admits.
	access, _ := meshsem.LinkerdPolicyForMode(mode)
	if len(s.rules) > 0 || defaultDeny {
		access = meshsem.LinkerdDenyPolicy(mode, AuthorizationShadow(r.p))
	}
	selector := map[string]any{}
	if len(s.labels) > 0 {
		selector["matchLabels"] = copyLabels(s.labels)
	}
	// proxyProtocol "unknown" (protocol detection) is what the Server CRD defaults it to: written
	// here so that the live object equals the rendered one (a defaulted field would read as drift).
	r.add(gvkLinkerdServer, s.name, map[string]any{"spec": map[string]any{
		"podSelector":   selector,
		"port":          int64(s.port),
		"accessPolicy":  access,
		"proxyProtocol": linkerdProxyProtocolUnknown,
	}})

	hasRoutes := false
	for _, lr := range s.rules {
		if lr.matches != nil {
			hasRoutes = true
		}
	}
	portName := strconv.Itoa(int(s.port))
	anyRoute := ""
	for _, lr := range s.rules {
		refs := r.linkerdAuthentications(lr, mode, authns)
		if refs == nil {
			// The rule admits nobody (no service account in its namespaces): the Server still
			// exists with accessPolicy deny, so the port admits nothing the rule was meant to.
			continue
		}
		name := r.name("rule", lr.name, portName)
		if lr.matches != nil {
			r.linkerdHTTPRoute(name, s.name, lr.matches)
			r.linkerdAuthorizationPolicy(name, gvkLinkerdHTTPRoute.Kind, name, refs)
			continue
		}
		// A rule without methods and paths admits its senders to the whole Server.
		r.linkerdAuthorizationPolicy(name, gvkLinkerdServer.Kind, s.name, refs)
		if hasRoutes {
			// Once a Server has HTTPRoutes, requests that match none of them are refused (404)
			// whatever the policies on the Server, so this rule's senders also get a route that
			// matches every path. A request matches one route only, the most specific one: on the
			// paths of the other rules' routes, these senders are admitted by the Server policy
			// above if Linkerd applies Server policies to routes, and refused otherwise. Either
			// way they are never admitted beyond their own rule.
			if anyRoute == "" {
				anyRoute = s.name + "-any"
				r.linkerdHTTPRoute(anyRoute, s.name, []map[string]any{{"path": map[string]any{"type": linkerdPathPrefix, "value": "/"}}})
			}
			r.linkerdAuthorizationPolicy(name+"-any", gvkLinkerdHTTPRoute.Kind, anyRoute, refs)
		}
	}
}

// linkerdAuthentications renders the authentications a rule requires on a Server of the given
// mode and returns the references to them (ANDed by Linkerd); nil when the rule admits nobody.
//
// On a Strict port every admitted request must be mTLS, so a rule that names no identities (only
// ipBlocks, or no from at all) also requires a meshed client (identity "*"): a
// NetworkAuthentication alone admits plaintext. On Permissive and Disable ports a rule without
// from admits every network.
func (r *renderer) linkerdAuthentications(lr *lkRule, mode v1alpha1.MTLSMode, authns map[string]bool) []any {
	if lr.noSender {
		return nil
	}
	strict := meshsem.Mode(mode) == v1alpha1.MTLSStrict
	var refs []any
	if lr.identities != nil {
		refs = append(refs, r.linkerdMeshTLSAuthentication(r.name("rule", lr.name), lr.identities, authns))
	} else if strict {
		refs = append(refs, r.linkerdMeshTLSAuthentication(r.name("meshed"), []string{"*"}, authns))
	}
	switch {
	case lr.networks != nil:
		refs = append(refs, r.linkerdNetworkAuthentication(r.name("rule", lr.name), lr.networks, authns))
	case lr.anySource && !strict:
		refs = append(refs, r.linkerdNetworkAuthentication(r.name("any-network"), []string{"0.0.0.0/0", "::/0"}, authns))
	}
	return refs
}

func (r *renderer) linkerdMeshTLSAuthentication(name string, identities []string, authns map[string]bool) any {
	if !authns["m/"+name] {
		authns["m/"+name] = true
		ids := make([]any, len(identities))
		for i, id := range identities {
			ids[i] = id
		}
		r.add(gvkLinkerdMeshTLSAuthentication, name, map[string]any{"spec": map[string]any{"identities": ids}})
	}
	return linkerdRef(gvkLinkerdMeshTLSAuthentication.Kind, name)
}

func (r *renderer) linkerdNetworkAuthentication(name string, cidrs []string, authns map[string]bool) any {
	if !authns["n/"+name] {
		authns["n/"+name] = true
		nets := make([]any, len(cidrs))
		for i, c := range cidrs {
			nets[i] = map[string]any{"cidr": c}
		}
		r.add(gvkLinkerdNetworkAuthentication, name, map[string]any{"spec": map[string]any{"networks": nets}})
	}
	return linkerdRef(gvkLinkerdNetworkAuthentication.Kind, name)
}

func (r *renderer) linkerdAuthorizationPolicy(name, targetKind, target string, refs []any) {
	r.add(gvkLinkerdAuthorizationPolicy, name, map[string]any{"spec": map[string]any{
		"targetRef":                  linkerdRef(targetKind, target),
		"requiredAuthenticationRefs": refs,
	}})
}

// linkerdHTTPRoute renders an inbound HTTPRoute of a Server, its matches split into rules of at
// most linkerdMaxMatchesPerRule.
func (r *renderer) linkerdHTTPRoute(name, server string, matches []map[string]any) {
	var rules []any
	for start := 0; start < len(matches); start += linkerdMaxMatchesPerRule {
		end := min(start+linkerdMaxMatchesPerRule, len(matches))
		ms := make([]any, 0, end-start)
		for _, m := range matches[start:end] {
			ms = append(ms, m)
		}
		rules = append(rules, map[string]any{"matches": ms})
	}
	r.add(gvkLinkerdHTTPRoute, name, map[string]any{"spec": map[string]any{
		"parentRefs": []any{linkerdRef(gvkLinkerdServer.Kind, server)},
		"rules":      rules,
	}})
}

func linkerdRef(kind, name string) map[string]any {
	return map[string]any{"group": linkerdPolicyGroup, "kind": kind, "name": name}
}

func copyLabels(in map[string]string) map[string]any {
	out := make(map[string]any, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}
