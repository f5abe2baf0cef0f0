package validation_test

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation/field"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/validation"
	"github.com/meshguard/meshguard/test/fixtures"
)

// names reports whether err names the field path: as its field, or, for a rule on the whole object
// (which the API server reports without a path) or on the whole spec (a rule across fields, such as
// what a mesh does not support), in its message.
func names(err *field.Error, path string) bool {
	if err.Field == path {
		return true
	}
	return (err.Field == "" || err.Field == "<nil>" || err.Field == "spec") && strings.Contains(err.Detail, path)
}

func fields(errs field.ErrorList) []string {
	out := make([]string, 0, len(errs))
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}

func object(t *testing.T, manifest string) *unstructured.Unstructured {
	t.Helper()
	u, err := fixtures.Object(manifest, "shop")
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestInvalidProfilesAreRefusedWithAnErrorNamingTheField(t *testing.T) {
	if len(fixtures.InvalidProfiles) < 60 {
		t.Fatalf("only %d invalid fixtures", len(fixtures.InvalidProfiles))
	}
	for _, c := range fixtures.InvalidProfiles {
		t.Run(c.Name, func(t *testing.T) {
			g := NewWithT(t)
			u := object(t, c.YAML)
			g.Expect(validation.Default(u)).To(Succeed())
			errs := validation.Validate(u)
			g.Expect(errs).To(ContainElement(Satisfy(func(e *field.Error) bool { return names(e, c.WantField) })),
				"want an error naming %s, got %v", c.WantField, fields(errs))
			for _, e := range errs {
				g.Expect(e.Type).NotTo(Equal(field.ErrorTypeInternal), e.Error())
			}

			p, errs, err := validation.FromUnstructured(object(t, c.YAML))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(errs).NotTo(BeEmpty())
			g.Expect(p).To(BeNil())
		})
	}
}

func TestValidProfilesAreAcceptedAndConverted(t *testing.T) {
	for _, c := range fixtures.ValidProfiles {
		t.Run(c.Name, func(t *testing.T) {
			g := NewWithT(t)
			u := object(t, c.YAML)
			g.Expect(validation.Default(u)).To(Succeed())
			g.Expect(fields(validation.Validate(u))).To(BeEmpty())

			p, errs, err := validation.FromUnstructured(object(t, c.YAML))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(fields(errs)).To(BeEmpty())
			g.Expect(p.Name).To(Equal(u.GetName()))
			g.Expect(p.Namespace).To(Equal("shop"))
			g.Expect(p.Spec.Mesh).NotTo(BeEmpty(), "defaults are applied before conversion")
		})
	}
}

func TestDefaultsAreAppliedAsTheAPIServerDoes(t *testing.T) {
	const head = "apiVersion: security.meshguard.dev/v1alpha1\nkind: MeshSecurityProfile\nmetadata: {name: p, namespace: shop}\n"
	hours := func(h int) *metav1.Duration { return &metav1.Duration{Duration: time.Duration(h) * time.Hour} }
	tests := []struct {
		name  string
		yaml  string
		check func(g Gomega, p *v1alpha1.MeshSecurityProfile)
	}{
		{
			name: "a profile without spec gets Istio, Enforce and Strict mTLS",
			yaml: head,
			check: func(g Gomega, p *v1alpha1.MeshSecurityProfile) {
				g.Expect(p.Spec.Mesh).To(Equal(v1alpha1.MeshIstio))
				g.Expect(p.Spec.Enforcement).To(Equal(v1alpha1.EnforcementEnforce))
				g.Expect(p.Spec.MTLS).To(Equal(&v1alpha1.MTLSSpec{Mode: v1alpha1.MTLSStrict}))
				g.Expect(p.Spec.Certificates).NotTo(BeNil())
				g.Expect(p.Spec.Certificates.MinValidity.Duration).To(Equal(1440*time.Hour), "minValidity defaults even without a certificates block")
			},
		},
		{
			name: "values that are set are kept",
			yaml: head + "spec: {mesh: Linkerd, enforcement: Audit, mtls: {mode: Permissive}, certificates: {minValidity: 720h}}\n",
			check: func(g Gomega, p *v1alpha1.MeshSecurityProfile) {
				g.Expect(p.Spec.Mesh).To(Equal(v1alpha1.MeshLinkerd))
				g.Expect(p.Spec.Enforcement).To(Equal(v1alpha1.EnforcementAudit))
				g.Expect(p.Spec.MTLS.Mode).To(Equal(v1alpha1.MTLSPermissive))
				g.Expect(p.Spec.Certificates.MinValidity).To(Equal(hours(720)))
			},
		},
		{
			name: "an mtls block without mode gets Strict",
			yaml: head + "spec: {mtls: {overrides: [{selector: {matchLabels: {app: a}}, mode: Disable}]}}\n",
			check: func(g Gomega, p *v1alpha1.MeshSecurityProfile) {
				g.Expect(p.Spec.MTLS.Mode).To(Equal(v1alpha1.MTLSStrict))
				g.Expect(p.Spec.MTLS.Overrides[0].Mode).To(Equal(v1alpha1.MTLSDisable), "an override's mode has no default: it inherits")
			},
		},
		{
			name: "mtls set to null gets the default as if it were omitted",
			yaml: head + "spec: {mtls: null, authorization: null}\n",
			check: func(g Gomega, p *v1alpha1.MeshSecurityProfile) {
				g.Expect(p.Spec.MTLS).To(Equal(&v1alpha1.MTLSSpec{Mode: v1alpha1.MTLSStrict}))
				g.Expect(p.Spec.Authorization).To(BeNil())
			},
		},
		{
			name: "a rule without action allows",
			yaml: head + "spec: {authorization: {rules: [{name: r, from: {namespaces: [a]}}, {name: d, action: Deny, to: {ports: [1]}}]}}\n",
			check: func(g Gomega, p *v1alpha1.MeshSecurityProfile) {
				g.Expect(p.Spec.Authorization.Rules[0].Action).To(Equal(v1alpha1.ActionAllow))
				g.Expect(p.Spec.Authorization.Rules[1].Action).To(Equal(v1alpha1.ActionDeny))
			},
		},
		{
			name: "a NetworkPolicy port without protocol is TCP",
			yaml: head + "spec: {networkPolicy: {egress: [{name: e, to: [{namespaces: [a]}], ports: [{port: 53}, {port: 53, protocol: UDP}]}]}}\n",
			check: func(g Gomega, p *v1alpha1.MeshSecurityProfile) {
				g.Expect(p.Spec.NetworkPolicy.Egress[0].Ports[0].Protocol).To(Equal("TCP"))
				g.Expect(p.Spec.NetworkPolicy.Egress[0].Ports[1].Protocol).To(Equal("UDP"))
			},
		},
		{
			name: "an empty certificates block gets a minValidity of 1440h",
			yaml: head + "spec: {certificates: {}}\n",
			check: func(g Gomega, p *v1alpha1.MeshSecurityProfile) {
				g.Expect(p.Spec.Certificates.MinValidity).To(Equal(hours(1440)))
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			p, errs, err := validation.Decode([]byte(tt.yaml))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(fields(errs)).To(BeEmpty())
			tt.check(g, p)
		})
	}
}

func TestDefaultWritesTheDefaultsIntoTheObject(t *testing.T) {
	g := NewWithT(t)
	u := object(t, "apiVersion: security.meshguard.dev/v1alpha1\nkind: MeshSecurityProfile\nmetadata: {name: p}\nspec: {certificates: {}}\n")
	g.Expect(validation.Default(u)).To(Succeed())
	g.Expect(u.Object["spec"]).To(Equal(map[string]any{
		"mesh":         "Istio",
		"enforcement":  "Enforce",
		"mtls":         map[string]any{"mode": "Strict"},
		"certificates": map[string]any{"minValidity": "1440h"},
	}))
}

func TestDefaultRefusesAnObjectOfAnotherKind(t *testing.T) {
	g := NewWithT(t)
	u := object(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: p}\n")
	g.Expect(validation.Default(u)).To(MatchError(ContainSubstring("must be MeshSecurityProfile")))
	g.Expect(validation.Default(nil)).NotTo(Succeed())
}

func TestUnknownFieldsAreReportedWithTheClosestKnownName(t *testing.T) {
	tests := []struct {
		name, spec, path, want string
	}{
		{"a transposition", "spec: {mtsl: {mode: Strict}}", "spec.mtsl", `did you mean "mtls"?`},
		{"a letter dropped in a list item", "spec: {authorization: {rules: [{nme: a, name: a, from: {namespaces: [a]}}]}}", "spec.authorization.rules[0].nme", `did you mean "name"?`},
		{"different capitals", "spec: {requestAuthentication: {issuers: [{issuer: 'https://a.example', jwksURI: 'https://a.example/k'}]}}", "spec.requestAuthentication.issuers[0].jwksURI", `did you mean "jwksUri"?`},
		{"a name that resembles nothing", "spec: {colour: blue}", "spec.colour", "unknown field"},
		{"metadata", "metadata: {name: p, namespace: shop, lables: {a: b}}", "metadata.lables", "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			manifest := "apiVersion: security.meshguard.dev/v1alpha1\nkind: MeshSecurityProfile\n"
			if !strings.HasPrefix(tt.spec, "metadata:") {
				manifest += "metadata: {name: p}\n"
			}
			u := object(t, manifest+tt.spec+"\n")
			g.Expect(validation.Default(u)).To(Succeed())
			errs := validation.Validate(u)
			g.Expect(errs).To(HaveLen(1), "%v", fields(errs))
			g.Expect(errs[0].Field).To(Equal(tt.path))
			g.Expect(errs[0].Detail).To(ContainSubstring(tt.want))
			if tt.want == "unknown field" {
				g.Expect(errs[0].Detail).NotTo(ContainSubstring("did you mean"))
			}
		})
	}
}

func TestValidateLeavesItsInputAsItWas(t *testing.T) {
	g := NewWithT(t)
	u := object(t, "apiVersion: security.meshguard.dev/v1alpha1\nkind: MeshSecurityProfile\nmetadata: {name: p, bogus: 1}\nspec: {mtsl: {}}\nstatus: {observedGeneration: 3}\n")
	before := u.DeepCopy()
	g.Expect(validation.Validate(u)).NotTo(BeEmpty())
	g.Expect(u).To(Equal(before))
}

func TestStatusIsIgnoredBecauseCreatingCannotSetIt(t *testing.T) {
	g := NewWithT(t)
	u := object(t, "apiVersion: security.meshguard.dev/v1alpha1\nkind: MeshSecurityProfile\nmetadata: {name: p}\nstatus: {observedGeneration: -1, bogus: true}\n")
	g.Expect(validation.Default(u)).To(Succeed())
	g.Expect(fields(validation.Validate(u))).To(BeEmpty())
}

func TestMetadataIsValidatedAsForAnyNamespacedObject(t *testing.T) {
	const head = "apiVersion: security.meshguard.dev/v1alpha1\nkind: MeshSecurityProfile\n"
	tests := []struct {
		name, yaml, namespace, want string
	}{
		{"a profile needs a namespace", head + "metadata: {name: p}\n", "", "metadata.namespace"},
		{"a namespace must be a DNS label", head + "metadata: {name: p}\n", "Shop.Prod", "metadata.namespace"},
		{"a profile needs a name", head + "metadata: {labels: {a: b}}\n", "shop", "metadata.name"},
		{"generateName cannot stand in for a name offline", head + "metadata: {generateName: p-}\n", "shop", "metadata.name"},
		{"label keys must be qualified names", head + "metadata: {name: p, labels: {'a b': c}}\n", "shop", "metadata.labels"},
		{"labels must be a map", head + "metadata: {name: p, labels: [a]}\n", "shop", "metadata"},
		{"the apiVersion must be v1alpha1", "apiVersion: security.meshguard.dev/v1\nkind: MeshSecurityProfile\nmetadata: {name: p}\n", "shop", "apiVersion"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			u, err := fixtures.Object(tt.yaml, tt.namespace)
			g.Expect(err).NotTo(HaveOccurred())
			errs := validation.Validate(u)
			g.Expect(errs).To(ContainElement(HaveField("Field", tt.want)), "%v", fields(errs))
		})
	}
}

func TestErrorsComeInAStableOrder(t *testing.T) {
	g := NewWithT(t)
	manifest := "apiVersion: security.meshguard.dev/v1alpha1\nkind: MeshSecurityProfile\nmetadata: {name: p}\n" +
		"spec: {trustDomain: 'a/b', authorization: {rules: [{name: A, to: {ports: [0, 70000], methods: [get], paths: [x]}}]}, networkPolicy: {defaultDeny: [Ingress, Ingress]}}\n"
	first := fields(validation.Validate(object(t, manifest)))
	g.Expect(len(first)).To(BeNumerically(">", 5))
	for range 20 {
		g.Expect(fields(validation.Validate(object(t, manifest)))).To(Equal(first))
	}
}

func TestDecodeReadsYAMLAndJSON(t *testing.T) {
	tests := []struct{ name, input string }{
		{"YAML", "apiVersion: security.meshguard.dev/v1alpha1\nkind: MeshSecurityProfile\nmetadata: {name: p, namespace: shop}\nspec: {authorization: {rules: [{name: r, to: {ports: [8080]}}]}}\n"},
		{"JSON", `{"apiVersion":"security.meshguard.dev/v1alpha1","kind":"MeshSecurityProfile","metadata":{"name":"p","namespace":"shop"},"spec":{"authorization":{"rules":[{"name":"r","to":{"ports":[8080]}}]}}}`},
		{"YAML with a leading separator and comments", "# profile\n---\napiVersion: security.meshguard.dev/v1alpha1\nkind: MeshSecurityProfile\nmetadata: {name: p, namespace: shop}\nspec: {authorization: {rules: [{name: r, to: {ports: [8080]}}]}}\n---\n# nothing\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			p, errs, err := validation.Decode([]byte(tt.input))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(fields(errs)).To(BeEmpty())
			g.Expect(p.Kind).To(Equal("MeshSecurityProfile"))
			g.Expect(p.Namespace).To(Equal("shop"))
			g.Expect(p.Spec.Authorization.Rules[0].To.Ports).To(Equal([]int32{8080}))
			g.Expect(p.Spec.MTLS.Mode).To(Equal(v1alpha1.MTLSStrict))
		})
	}
}

func TestDecodeRefusesWhatIsNotOneManifest(t *testing.T) {
	const good = "apiVersion: security.meshguard.dev/v1alpha1\nkind: MeshSecurityProfile\nmetadata: {name: p, namespace: shop}\n"
	tests := []struct{ name, input, want string }{
		{"malformed YAML", "spec: [", "yaml"},
		{"a key given twice", good + "spec: {}\nspec: {}\n", "already"},
		{"a list instead of an object", "- a\n- b\n", "expected an object"},
		{"nothing but comments", "# nothing\n", "empty"},
		{"two documents", good + "---\n" + good, "2 documents"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			p, errs, err := validation.Decode([]byte(tt.input))
			g.Expect(err).To(MatchError(ContainSubstring(tt.want)))
			g.Expect(errs).To(BeEmpty())
			g.Expect(p).To(BeNil())
		})
	}
}

func TestDecodeReportsAnotherKindAsAFieldError(t *testing.T) {
	g := NewWithT(t)
	p, errs, err := validation.Decode([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: p, namespace: shop}\n"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(p).To(BeNil())
	g.Expect(errs).To(ConsistOf(HaveField("Field", "kind"), HaveField("Field", "apiVersion")))
}
