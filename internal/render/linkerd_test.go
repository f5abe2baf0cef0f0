package render

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation/field"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// lkOpt changes a Linkerd test profile.
type lkOpt func(*v1alpha1.MeshSecurityProfile)

// lkProfile is a Linkerd profile named p in namespace shop, changed by opts.
func lkProfile(opts ...lkOpt) *v1alpha1.MeshSecurityProfile {
	p := &v1alpha1.MeshSecurityProfile{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "shop", UID: "uid-1"},
		Spec:       v1alpha1.MeshSecurityProfileSpec{Mesh: v1alpha1.MeshLinkerd},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func withMTLS(m v1alpha1.MTLSMode) lkOpt {
	return func(p *v1alpha1.MeshSecurityProfile) { p.Spec.MTLS = &v1alpha1.MTLSSpec{Mode: m} }
}

func withPortMode(app string, port int32, m v1alpha1.MTLSMode) lkOpt {
	return func(p *v1alpha1.MeshSecurityProfile) {
		if p.Spec.MTLS == nil {
			p.Spec.MTLS = &v1alpha1.MTLSSpec{}
		}
		p.Spec.MTLS.Overrides = append(p.Spec.MTLS.Overrides, v1alpha1.MTLSOverride{
			Selector: v1alpha1.WorkloadSelector{MatchLabels: map[string]string{"app": app}},
			Ports:    []v1alpha1.PortMTLS{{Port: port, Mode: m}},
		})
	}
}

func withDefaultDeny() lkOpt {
	return func(p *v1alpha1.MeshSecurityProfile) {
		if p.Spec.Authorization == nil {
			p.Spec.Authorization = &v1alpha1.AuthorizationSpec{}
		}
		p.Spec.Authorization.DefaultDeny = true
	}
}

func withRule(r v1alpha1.AuthorizationRule) lkOpt {
	return func(p *v1alpha1.MeshSecurityProfile) {
		if p.Spec.Authorization == nil {
			p.Spec.Authorization = &v1alpha1.AuthorizationSpec{}
		}
		p.Spec.Authorization.Rules = append(p.Spec.Authorization.Rules, r)
	}
}

// allowRule admits from to the ports of app's pods.
func allowRule(name, app string, from *v1alpha1.RuleSource, ports ...int32) v1alpha1.AuthorizationRule {
	return v1alpha1.AuthorizationRule{
		Name:     name,
		Selector: &v1alpha1.WorkloadSelector{MatchLabels: map[string]string{"app": app}},
		From:     from,
		To:       &v1alpha1.RuleTarget{Ports: ports},
	}
}

func fromAccounts(sas ...v1alpha1.ServiceAccountRef) *v1alpha1.RuleSource {
	return &v1alpha1.RuleSource{ServiceAccounts: sas}
}

func mustRenderLinkerd(g Gomega, p *v1alpha1.MeshSecurityProfile) *Result {
	res, err := Render(p, DefaultOptions())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Unsupported).To(BeEmpty())
	return res
}

func findObject(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

func TestLinkerdNamespaceDefaultPolicy(t *testing.T) {
	tests := []struct {
		name string
		opts []lkOpt
		want string
	}{
		{name: "a profile without mtls is Strict: only meshed clients", want: "all-authenticated"},
		{name: "an empty mode is Strict", opts: []lkOpt{withMTLS("")}, want: "all-authenticated"},
		{name: "Strict admits authenticated clients only", opts: []lkOpt{withMTLS(v1alpha1.MTLSStrict)}, want: "all-authenticated"},
		{name: "Permissive admits plaintext clients too", opts: []lkOpt{withMTLS(v1alpha1.MTLSPermissive)}, want: "all-unauthenticated"},
		{name: "Disable admits plaintext clients, as Linkerd cannot turn mTLS off between meshed pods", opts: []lkOpt{withMTLS(v1alpha1.MTLSDisable)}, want: "all-unauthenticated"},
		{name: "defaultDeny wins over Permissive", opts: []lkOpt{withMTLS(v1alpha1.MTLSPermissive), withDefaultDeny()}, want: "deny"},
		{name: "defaultDeny wins over Strict", opts: []lkOpt{withDefaultDeny()}, want: "deny"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			res := mustRenderLinkerd(g, lkProfile(tt.opts...))
			g.Expect(res.NamespaceAnnotations).To(Equal(map[string]string{LinkerdDefaultInboundPolicyAnnotation: tt.want}))
		})
	}
}

func TestLinkerdUnknownModeIsAnError(t *testing.T) {
	g := NewWithT(t)
	_, err := Render(lkProfile(withMTLS("Off")), DefaultOptions())
	var invalid *InvalidSpecError
	g.Expect(err).To(BeAssignableToTypeOf(invalid))
	g.Expect(err.Error()).To(ContainSubstring("spec.mtls.mode"))
}

func TestLinkerdServerAccessPolicy(t *testing.T) {
	web := fromAccounts("frontend/web")
	tests := []struct {
		name string
		opts []lkOpt
		want string
	}{
		{name: "a Permissive port of a Strict namespace admits plaintext", opts: []lkOpt{withPortMode("legacy", 8080, v1alpha1.MTLSPermissive)}, want: "all-unauthenticated"},
		{name: "a Strict port of a Permissive namespace admits meshed clients only", opts: []lkOpt{withMTLS(v1alpha1.MTLSPermissive), withPortMode("legacy", 8080, v1alpha1.MTLSStrict)}, want: "all-authenticated"},
		{name: "defaultDeny keeps a Permissive port closed to whatever no rule admits", opts: []lkOpt{withPortMode("legacy", 8080, v1alpha1.MTLSPermissive), withDefaultDeny()}, want: "deny"},
		{name: "a port with a rule admits only what its rules admit", opts: []lkOpt{withRule(allowRule("r", "legacy", web, 8080))}, want: "deny"},
		{name: "a Permissive port with a rule still admits only what its rules admit", opts: []lkOpt{withPortMode("legacy", 8080, v1alpha1.MTLSPermissive), withRule(allowRule("r", "legacy", web, 8080))}, want: "deny"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			res := mustRenderLinkerd(g, lkProfile(tt.opts...))
			var servers []*unstructured.Unstructured
			for _, o := range res.Objects {
				if o.GetKind() == "Server" {
					servers = append(servers, o)
				}
			}
			g.Expect(servers).To(HaveLen(1), "one Server for the selector and port")
			g.Expect(servers[0].GetAPIVersion()).To(Equal("policy.linkerd.io/v1beta3"))
			g.Expect(servers[0].Object["spec"]).To(HaveKeyWithValue("accessPolicy", tt.want))
			g.Expect(servers[0].Object["spec"]).To(HaveKeyWithValue("port", int64(8080)))
		})
	}
}

func TestLinkerdRuleAuthentications(t *testing.T) {
	tests := []struct {
		name string
		opts []lkOpt
		// want lists the kinds/names of the required authentications of the policy p-rule-r-8080.
		want []string
	}{
		{
			name: "service accounts need their mesh identities",
			opts: []lkOpt{withRule(allowRule("r", "api", fromAccounts("frontend/web"), 8080))},
			want: []string{"MeshTLSAuthentication/p-rule-r"},
		},
		{
			name: "addresses on a Strict port also need a meshed client, as a NetworkAuthentication alone admits plaintext",
			opts: []lkOpt{withRule(allowRule("r", "api", &v1alpha1.RuleSource{IPBlocks: []string{"10.0.0.0/8"}}, 8080))},
			want: []string{"MeshTLSAuthentication/p-meshed", "NetworkAuthentication/p-rule-r"},
		},
		{
			name: "addresses on a Permissive port are enough",
			opts: []lkOpt{withMTLS(v1alpha1.MTLSPermissive), withRule(allowRule("r", "api", &v1alpha1.RuleSource{IPBlocks: []string{"10.0.0.0/8"}}, 8080))},
			want: []string{"NetworkAuthentication/p-rule-r"},
		},
		{
			name: "service accounts and addresses are both required, as the lists of from are ANDed",
			opts: []lkOpt{withRule(allowRule("r", "api", &v1alpha1.RuleSource{ServiceAccounts: []v1alpha1.ServiceAccountRef{"frontend/web"}, IPBlocks: []string{"10.0.0.0/8"}}, 8080))},
			want: []string{"MeshTLSAuthentication/p-rule-r", "NetworkAuthentication/p-rule-r"},
		},
		{
			name: "a rule without from admits any meshed client on a Strict port",
			opts: []lkOpt{withRule(allowRule("r", "api", nil, 8080))},
			want: []string{"MeshTLSAuthentication/p-meshed"},
		},
		{
			name: "a rule without from admits every network on a Disable port",
			opts: []lkOpt{withMTLS(v1alpha1.MTLSDisable), withRule(allowRule("r", "api", nil, 8080))},
			want: []string{"NetworkAuthentication/p-any-network"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			res := mustRenderLinkerd(g, lkProfile(tt.opts...))
			ap := findObject(res.Objects, "AuthorizationPolicy", "p-rule-r-8080")
			g.Expect(ap).NotTo(BeNil())
			refs, _, _ := unstructured.NestedSlice(ap.Object, "spec", "requiredAuthenticationRefs")
			var got []string
			for _, ref := range refs {
				m := ref.(map[string]any)
				g.Expect(m).To(HaveKeyWithValue("group", "policy.linkerd.io"))
				got = append(got, m["kind"].(string)+"/"+m["name"].(string))
				g.Expect(findObject(res.Objects, m["kind"].(string), m["name"].(string))).NotTo(BeNil(), "every referenced authentication is generated")
			}
			g.Expect(got).To(Equal(tt.want))
		})
	}
}

func TestLinkerdIdentities(t *testing.T) {
	tests := []struct {
		name  string
		from  *v1alpha1.RuleSource
		opts  []lkOpt
		trust string
		want  []string
	}{
		{
			name: "a service account is <name>.<namespace>.serviceaccount.identity.<control plane namespace>.<trust domain>",
			from: fromAccounts("frontend/web"),
			want: []string{"web.frontend.serviceaccount.identity.linkerd.cluster.local"},
		},
		{
			name: "a namespace is every service account of it",
			from: &v1alpha1.RuleSource{Namespaces: []string{"ops"}},
			want: []string{"*.ops.serviceaccount.identity.linkerd.cluster.local"},
		},
		{
			name: "service accounts and namespaces keep only the accounts in those namespaces",
			from: &v1alpha1.RuleSource{ServiceAccounts: []v1alpha1.ServiceAccountRef{"other/web", "ops/bot", "frontend/web"}, Namespaces: []string{"ops", "frontend"}},
			want: []string{"bot.ops.serviceaccount.identity.linkerd.cluster.local", "web.frontend.serviceaccount.identity.linkerd.cluster.local"},
		},
		{
			name:  "the trust domain is lower-cased, as Linkerd identities are lower-case DNS names",
			from:  fromAccounts("frontend/web"),
			trust: "Prod.Example.COM",
			want:  []string{"web.frontend.serviceaccount.identity.linkerd.prod.example.com"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			p := lkProfile(withRule(allowRule("r", "api", tt.from, 8080)))
			p.Spec.TrustDomain = tt.trust
			res := mustRenderLinkerd(g, p)
			m := findObject(res.Objects, "MeshTLSAuthentication", "p-rule-r")
			g.Expect(m).NotTo(BeNil())
			ids, _, _ := unstructured.NestedStringSlice(m.Object, "spec", "identities")
			g.Expect(ids).To(Equal(tt.want))
		})
	}
}

func TestLinkerdRuleThatAdmitsNobodyGetsNoPolicy(t *testing.T) {
	g := NewWithT(t)
	from := &v1alpha1.RuleSource{ServiceAccounts: []v1alpha1.ServiceAccountRef{"frontend/web"}, Namespaces: []string{"ops"}}
	res := mustRenderLinkerd(g, lkProfile(withRule(allowRule("r", "api", from, 8080))))
	g.Expect(findObject(res.Objects, "Server", "p-8080-wl-142c949c")).NotTo(BeNil(), "the port is still closed to everyone else")
	for _, o := range res.Objects {
		g.Expect(o.GetKind()).NotTo(Equal("AuthorizationPolicy"))
		g.Expect(o.GetKind()).NotTo(Equal("MeshTLSAuthentication"))
	}
}

func TestLinkerdPathMatches(t *testing.T) {
	tests := []struct {
		name        string
		to          v1alpha1.RuleTarget
		want        []map[string]any
		unsupported string
	}{
		{
			name: "an Istio prefix /api/* is a regular expression, since Linkerd's PathPrefix /api/ also matches /api",
			to:   v1alpha1.RuleTarget{Paths: []string{"/api/*"}},
			want: []map[string]any{{"path": map[string]any{"type": "RegularExpression", "value": "/api/.*"}}},
		},
		{
			name: "the prefix of a regular expression is quoted, so a * or . inside it stays literal as in Istio",
			to:   v1alpha1.RuleTarget{Paths: []string{"/v1.0/a*b/(x)/*"}},
			want: []map[string]any{{"path": map[string]any{"type": "RegularExpression", "value": `/v1\.0/a\*b/\(x\)/.*`}}},
		},
		{
			name: "the Istio prefix /* is every path, Linkerd's PathPrefix /",
			to:   v1alpha1.RuleTarget{Paths: []string{"/*"}},
			want: []map[string]any{{"path": map[string]any{"type": "PathPrefix", "value": "/"}}},
		},
		{
			name: "a plain path is exact",
			to:   v1alpha1.RuleTarget{Paths: []string{"/healthz"}},
			want: []map[string]any{{"path": map[string]any{"type": "Exact", "value": "/healthz"}}},
		},
		{
			name: "paths and methods are crossed, each match ANDing a path and a method",
			to:   v1alpha1.RuleTarget{Paths: []string{"/b", "/a"}, Methods: []string{"POST", "GET"}},
			want: []map[string]any{
				{"path": map[string]any{"type": "Exact", "value": "/a"}, "method": "GET"},
				{"path": map[string]any{"type": "Exact", "value": "/a"}, "method": "POST"},
				{"path": map[string]any{"type": "Exact", "value": "/b"}, "method": "GET"},
				{"path": map[string]any{"type": "Exact", "value": "/b"}, "method": "POST"},
			},
		},
		{
			name: "methods alone match any path, written as the CRD's default path PathPrefix / so that it is not drift",
			to:   v1alpha1.RuleTarget{Methods: []string{"GET"}},
			want: []map[string]any{{"path": map[string]any{"type": "PathPrefix", "value": "/"}, "method": "GET"}},
		},
		{
			name: "the any-path * needs no route at all",
			to:   v1alpha1.RuleTarget{Paths: []string{"*"}},
			want: nil,
		},
		{
			name: "the any-path * beside other paths makes the rule match every path",
			to:   v1alpha1.RuleTarget{Paths: []string{"*", "/api/*"}, Methods: []string{"GET"}},
			want: []map[string]any{{"path": map[string]any{"type": "PathPrefix", "value": "/"}, "method": "GET"}},
		},
		{name: "a suffix is unsupported", to: v1alpha1.RuleTarget{Paths: []string{"*.json"}}, unsupported: "spec.to.paths[0]: Linkerd's HTTPRoute has no suffix match"},
		{name: "a prefix inside a segment is unsupported", to: v1alpha1.RuleTarget{Paths: []string{"/api*"}}, unsupported: "spec.to.paths[0]: Linkerd matches path prefixes by whole segments"},
		{name: "a prefix longer than an HTTPRoute path once quoted is unsupported", to: v1alpha1.RuleTarget{Paths: []string{"/" + strings.Repeat(".", 600) + "/*"}},
			unsupported: "spec.to.paths[0]: as a Linkerd regular expression (1204 characters) it exceeds the 1024 characters"},
		{name: "a non-standard method is unsupported", to: v1alpha1.RuleTarget{Methods: []string{"PURGE"}}, unsupported: "spec.to.methods[0]: Linkerd's HTTPRoute matches only the standard methods"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			r := &renderer{p: lkProfile(), opts: DefaultOptions()}
			got := r.linkerdMatches(&tt.to, newPath("spec", "to"))
			g.Expect(r.errs).To(BeEmpty())
			if tt.unsupported != "" {
				g.Expect(r.unsupported).To(ContainElement(HavePrefix(tt.unsupported)))
				return
			}
			g.Expect(r.unsupported).To(BeEmpty())
			g.Expect(got).To(Equal(tt.want))
		})
	}
}

// linkerdProxyPathMatch is how Linkerd's proxy matches a request path against an HTTPRoute path
// match (linkerd2-proxy, linkerd/http/route/src/http/match/path.rs, MatchPath::match_length):
// Exact compares whole strings; PathPrefix "/" matches every path, and any other prefix is
// compared by whole segments after trailing slashes are trimmed from both; a regular expression
// must match the whole path.
func linkerdProxyPathMatch(typ, value, path string) bool {
	switch typ {
	case "Exact":
		return value == path
	case "PathPrefix":
		if value == "/" {
			return true
		}
		prefix := strings.TrimRight(value, "/")
		suffix, ok := strings.CutPrefix(strings.TrimRight(path, "/"), prefix)
		return ok && (suffix == "" || strings.HasPrefix(suffix, "/"))
	case "RegularExpression":
		return regexp.MustCompile(`^(?:` + value + `)$`).MatchString(path)
	}
	panic("unknown path match type " + typ)
}

// istioPathMatch is how Istio's AuthorizationPolicy matches a path of to.operation.paths: "*" is
// any path, a trailing "*" a prefix, a leading "*" a suffix, anything else an exact string
// (istio.io/latest/docs/reference/config/security/authorization-policy/, Operation.paths).
func istioPathMatch(pattern, path string) bool {
	switch {
	case pattern == "*":
		return true
	case strings.HasSuffix(pattern, "*"):
		return strings.HasPrefix(path, strings.TrimSuffix(pattern, "*"))
	case strings.HasPrefix(pattern, "*"):
		return strings.HasSuffix(path, strings.TrimPrefix(pattern, "*"))
	}
	return pattern == path
}

// TestLinkerdPathsMeanWhatIstioPathsMean replays request paths through the proxy's matching of the
// rendered HTTPRoute matches and through Istio's matching of the profile's paths: Linkerd must
// admit exactly the paths Istio admits, never one more (and never one fewer).
func TestLinkerdPathsMeanWhatIstioPathsMean(t *testing.T) {
	requests := []string{"/", "/api", "/api/", "/api/v1", "/api/v1/", "/api//x", "/apis", "/apix/y", "/v1.0/x", "/v1x0/x",
		"/healthz", "/healthz/", "/healthz/x", "/a*b/c", "/ab/c", "/aXb/c", "/other"}
	for _, pattern := range []string{"/api/*", "/api/v1/*", "/healthz", "/*", "/v1.0/*", "/a*b/*"} {
		t.Run(pattern, func(t *testing.T) {
			g := NewWithT(t)
			r := &renderer{p: lkProfile(), opts: DefaultOptions()}
			matches := r.linkerdMatches(&v1alpha1.RuleTarget{Paths: []string{pattern}}, newPath("spec", "to"))
			g.Expect(r.errs).To(BeEmpty())
			g.Expect(r.unsupported).To(BeEmpty())
			g.Expect(matches).To(HaveLen(1))
			pm := matches[0]["path"].(map[string]any)
			for _, req := range requests {
				g.Expect(linkerdProxyPathMatch(pm["type"].(string), pm["value"].(string), req)).To(Equal(istioPathMatch(pattern, req)),
					"request %s against %s rendered as %s %q", req, pattern, pm["type"], pm["value"])
			}
		})
	}
}

// TestLinkerdProxyPathMatchFollowsTheProxy checks the test's model of the proxy against the cases
// of the proxy's own test path_prefix: PathPrefix /foo/ matches /foo (why /api/* is not rendered
// as PathPrefix /api/).
func TestLinkerdProxyPathMatchFollowsTheProxy(t *testing.T) {
	g := NewWithT(t)
	for _, prefix := range []string{"/", "/foo", "/foo/"} {
		for _, path := range []string{"/foo", "/foo/", "/foo/bar", "/foo/bar/qux"} {
			g.Expect(linkerdProxyPathMatch("PathPrefix", prefix, path)).To(BeTrue(), "%s must match %s", prefix, path)
		}
		g.Expect(linkerdProxyPathMatch("PathPrefix", prefix, "/foobar")).To(Equal(prefix == "/"), "%s against /foobar", prefix)
	}
}

func TestLinkerdHTTPRouteStaysWithinGatewayLimits(t *testing.T) {
	g := NewWithT(t)
	var paths []string
	for i := range 10 {
		paths = append(paths, "/p"+string(rune('a'+i)))
	}
	rule := allowRule("r", "api", fromAccounts("frontend/web"), 8080)
	rule.To.Paths = paths
	rule.To.Methods = []string{"GET", "POST"}
	res := mustRenderLinkerd(g, lkProfile(withRule(rule)))
	route := findObject(res.Objects, "HTTPRoute", "p-rule-r-8080")
	g.Expect(route).NotTo(BeNil())
	rules, _, _ := unstructured.NestedSlice(route.Object, "spec", "rules")
	total := 0
	for _, r := range rules {
		ms := r.(map[string]any)["matches"].([]any)
		g.Expect(len(ms)).To(BeNumerically("<=", 8))
		total += len(ms)
	}
	g.Expect(total).To(Equal(20))

	paths = nil
	for i := range 65 {
		paths = append(paths, "/p"+strings.Repeat("x", i))
	}
	rule.To.Paths = paths
	res, err := Render(lkProfile(withRule(rule)), DefaultOptions())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Unsupported).To(ConsistOf(ContainSubstring("exceed the 128 matches")))
}

func TestLinkerdUnsupportedRendersNothing(t *testing.T) {
	tests := []struct {
		name string
		opts []lkOpt
		want string
	}{
		{
			name: "a Deny rule cannot be expressed, so not even the Allow rules are rendered",
			opts: []lkOpt{
				withRule(allowRule("ok", "api", fromAccounts("frontend/web"), 8080)),
				withRule(v1alpha1.AuthorizationRule{Name: "no", Action: v1alpha1.ActionDeny, From: &v1alpha1.RuleSource{IPBlocks: []string{"10.0.0.0/8"}}, To: &v1alpha1.RuleTarget{Ports: []int32{8080}}}),
			},
			want: "spec.authorization.rules[1].action: ",
		},
		{
			name: "request principals are JWT and cannot be expressed",
			opts: []lkOpt{withRule(allowRule("r", "api", &v1alpha1.RuleSource{RequestPrincipals: []string{"*"}}, 8080))},
			want: "spec.authorization.rules[0].from.requestPrincipals: ",
		},
		{
			name: "a rule without ports cannot be expressed",
			opts: []lkOpt{withRule(v1alpha1.AuthorizationRule{Name: "r", From: fromAccounts("frontend/web"), To: &v1alpha1.RuleTarget{Methods: []string{"GET"}}})},
			want: "spec.authorization.rules[0].to.ports: Linkerd authorizes per Server port; ports are required",
		},
		{
			name: "a rule with only from cannot be expressed either",
			opts: []lkOpt{withRule(v1alpha1.AuthorizationRule{Name: "r", From: fromAccounts("frontend/web")})},
			want: "spec.authorization.rules[0].to.ports: ",
		},
		{
			name: "JWT validation cannot be expressed",
			opts: []lkOpt{func(p *v1alpha1.MeshSecurityProfile) {
				p.Spec.RequestAuthentication = &v1alpha1.RequestAuthenticationSpec{Issuers: []v1alpha1.JWTIssuer{{Issuer: "https://auth.example.com"}}}
			}},
			want: "spec.requestAuthentication: ",
		},
		{
			name: "a workload-wide mode other than the namespace's cannot be expressed",
			opts: []lkOpt{func(p *v1alpha1.MeshSecurityProfile) {
				p.Spec.MTLS = &v1alpha1.MTLSSpec{Overrides: []v1alpha1.MTLSOverride{{
					Selector: v1alpha1.WorkloadSelector{MatchLabels: map[string]string{"app": "legacy"}},
					Mode:     v1alpha1.MTLSPermissive,
				}}}
			}},
			want: "spec.mtls.overrides[0].mode: ",
		},
		{
			name: "two Servers for the same pod port cannot be expressed",
			opts: []lkOpt{
				withRule(allowRule("a", "api", fromAccounts("frontend/web"), 8080)),
				withRule(v1alpha1.AuthorizationRule{Name: "b", From: fromAccounts("ops/bot"), To: &v1alpha1.RuleTarget{Ports: []int32{8080}}}),
			},
			want: "spec.authorization.rules[0]: Linkerd allows one Server per pod port",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			res, err := Render(lkProfile(tt.opts...), DefaultOptions())
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(res.Objects).To(BeEmpty())
			g.Expect(res.NamespaceAnnotations).To(BeEmpty(), "not even the namespace default is applied half-way")
			g.Expect(res.Unsupported).To(ContainElement(HavePrefix(tt.want)))
		})
	}
}

func TestLinkerdSameWorkloadsAndPortShareOneServer(t *testing.T) {
	g := NewWithT(t)
	res := mustRenderLinkerd(g, lkProfile(
		withPortMode("api", 8080, v1alpha1.MTLSPermissive),
		withRule(allowRule("a", "api", fromAccounts("frontend/web"), 8080)),
		withRule(allowRule("b", "api", fromAccounts("ops/bot"), 8080, 9090)),
	))
	var servers []string
	for _, o := range res.Objects {
		if o.GetKind() == "Server" {
			servers = append(servers, o.GetName())
		}
	}
	g.Expect(servers).To(Equal([]string{"p-8080-wl-142c949c", "p-9090-wl-142c949c"}))
}

// TestLinkerdOutputIsStable renders every Linkerd golden profile with its rules, overrides and
// list entries reversed: names and order of the output must not depend on the profile's order.
func TestLinkerdOutputIsStable(t *testing.T) {
	n := 0
	for _, in := range profileCases(t, "testdata/linkerd-*.yaml") {
		n++
		t.Run(filepath.Base(in), func(t *testing.T) {
			g := NewWithT(t)
			p := loadProfile(t, in)
			want := string(renderText(p))
			q := p.DeepCopy()
			if az := q.Spec.Authorization; az != nil {
				reverse(az.Rules)
				for i := range az.Rules {
					if f := az.Rules[i].From; f != nil {
						reverse(f.ServiceAccounts)
						reverse(f.Namespaces)
						reverse(f.IPBlocks)
					}
					if to := az.Rules[i].To; to != nil {
						reverse(to.Ports)
						reverse(to.Paths)
						reverse(to.Methods)
					}
				}
			}
			if m := q.Spec.MTLS; m != nil {
				reverse(m.Overrides)
			}
			got := string(renderText(q))
			if strings.HasPrefix(want, "unsupported: ") {
				// Field indexes move with the order; only the set of messages' count is stable.
				g.Expect(strings.Count(got, "\n")).To(Equal(strings.Count(want, "\n")))
				return
			}
			g.Expect(got).To(Equal(want))
		})
	}
	if n == 0 {
		t.Fatal("no Linkerd golden cases found")
	}
}

func reverse[T any](s []T) {
	for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
		s[i], s[j] = s[j], s[i]
	}
}

// TestLinkerdNeverWiderThanDefaultDeny checks, on every Linkerd golden profile with defaultDeny,
// that no generated Server admits anything beyond its AuthorizationPolicies.
func TestLinkerdNeverWiderThanDefaultDeny(t *testing.T) {
	cases, err := filepath.Glob("testdata/linkerd-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, in := range cases {
		if strings.HasSuffix(in, ".golden.yaml") {
			continue
		}
		p := loadProfile(t, in)
		if p.Spec.Authorization == nil || !p.Spec.Authorization.DefaultDeny {
			continue
		}
		res, err := Render(p, DefaultOptions())
		if err != nil || len(res.Unsupported) > 0 {
			continue
		}
		checked++
		g := NewWithT(t)
		g.Expect(res.NamespaceAnnotations).To(HaveKeyWithValue(LinkerdDefaultInboundPolicyAnnotation, "deny"), in)
		for _, o := range res.Objects {
			if o.GetKind() == "Server" {
				g.Expect(o.Object["spec"]).To(HaveKeyWithValue("accessPolicy", "deny"), in+": "+o.GetName())
			}
		}
	}
	if checked == 0 {
		t.Fatal("no Linkerd golden case with defaultDeny")
	}
}

func newPath(parts ...string) *field.Path { return field.NewPath(parts[0], parts[1:]...) }
