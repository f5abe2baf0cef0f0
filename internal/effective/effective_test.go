package effective

import (
	"strings"
	"testing"
	"unicode/utf8"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/clusterfacts"
	"github.com/meshguard/meshguard/internal/render"
)

// The profile under test is shop/baseline.
const (
	testNamespace = "shop"
	testProfile   = "baseline"
	testUID       = types.UID("6f1c2a1e-0000-4000-8000-000000000001")
)

type profileOption func(*v1alpha1.MeshSecurityProfile)

func profile(opts ...profileOption) *v1alpha1.MeshSecurityProfile {
	p := &v1alpha1.MeshSecurityProfile{}
	p.Name, p.Namespace, p.UID = testProfile, testNamespace, testUID
	p.Spec.Mesh = v1alpha1.MeshIstio
	for _, o := range opts {
		o(p)
	}
	return p
}

func withMesh(m v1alpha1.Mesh) profileOption {
	return func(p *v1alpha1.MeshSecurityProfile) { p.Spec.Mesh = m }
}

func withMTLS(m v1alpha1.MTLSMode, overrides ...v1alpha1.MTLSOverride) profileOption {
	return func(p *v1alpha1.MeshSecurityProfile) {
		p.Spec.MTLS = &v1alpha1.MTLSSpec{Mode: m, Overrides: overrides}
	}
}

// override is an mTLS override of the pods with the labels written as k=v,k=v.
func override(name, labels string, m v1alpha1.MTLSMode, ports ...v1alpha1.PortMTLS) v1alpha1.MTLSOverride {
	return v1alpha1.MTLSOverride{Name: name, Selector: v1alpha1.WorkloadSelector{MatchLabels: labelMap(labels)}, Mode: m, Ports: ports}
}

func port(n int32, m v1alpha1.MTLSMode) v1alpha1.PortMTLS { return v1alpha1.PortMTLS{Port: n, Mode: m} }

func withAuthorization(defaultDeny bool, rules ...v1alpha1.AuthorizationRule) profileOption {
	return func(p *v1alpha1.MeshSecurityProfile) {
		p.Spec.Authorization = &v1alpha1.AuthorizationSpec{DefaultDeny: defaultDeny, Rules: rules}
	}
}

// webReadsAPI lets frontend/web GET from the pods app=api.
var webReadsAPI = v1alpha1.AuthorizationRule{
	Name:     "web-reads-api",
	Action:   v1alpha1.ActionAllow,
	Selector: &v1alpha1.WorkloadSelector{MatchLabels: map[string]string{"app": "api"}},
	From:     &v1alpha1.RuleSource{ServiceAccounts: []v1alpha1.ServiceAccountRef{"frontend/web"}},
	To:       &v1alpha1.RuleTarget{Methods: []string{"GET"}},
}

func withRequireToken() profileOption {
	return func(p *v1alpha1.MeshSecurityProfile) {
		p.Spec.RequestAuthentication = &v1alpha1.RequestAuthenticationSpec{
			RequireToken: true,
			Issuers:      []v1alpha1.JWTIssuer{{Issuer: "https://auth.example.com"}},
		}
	}
}

// withNetworkPolicy sets spec.networkPolicy from YAML.
func withNetworkPolicy(y string) profileOption {
	return func(p *v1alpha1.MeshSecurityProfile) {
		np := &v1alpha1.NetworkPolicySpec{}
		if err := yaml.UnmarshalStrict([]byte(y), np); err != nil {
			panic("fixture: " + err.Error())
		}
		p.Spec.NetworkPolicy = np
	}
}

func labelMap(s string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// objects decodes YAML documents; an object without a namespace is put in the profile's. Numbers
// decode as float64, as they do from YAML, not int64 as from the API server.
func objects(t *testing.T, docs string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, doc := range strings.Split(docs, "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		m := map[string]any{}
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatalf("fixture: %v\n%s", err, doc)
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetNamespace() == "" {
			u.SetNamespace(testNamespace)
		}
		out = append(out, u)
	}
	return out
}

func pa(name, weakens string) v1alpha1.ExternalPolicy {
	return v1alpha1.ExternalPolicy{APIVersion: "security.istio.io/v1", Kind: "PeerAuthentication", Name: name, Weakens: weakens}
}

func ap(name, weakens string) v1alpha1.ExternalPolicy {
	return v1alpha1.ExternalPolicy{APIVersion: "security.istio.io/v1", Kind: "AuthorizationPolicy", Name: name, Weakens: weakens}
}

func np(name, weakens string) v1alpha1.ExternalPolicy {
	return v1alpha1.ExternalPolicy{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy", Name: name, Weakens: weakens}
}

// findRendered calls Find as the reconciler does: with the objects the profile renders to (render's
// default options), none when it does not render. The import of render is the test's only:
// effective itself judges what it is handed.
func findRendered(t *testing.T, p *v1alpha1.MeshSecurityProfile, foreign []*unstructured.Unstructured, opts Options) []v1alpha1.ExternalPolicy {
	t.Helper()
	var desired Desired
	if p != nil {
		if res, err := render.Render(p, render.DefaultOptions()); err == nil {
			desired = Desired{Objects: res.Objects, NamespaceAnnotations: res.NamespaceAnnotations}
		}
	}
	return Find(p, desired, foreign, opts)
}

type findCase struct {
	name    string
	profile *v1alpha1.MeshSecurityProfile
	objects string
	opts    Options
	want    []v1alpha1.ExternalPolicy
}

func runFindCases(t *testing.T, cases []findCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			objs := objects(t, tc.objects)
			before := make([]*unstructured.Unstructured, len(objs))
			for i, o := range objs {
				before[i] = o.DeepCopy()
			}
			got := findRendered(t, tc.profile, objs, tc.opts)
			if tc.want == nil {
				g.Expect(got).To(BeEmpty())
			} else {
				g.Expect(got).To(Equal(tc.want))
			}
			g.Expect(objs).To(Equal(before), "Find must not modify the objects")
		})
	}
}

func TestPeerAuthentication(t *testing.T) {
	runFindCases(t, []findCase{
		{
			name:    "a namespace-wide PERMISSIVE policy competes with the profile's Strict one",
			profile: profile(withMTLS(v1alpha1.MTLSStrict)),
			objects: `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default}
spec: {mtls: {mode: PERMISSIVE}}`,
			want: []v1alpha1.ExternalPolicy{pa("default", "mtls.mode Strict: namespace-wide PERMISSIVE")},
		},
		{
			name:    "a profile without mtls is Strict, and a policy with an empty selector is namespace-wide",
			profile: profile(),
			objects: `
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: mtls-off}
spec: {selector: {matchLabels: {}}, mtls: {mode: DISABLE}}`,
			want: []v1alpha1.ExternalPolicy{{APIVersion: "security.istio.io/v1beta1", Kind: "PeerAuthentication", Name: "mtls-off",
				Weakens: "mtls.mode Strict: namespace-wide DISABLE"}},
		},
		{
			name:    "a namespace-wide STRICT policy is not reported",
			profile: profile(withMTLS(v1alpha1.MTLSStrict)),
			objects: `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default}
spec: {mtls: {mode: STRICT}}`,
		},
		{
			// Istio applies the oldest namespace-wide policy whatever its mode; UNSET falls back to
			// the mesh-wide mode, PERMISSIVE by default (PeerAuthentication reference).
			name:    "a namespace-wide policy without a mode falls back to the mesh default PERMISSIVE and is reported",
			profile: profile(withMTLS(v1alpha1.MTLSStrict)),
			objects: `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default}
spec: {mtls: {mode: UNSET}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: empty}
spec: {}`,
			want: []v1alpha1.ExternalPolicy{
				pa("default", "mtls.mode Strict: namespace-wide UNSET, which falls back to the mesh-wide PERMISSIVE"),
				pa("empty", "mtls.mode Strict: namespace-wide UNSET, which falls back to the mesh-wide PERMISSIVE"),
			},
		},
		{
			name:    "a namespace-wide policy without a mode inherits the oldest mesh-wide STRICT policy and is not reported",
			profile: profile(withMTLS(v1alpha1.MTLSStrict)),
			objects: `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: empty}
spec: {}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: mesh, namespace: istio-system, creationTimestamp: "2026-01-01T00:00:00Z"}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: newer, namespace: istio-system, creationTimestamp: "2026-06-01T00:00:00Z"}
spec: {mtls: {mode: DISABLE}}`,
		},
		{
			name:    "a namespace-wide policy without a mode under an older mesh-wide DISABLE policy is reported",
			profile: profile(withMTLS(v1alpha1.MTLSPermissive)),
			objects: `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: empty}
spec: {}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: mesh, namespace: istio-system, creationTimestamp: "2026-01-01T00:00:00Z"}
spec: {mtls: {mode: DISABLE}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: newer, namespace: istio-system, creationTimestamp: "2026-06-01T00:00:00Z"}
spec: {mtls: {mode: STRICT}}`,
			want: []v1alpha1.ExternalPolicy{pa("empty", "mtls.mode Permissive: namespace-wide UNSET, which falls back to the mesh-wide DISABLE")},
		},
		{
			// Istio applies the oldest workload policy of a pod, not the most specific: on the pods
			// app=db,tier=primary the foreign policy wins whenever it is older than the override's.
			name:    "a broader workload policy is judged against a narrower override it can displace (oldest wins, not most specific)",
			profile: profile(withMTLS(v1alpha1.MTLSPermissive, override("primary", "app=db,tier=primary", v1alpha1.MTLSStrict))),
			objects: `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: db}
spec: {selector: {matchLabels: {app: db}}, mtls: {mode: PERMISSIVE}}`,
			want: []v1alpha1.ExternalPolicy{pa("db", "mtls.overrides[primary]: PERMISSIVE for pods app=db")},
		},
		{
			name:    "a workload policy on other labels is judged against every override it may share pods with",
			profile: profile(withMTLS(v1alpha1.MTLSStrict, override("legacy", "app=legacy", v1alpha1.MTLSPermissive))),
			objects: `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: metrics}
spec: {selector: {matchLabels: {tier: metrics}}, mtls: {mode: PERMISSIVE}}`,
			want: []v1alpha1.ExternalPolicy{pa("metrics", "mtls.mode Strict: PERMISSIVE for pods tier=metrics")},
		},
		{
			name:    "a namespace-wide PERMISSIVE policy is not weaker than a Permissive profile",
			profile: profile(withMTLS(v1alpha1.MTLSPermissive)),
			objects: `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default}
spec: {mtls: {mode: PERMISSIVE}}`,
		},
		{
			name:    "a workload PERMISSIVE policy weakens Strict for its pods",
			profile: profile(withMTLS(v1alpha1.MTLSStrict)),
			objects: `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: legacy}
spec: {selector: {matchLabels: {app: legacy}}, mtls: {mode: PERMISSIVE}}`,
			want: []v1alpha1.ExternalPolicy{pa("legacy", "mtls.mode Strict: PERMISSIVE for pods app=legacy")},
		},
		{
			name:    "a workload policy with a DISABLE port weakens Strict on that port",
			profile: profile(withMTLS(v1alpha1.MTLSStrict)),
			objects: `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: db}
spec:
  selector: {matchLabels: {app: db}}
  portLevelMtls:
    "8080": {mode: DISABLE}
    "9090": {mode: STRICT}`,
			want: []v1alpha1.ExternalPolicy{pa("db", "mtls.mode Strict: port 8080 DISABLE for pods app=db")},
		},
		{
			name:    "a workload policy weaker for the workload and for a port says both, ports in order",
			profile: profile(withMTLS(v1alpha1.MTLSStrict)),
			objects: `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: db}
spec:
  selector: {matchLabels: {app: db, tier: data}}
  mtls: {mode: PERMISSIVE}
  portLevelMtls:
    "9090": {mode: DISABLE}
    "8080": {mode: PERMISSIVE}
    "15000": {mode: DISABLE}`,
			want: []v1alpha1.ExternalPolicy{pa("db", "mtls.mode Strict: PERMISSIVE, port 9090 DISABLE, port 15000 DISABLE for pods app=db,tier=data")},
		},
		{
			name:    "a workload STRICT policy is not reported",
			profile: profile(withMTLS(v1alpha1.MTLSPermissive)),
			objects: `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: db}
spec: {selector: {matchLabels: {app: db}}, mtls: {mode: STRICT}, portLevelMtls: {"8080": {mode: PERMISSIVE}}}`,
		},
		{
			name:    "a workload policy that matches the profile's own Permissive override is not reported",
			profile: profile(withMTLS(v1alpha1.MTLSStrict, override("legacy", "app=legacy", v1alpha1.MTLSPermissive))),
			objects: `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: legacy}
spec: {selector: {matchLabels: {app: legacy}}, mtls: {mode: PERMISSIVE}}`,
		},
		{
			name:    "a workload policy on some of an override's pods is judged against the override",
			profile: profile(withMTLS(v1alpha1.MTLSStrict, override("legacy", "app=legacy", v1alpha1.MTLSPermissive))),
			objects: `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: legacy-v1}
spec: {selector: {matchLabels: {app: legacy, version: v1}}, mtls: {mode: PERMISSIVE}}`,
		},
		{
			name:    "a workload policy weaker than the profile's override is reported against the override",
			profile: profile(withMTLS(v1alpha1.MTLSStrict, override("legacy", "app=legacy", v1alpha1.MTLSPermissive))),
			objects: `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: legacy}
spec: {selector: {matchLabels: {app: legacy}}, mtls: {mode: DISABLE}}`,
			want: []v1alpha1.ExternalPolicy{pa("legacy", "mtls.overrides[legacy]: DISABLE for pods app=legacy")},
		},
		{
			name:    "a port the profile's override makes Permissive is not reported",
			profile: profile(withMTLS(v1alpha1.MTLSStrict, override("", "app=legacy", "", port(8080, v1alpha1.MTLSPermissive)))),
			objects: `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: legacy}
spec: {selector: {matchLabels: {app: legacy}}, mtls: {mode: STRICT}, portLevelMtls: {"8080": {mode: PERMISSIVE}}}`,
		},
		{
			name:    "another port of an overridden workload is reported against the unnamed override",
			profile: profile(withMTLS(v1alpha1.MTLSStrict, override("", "app=legacy", "", port(8080, v1alpha1.MTLSPermissive)))),
			objects: `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: legacy}
spec: {selector: {matchLabels: {app: legacy}}, portLevelMtls: {"8080": {mode: PERMISSIVE}, "8443": {mode: PERMISSIVE}}}`,
			want: []v1alpha1.ExternalPolicy{pa("legacy", "mtls.overrides[app=legacy]: port 8443 PERMISSIVE for pods app=legacy")},
		},
		{
			name: "a workload policy that leaves modes unset displaces the override's stricter ones",
			profile: profile(withMTLS(v1alpha1.MTLSPermissive,
				override("db", "app=db", v1alpha1.MTLSStrict, port(5432, v1alpha1.MTLSStrict)),
				override("cache", "app=cache", "", port(6379, v1alpha1.MTLSStrict)))),
			objects: `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: db}
spec: {selector: {matchLabels: {app: db}}, portLevelMtls: {"8080": {mode: PERMISSIVE}}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: cache}
spec: {selector: {matchLabels: {app: cache}}, portLevelMtls: {"8080": {mode: PERMISSIVE}}}`,
			want: []v1alpha1.ExternalPolicy{
				pa("cache", "mtls.overrides[cache]: port 6379 PERMISSIVE (inherited) for pods app=cache"),
				pa("db", "mtls.overrides[db]: PERMISSIVE (inherited) for pods app=db"),
			},
		},
		{
			name:    "a mesh-wide PERMISSIVE policy in the root namespace does not override the namespace policy",
			profile: profile(withMTLS(v1alpha1.MTLSStrict)),
			objects: `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: PERMISSIVE}}`,
		},
		{
			name:    "a workload policy in the root namespace is ignored by Istio",
			profile: profile(withMTLS(v1alpha1.MTLSStrict)),
			objects: `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: legacy, namespace: istio-system}
spec: {selector: {matchLabels: {app: legacy}}, mtls: {mode: DISABLE}}`,
		},
		{
			name:    "a policy of another namespace is ignored",
			profile: profile(withMTLS(v1alpha1.MTLSStrict)),
			objects: `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: other}
spec: {mtls: {mode: DISABLE}}`,
		},
		{
			name:    "a Linkerd profile ignores PeerAuthentications",
			profile: profile(withMesh(v1alpha1.MeshLinkerd), withMTLS(v1alpha1.MTLSStrict)),
			objects: `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default}
spec: {mtls: {mode: DISABLE}}`,
		},
	})
}

func TestAuthorizationPolicy(t *testing.T) {
	runFindCases(t, []findCase{
		{
			name:    "an ALLOW policy with an empty rule allows any source on all workloads",
			profile: profile(withAuthorization(true)),
			objects: `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-all}
spec: {action: ALLOW, rules: [{}]}`,
			want: []v1alpha1.ExternalPolicy{ap("allow-all", "authorization.defaultDeny: allows any source on all workloads")},
		},
		{
			name:    "a policy without an action is an ALLOW policy, described by its sources and operations",
			profile: profile(withAuthorization(true)),
			objects: `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: api}
spec:
  selector: {matchLabels: {app: api}}
  rules:
  - from:
    - source: {namespaces: [frontend, admin]}
    - source: {principals: [cluster.local/ns/ops/sa/bot], notIpBlocks: [10.0.0.0/8]}
    to:
    - operation: {ports: ["8080"], methods: [GET]}
    when:
    - {key: "request.auth.claims[iss]", values: ["https://auth.example.com"]}`,
			want: []v1alpha1.ExternalPolicy{ap("api", "authorization.defaultDeny: allows namespaces frontend, admin or "+
				"principals cluster.local/ns/ops/sa/bot and not IP blocks 10.0.0.0/8 to ports 8080 and methods GET "+
				"when request.auth.claims[iss] match on pods app=api")},
		},
		{
			name:    "a policy with many rules describes the first three",
			profile: profile(withAuthorization(true)),
			objects: `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: many}
spec:
  rules:
  - from: [{source: {namespaces: [a]}}]
  - from: [{source: {namespaces: [b]}}]
  - from: [{source: {namespaces: [c]}}]
  - from: [{source: {namespaces: [d]}}]`,
			want: []v1alpha1.ExternalPolicy{ap("many", "authorization.defaultDeny: allows namespaces a; namespaces b; namespaces c; 1 more rule on all workloads")},
		},
		{
			name:    "an ALLOW policy without rules allows nothing",
			profile: profile(withAuthorization(true)),
			objects: `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-nothing}
spec: {action: ALLOW}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: empty}
spec: {rules: []}`,
		},
		{
			name:    "DENY and AUDIT policies are not reported",
			profile: profile(withAuthorization(true)),
			objects: `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny}
spec: {action: DENY, rules: [{}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: audit}
spec: {action: AUDIT, rules: [{}]}`,
		},
		{
			name:    "a CUSTOM policy is not reported: Istio evaluates it before ALLOW and it can only deny",
			profile: profile(withAuthorization(true)),
			objects: `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext-authz}
spec: {action: CUSTOM, provider: {name: opa}, rules: [{}]}`,
		},
		{
			name:    "an ALLOW policy in the root namespace applies to every namespace",
			profile: profile(withAuthorization(true)),
			objects: `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-all, namespace: istio-system}
spec: {rules: [{}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: scrape, namespace: istio-system}
spec: {selector: {matchLabels: {app: metrics}}, rules: [{to: [{operation: {ports: ["15020"]}}]}]}`,
			want: []v1alpha1.ExternalPolicy{
				ap("istio-system/allow-all", "authorization.defaultDeny: allows any source on all workloads in every namespace"),
				ap("istio-system/scrape", "authorization.defaultDeny: allows any source to ports 15020 on pods app=metrics in every namespace"),
			},
		},
		{
			name:    "the root namespace is taken from the options",
			profile: profile(withAuthorization(true)),
			opts:    Options{Facts: clusterfacts.Facts{IstioRootNamespace: "mesh-root"}},
			objects: `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-all, namespace: mesh-root}
spec: {rules: [{}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-all, namespace: istio-system}
spec: {rules: [{}]}`,
			want: []v1alpha1.ExternalPolicy{ap("mesh-root/allow-all", "authorization.defaultDeny: allows any source on all workloads in every namespace")},
		},
		{
			name:    "an ALLOW policy attached to a Gateway is described by its target",
			profile: profile(withAuthorization(true)),
			objects: `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: gw}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: shop-gw}]
  rules: [{from: [{source: {ipBlocks: [0.0.0.0/0]}}]}]`,
			want: []v1alpha1.ExternalPolicy{ap("gw", "authorization.defaultDeny: allows IP blocks 0.0.0.0/0 on Gateway shop-gw")},
		},
		{
			name:    "an ALLOW policy with the same rule as the profile, its lists in another order, is not reported",
			profile: profile(withAuthorization(true, webReadsAPI)),
			objects: `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: copy}
spec:
  selector: {matchLabels: {app: api}}
  action: ALLOW
  rules:
  - to: [{operation: {methods: [GET]}}]
    from: [{source: {principals: [cluster.local/ns/frontend/sa/web]}}]`,
		},
		{
			name:    "an ALLOW policy with the profile's rule on other workloads is reported",
			profile: profile(withAuthorization(true, webReadsAPI)),
			objects: `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: copy}
spec:
  selector: {matchLabels: {app: db}}
  rules:
  - from: [{source: {principals: [cluster.local/ns/frontend/sa/web]}}]
    to: [{operation: {methods: [GET]}}]`,
			want: []v1alpha1.ExternalPolicy{ap("copy", "authorization.defaultDeny: allows principals cluster.local/ns/frontend/sa/web to methods GET on pods app=db")},
		},
		{
			name:    "without defaultDeny an ALLOW policy only on workloads no profile rule restricts is not reported",
			profile: profile(withAuthorization(false, webReadsAPI)),
			objects: `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: other}
spec: {selector: {matchLabels: {app: other}}, rules: [{}]}`,
		},
		{
			name:    "without defaultDeny an ALLOW policy on workloads a profile Allow rule restricts widens that rule",
			profile: profile(withAuthorization(false, webReadsAPI)),
			objects: `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-all}
spec: {rules: [{}]}`,
			want: []v1alpha1.ExternalPolicy{ap("allow-all", "authorization.rules[web-reads-api]: allows any source on all workloads")},
		},
		{
			name:    "requireToken is not weakened by an ALLOW policy: Istio evaluates DENY first",
			profile: profile(withRequireToken()),
			objects: `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-all}
spec: {rules: [{}]}`,
		},
		{
			// Linkerd's own AuthorizationPolicy is judged as Linkerd's (issue 9, point 8): one that
			// targets the Namespace authorizes what defaultDeny denies.
			name:    "a Linkerd profile ignores Istio AuthorizationPolicies, and judges Linkerd's own kind as Linkerd's",
			profile: profile(withMesh(v1alpha1.MeshLinkerd), withAuthorization(true)),
			objects: `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-all}
spec: {rules: [{}]}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: linkerd-policy}
spec: {targetRef: {kind: Namespace, name: shop}, requiredAuthenticationRefs: []}`,
			want: []v1alpha1.ExternalPolicy{{APIVersion: "policy.linkerd.io/v1alpha1", Kind: "AuthorizationPolicy", Name: "linkerd-policy",
				Weakens: "authorization: authorizes any client on every Server of the namespace"}},
		},
		{
			name:    "an Istio profile ignores Linkerd AuthorizationPolicies",
			profile: profile(withAuthorization(true)),
			objects: `
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: linkerd-policy}
spec: {rules: [{}]}`,
		},
	})
}

func TestNetworkPolicy(t *testing.T) {
	denyIngress := withNetworkPolicy(`
defaultDeny: [Ingress]
ingress:
- name: frontend-to-backend
  selector: {matchLabels: {app: backend}}
  from: [{namespaces: [frontend], podSelector: {matchLabels: {app: web}}}]
  ports: [{port: 8080}, {port: 9000, endPort: 9100, protocol: TCP}]`)
	denyBoth := withNetworkPolicy(`
defaultDeny: [Ingress, Egress]
allowDNS: true
allowMeshControlPlane: true`)

	runFindCases(t, []findCase{
		{
			name:    "an allow-all ingress policy opens ingress to all pods",
			profile: profile(denyIngress),
			objects: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-all}
spec: {podSelector: {}, policyTypes: [Ingress], ingress: [{}]}`,
			want: []v1alpha1.ExternalPolicy{np("allow-all", "networkPolicy.defaultDeny Ingress: allows ingress from any source to all pods")},
		},
		{
			name:    "an ingress rule is described by its peers, ports and pods",
			profile: profile(denyIngress),
			objects: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: open-y}
spec:
  podSelector: {matchLabels: {app: "y"}}
  policyTypes: [Ingress]
  ingress:
  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: x}}}]
    ports: [{port: 8080, protocol: TCP}]
  - from:
    - ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}
    - podSelector: {}
    - podSelector: {matchLabels: {app: web}}
      namespaceSelector: {matchLabels: {team: a}}
    ports: [{port: http}, {protocol: UDP}]`,
			want: []v1alpha1.ExternalPolicy{np("open-y", "networkPolicy.defaultDeny Ingress: allows ingress "+
				"from namespaces x on ports 8080/TCP and "+
				"from 10.0.0.0/8 except 10.1.0.0/16 or all pods in namespace shop or pods app=web in namespaces team=a on ports http/TCP, any/UDP "+
				"to pods app=y")},
		},
		{
			name:    "a policy with many open rules describes the first three",
			profile: profile(denyIngress),
			objects: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: many}
spec:
  podSelector: {}
  ingress:
  - ports: [{port: 1}]
  - ports: [{port: 2}]
  - ports: [{port: 3}]
  - ports: [{port: 4}]
  - ports: [{port: 5}]`,
			want: []v1alpha1.ExternalPolicy{np("many", "networkPolicy.defaultDeny Ingress: allows ingress "+
				"from any source on ports 1/TCP and from any source on ports 2/TCP and from any source on ports 3/TCP and 2 more rules to all pods")},
		},
		{
			name:    "a policy without policyTypes governs Ingress",
			profile: profile(denyIngress),
			objects: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: legacy}
spec:
  podSelector: {matchExpressions: [{key: app, operator: In, values: [b, a]}]}
  ingress: [{from: [{namespaceSelector: {}}]}]`,
			want: []v1alpha1.ExternalPolicy{np("legacy", "networkPolicy.defaultDeny Ingress: allows ingress from all namespaces to pods app in (a,b)")},
		},
		{
			name:    "a policy with only Egress is not reported when the profile denies only Ingress",
			profile: profile(denyIngress),
			objects: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress-all}
spec: {podSelector: {}, policyTypes: [Egress], egress: [{}]}`,
		},
		{
			name:    "an ingress policy without rules denies and is not reported",
			profile: profile(denyIngress),
			objects: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}`,
		},
		{
			name:    "a rule equal to a profile rule, its namespace written as a label, is not reported",
			profile: profile(denyIngress),
			objects: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: copy}
spec:
  podSelector: {matchLabels: {app: backend}}
  policyTypes: [Ingress]
  ingress:
  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: frontend}}, podSelector: {matchLabels: {app: web}}}]
    ports: [{port: 9000, endPort: 9100}, {port: 8080, protocol: TCP}]`,
		},
		{
			name:    "a rule narrower than a profile rule, on fewer pods and ports, is not reported",
			profile: profile(denyIngress),
			objects: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: narrower}
spec:
  podSelector: {matchLabels: {app: backend, version: v2}}
  policyTypes: [Ingress]
  ingress:
  - from: [{namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, values: [frontend]}]}, podSelector: {matchLabels: {app: web}}}]
    ports: [{port: 9050}]`,
		},
		{
			name:    "a rule on another port or from other peers than the profile's is reported",
			profile: profile(denyIngress),
			objects: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: wider}
spec:
  podSelector: {matchLabels: {app: backend}}
  policyTypes: [Ingress]
  ingress:
  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: frontend}}, podSelector: {matchLabels: {app: web}}}]
    ports: [{port: 8443}]
  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: frontend}}}]
    ports: [{port: 8080}]`,
			want: []v1alpha1.ExternalPolicy{np("wider", "networkPolicy.defaultDeny Ingress: allows ingress "+
				"from pods app=web in namespaces frontend on ports 8443/TCP and from namespaces frontend on ports 8080/TCP to pods app=backend")},
		},
		{
			name:    "egress to DNS and istiod is covered by allowDNS and allowMeshControlPlane",
			profile: profile(denyBoth),
			objects: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: dns}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Egress]
  egress:
  - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}, podSelector: {matchLabels: {k8s-app: kube-dns}}}]
    ports: [{port: 53, protocol: UDP}]
  - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: istio-system}}, podSelector: {matchLabels: {app: istiod}}}]
    ports: [{port: 15012}]`,
		},
		{
			name:    "a policy opening both directions is reported once per denied direction",
			profile: profile(denyBoth),
			objects: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: open}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
  ingress: [{}]
  egress: [{ports: [{port: 443}]}]`,
			want: []v1alpha1.ExternalPolicy{
				np("open", "networkPolicy.defaultDeny Egress: allows egress to any destination on ports 443/TCP from all pods"),
				np("open", "networkPolicy.defaultDeny Ingress: allows ingress from any source to all pods"),
			},
		},
		{
			name:    "a Linkerd profile still judges NetworkPolicies",
			profile: profile(withMesh(v1alpha1.MeshLinkerd), denyIngress),
			objects: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-all}
spec: {podSelector: {}, ingress: [{}]}`,
			want: []v1alpha1.ExternalPolicy{np("allow-all", "networkPolicy.defaultDeny Ingress: allows ingress from any source to all pods")},
		},
		{
			name:    "without defaultDeny nothing is reported",
			profile: profile(withNetworkPolicy(`{allowDNS: true}`)),
			objects: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-all}
spec: {podSelector: {}, ingress: [{}]}`,
		},
		{
			name:    "a NetworkPolicy of another namespace, even the root namespace, is ignored",
			profile: profile(denyIngress),
			objects: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-all, namespace: istio-system}
spec: {podSelector: {}, ingress: [{}]}`,
		},
	})
}

func TestFindSkipsWhatTheProfileOwns(t *testing.T) {
	p := profile(withMTLS(v1alpha1.MTLSStrict), withAuthorization(true))
	runFindCases(t, []findCase{
		{
			name:    "an object controlled by the profile is skipped",
			profile: p,
			objects: `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: baseline-mtls
  ownerReferences:
  - {apiVersion: security.meshguard.dev/v1alpha1, kind: MeshSecurityProfile, name: baseline, uid: ` + string(testUID) + `, controller: true}
spec: {mtls: {mode: PERMISSIVE}}`,
		},
		{
			name:    "an object labelled as generated for the profile is skipped",
			profile: p,
			objects: `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: baseline-rule-x
  labels: {app.kubernetes.io/managed-by: meshguard, security.meshguard.dev/profile: baseline}
spec: {rules: [{}]}`,
		},
		{
			name:    "an object owned but not controlled by the profile, or labelled for another profile, is reported",
			profile: p,
			objects: `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: other-profile
  labels: {app.kubernetes.io/managed-by: meshguard, security.meshguard.dev/profile: other}
spec: {rules: [{}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: not-controller
  ownerReferences:
  - {apiVersion: security.meshguard.dev/v1alpha1, kind: MeshSecurityProfile, name: baseline, uid: ` + string(testUID) + `}
spec: {rules: [{}]}`,
			want: []v1alpha1.ExternalPolicy{
				ap("not-controller", "authorization.defaultDeny: allows any source on all workloads"),
				ap("other-profile", "authorization.defaultDeny: allows any source on all workloads"),
			},
		},
		{
			name:    "the labels of a same-named profile in the root namespace do not hide its objects",
			profile: p,
			objects: `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: baseline-rule-x
  namespace: istio-system
  labels: {app.kubernetes.io/managed-by: meshguard, security.meshguard.dev/profile: baseline}
spec: {rules: [{}]}`,
			want: []v1alpha1.ExternalPolicy{ap("istio-system/baseline-rule-x", "authorization.defaultDeny: allows any source on all workloads in every namespace")},
		},
		{
			name:    "objects of other kinds are ignored",
			profile: p,
			objects: `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt}
spec: {jwtRules: [{issuer: https://other.example.com}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
data: {a: b}`,
		},
	})
}

func TestFindIsSortedAndDeterministic(t *testing.T) {
	g := NewWithT(t)
	p := profile(withMTLS(v1alpha1.MTLSStrict), withAuthorization(true), withNetworkPolicy(`{defaultDeny: [Ingress]}`))
	objs := objects(t, `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: b}
spec: {mtls: {mode: PERMISSIVE}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: z}
spec: {podSelector: {}, ingress: [{}]}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: a}
spec: {mtls: {mode: DISABLE}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-y}
spec: {rules: [{}]}`)
	want := []v1alpha1.ExternalPolicy{
		ap("allow-y", "authorization.defaultDeny: allows any source on all workloads"),
		np("z", "networkPolicy.defaultDeny Ingress: allows ingress from any source to all pods"),
		pa("a", "mtls.mode Strict: namespace-wide DISABLE"),
		pa("b", "mtls.mode Strict: namespace-wide PERMISSIVE"),
	}
	g.Expect(findRendered(t, p, objs, Options{})).To(Equal(want))

	reversed := make([]*unstructured.Unstructured, 0, len(objs)+1)
	for i := len(objs) - 1; i >= 0; i-- {
		reversed = append(reversed, objs[i])
	}
	// The same object twice (two list pages, a retry) is reported once.
	reversed = append(reversed, objs[0], nil)
	g.Expect(findRendered(t, p, reversed, Options{})).To(Equal(want))
}

func TestFindWithoutAnythingToFind(t *testing.T) {
	g := NewWithT(t)
	g.Expect(findRendered(t, nil, objects(t, `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: a}
spec: {mtls: {mode: DISABLE}}`), Options{})).To(BeNil())
	g.Expect(findRendered(t, profile(), nil, Options{})).To(BeNil())
}

func TestFindBoundsWhatARowSays(t *testing.T) {
	g := NewWithT(t)
	var b strings.Builder
	b.WriteString("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: long}\nspec:\n  rules:\n  - from: [{source: {namespaces: [")
	for i := 0; i < 200; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("namespace-with-a-long-name-é")
	}
	b.WriteString("]}}]\n")
	got := findRendered(t, profile(withAuthorization(true)), objects(t, b.String()), Options{})
	g.Expect(got).To(HaveLen(1))
	g.Expect(len(got[0].Weakens)).To(BeNumerically("<=", maxWeakens))
	g.Expect(got[0].Weakens).To(HavePrefix("authorization.defaultDeny: allows namespaces namespace-with-a-long-name-é, "))
	g.Expect(got[0].Weakens).To(HaveSuffix("..."))
	g.Expect(utf8.ValidString(got[0].Weakens)).To(BeTrue())
}
