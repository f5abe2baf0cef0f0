package render

import (
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

func TestIstioPrincipal(t *testing.T) {
	tests := []struct {
		name        string
		trustDomain string
		sa          v1alpha1.ServiceAccountRef
		want        string
		wantErr     bool
	}{
		{name: "a namespace/name service account becomes a principal in the trust domain", trustDomain: "cluster.local", sa: "frontend/web", want: "cluster.local/ns/frontend/sa/web"},
		{name: "a custom trust domain is used as given", trustDomain: "prod.example.com", sa: "shop/checkout", want: "prod.example.com/ns/shop/sa/checkout"},
		{name: "a service account name may contain dots", trustDomain: "cluster.local", sa: "ci/runner.v2", want: "cluster.local/ns/ci/sa/runner.v2"},
		{name: "a name without a namespace is refused", trustDomain: "cluster.local", sa: "web", wantErr: true},
		{name: "an empty namespace is refused", trustDomain: "cluster.local", sa: "/web", wantErr: true},
		{name: "an empty name is refused", trustDomain: "cluster.local", sa: "frontend/", wantErr: true},
		{name: "a wildcard namespace is refused because Istio would match it as a prefix", trustDomain: "cluster.local", sa: "*/web", wantErr: true},
		{name: "a wildcard name is refused because Istio would match it as a suffix", trustDomain: "cluster.local", sa: "frontend/*", wantErr: true},
		{name: "a third path segment is refused", trustDomain: "cluster.local", sa: "frontend/web/extra", wantErr: true},
		{name: "capital letters are refused as Kubernetes names have none", trustDomain: "cluster.local", sa: "Frontend/web", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got, err := istioPrincipal(tt.trustDomain, tt.sa)
			if tt.wantErr {
				g.Expect(err).To(HaveOccurred())
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tt.want))
		})
	}
}

func TestMTLSOverrideName(t *testing.T) {
	tests := []struct {
		name     string
		override v1alpha1.MTLSOverride
		want     string
	}{
		{
			name:     "a named override is named after its name",
			override: v1alpha1.MTLSOverride{Name: "legacy", Selector: v1alpha1.WorkloadSelector{MatchLabels: map[string]string{"app": "legacy"}}},
			want:     "legacy",
		},
		{
			// echo -n 'app=postgres,tier=db' | sha256sum
			name:     "an unnamed override is named wl- and the first 8 hex digits of the SHA-256 of its sorted labels",
			override: v1alpha1.MTLSOverride{Selector: v1alpha1.WorkloadSelector{MatchLabels: map[string]string{"tier": "db", "app": "postgres"}}},
			want:     "wl-0a1b384b",
		},
		{
			// echo -n 'app=legacy' | sha256sum
			name:     "a single label hashes as key=value",
			override: v1alpha1.MTLSOverride{Selector: v1alpha1.WorkloadSelector{MatchLabels: map[string]string{"app": "legacy"}}},
			want:     "wl-362ec648",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			NewWithT(t).Expect(mtlsOverrideName(tt.override)).To(Equal(tt.want))
		})
	}
}

func TestLabelsHash(t *testing.T) {
	tests := []struct {
		name      string
		a, b      map[string]string
		wantEqual bool
	}{
		{name: "the same labels give the same hash whatever their order", a: map[string]string{"a": "1", "b": "2", "c": "3"}, b: map[string]string{"c": "3", "a": "1", "b": "2"}, wantEqual: true},
		{name: "a different value gives a different hash", a: map[string]string{"app": "web"}, b: map[string]string{"app": "api"}},
		{name: "moving a value between keys gives a different hash", a: map[string]string{"a": "x", "b": ""}, b: map[string]string{"a": "", "b": "x"}},
		{name: "an extra label gives a different hash", a: map[string]string{"app": "web"}, b: map[string]string{"app": "web", "tier": "front"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			ha, hb := labelsHash(tt.a), labelsHash(tt.b)
			g.Expect(ha).To(MatchRegexp(`^[0-9a-f]{8}$`))
			if tt.wantEqual {
				g.Expect(ha).To(Equal(hb))
			} else {
				g.Expect(ha).NotTo(Equal(hb))
			}
		})
	}
}

func TestSortedSet(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{name: "nil stays nil", in: nil, want: nil},
		{name: "an empty list becomes nil", in: []string{}, want: nil},
		{name: "elements are sorted and duplicates dropped", in: []string{"b", "a", "b", "c", "a"}, want: []string{"a", "b", "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			NewWithT(t).Expect(sortedSet(tt.in)).To(Equal(tt.want))
		})
	}
}

// TestIstioJSON checks the JSON shape that Istio's CRDs expect, which the goldens show only as
// YAML: enums as strings, ports as strings, and the allow-nothing policy's spec present and empty.
func TestIstioJSON(t *testing.T) {
	p := &v1alpha1.MeshSecurityProfile{}
	p.Name, p.Namespace = "p", "shop"
	p.Spec.MTLS = &v1alpha1.MTLSSpec{Overrides: []v1alpha1.MTLSOverride{{
		Name:     "legacy",
		Selector: v1alpha1.WorkloadSelector{MatchLabels: map[string]string{"app": "legacy"}},
		Ports:    []v1alpha1.PortMTLS{{Port: 8080, Mode: v1alpha1.MTLSPermissive}},
	}}}
	p.Spec.Authorization = &v1alpha1.AuthorizationSpec{
		DefaultDeny: true,
		Rules: []v1alpha1.AuthorizationRule{{
			Name: "web",
			To:   &v1alpha1.RuleTarget{Ports: []int32{8080}},
		}},
	}
	g := NewWithT(t)
	byName := renderByKindName(g, p)

	tests := []struct {
		name   string
		object string
		path   []string
		want   any
	}{
		{name: "the allow-nothing policy has a spec that is present and empty", object: "AuthorizationPolicy/p-default-deny", path: []string{"spec"}, want: map[string]any{}},
		{name: "an allow rule writes its action", object: "AuthorizationPolicy/p-rule-web", path: []string{"spec", "action"}, want: "ALLOW"},
		{name: "operation ports are strings", object: "AuthorizationPolicy/p-rule-web", path: []string{"spec", "rules"}, want: []any{map[string]any{"to": []any{map[string]any{"operation": map[string]any{"ports": []any{"8080"}}}}}}},
		{name: "the namespace-wide mode is an upper-case enum name", object: "PeerAuthentication/p-mtls", path: []string{"spec", "mtls", "mode"}, want: "STRICT"},
		{name: "port-level modes are keyed by the port as a string", object: "PeerAuthentication/p-mtls-legacy", path: []string{"spec", "portLevelMtls"}, want: map[string]any{"8080": map[string]any{"mode": "PERMISSIVE"}}},
		{name: "an override without a mode leaves mtls out so that it inherits", object: "PeerAuthentication/p-mtls-legacy", path: []string{"spec", "mtls"}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			o, ok := byName[tt.object]
			g.Expect(ok).To(BeTrue(), "object %s not rendered", tt.object)
			got, found, err := unstructured.NestedFieldNoCopy(o.Object, tt.path...)
			g.Expect(err).NotTo(HaveOccurred())
			if tt.want == nil {
				g.Expect(found).To(BeFalse())
				return
			}
			g.Expect(found).To(BeTrue())
			g.Expect(got).To(Equal(tt.want))
		})
	}
}

// TestIstioAuthorizationPoliciesNeverMatchEverything renders every golden profile and checks that
// no Istio AuthorizationPolicy other than the allow-nothing one has an empty rule: an empty rule
// matches every request, so an ALLOW policy with one would allow everything.
func TestIstioAuthorizationPoliciesNeverMatchEverything(t *testing.T) {
	cases, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range cases {
		if strings.HasSuffix(in, ".golden.yaml") {
			continue
		}
		p := loadProfile(t, in)
		res, err := Render(p, DefaultOptions())
		if err != nil {
			continue
		}
		for _, o := range res.Objects {
			if o.GetAPIVersion() != "security.istio.io/v1" || o.GetKind() != "AuthorizationPolicy" {
				continue
			}
			t.Run(filepath.Base(in)+"/"+o.GetName(), func(t *testing.T) {
				g := NewWithT(t)
				spec, _, _ := unstructured.NestedMap(o.Object, "spec")
				if len(spec) == 0 {
					g.Expect(o.GetName()).To(Equal(ChildName(p.Name, "default-deny")), "only the default-deny policy may be allow-nothing")
					return
				}
				rules, _, _ := unstructured.NestedSlice(o.Object, "spec", "rules")
				g.Expect(rules).NotTo(BeEmpty())
				for _, r := range rules {
					rule, _ := r.(map[string]any)
					g.Expect(rule).To(Or(HaveKey("from"), HaveKey("to")))
				}
			})
		}
	}
}
