package crds

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/render"
)

// versions returns the served and the stored versions of the CRD named name.
func versions(g Gomega, crds []*apiextensionsv1.CustomResourceDefinition, name string) (served []string, stored string) {
	for _, c := range crds {
		if c.Name != name {
			continue
		}
		for _, v := range c.Spec.Versions {
			if v.Served {
				served = append(served, v.Name)
			}
			if v.Storage {
				stored = v.Name
			}
		}
		return served, stored
	}
	g.Expect(name).To(BeEmpty(), "CRD %s not found", name)
	return nil, ""
}

func TestIstioCRDs(t *testing.T) {
	g := NewWithT(t)
	crds, err := IstioCRDs()
	g.Expect(err).NotTo(HaveOccurred())
	for _, name := range []string{
		"peerauthentications.security.istio.io",
		"requestauthentications.security.istio.io",
		"authorizationpolicies.security.istio.io",
	} {
		served, stored := versions(g, crds, name)
		g.Expect(stored).To(Equal("v1"), name)
		g.Expect(served).To(ContainElement("v1"), name)
	}
}

// linkerdCRDs fails the test when Linkerd's CRDs cannot be had, unless MESHGUARD_SKIP_LINKERD=1
// asks to skip it: a Linkerd test is never skipped silently.
func linkerdCRDs(t *testing.T) []*apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	crds, err := LinkerdCRDs()
	if errors.Is(err, ErrLinkerdUnavailable) && SkipLinkerd() {
		t.Skipf("%s=1: Linkerd's CRDs not checked: %v", SkipLinkerdEnv, err)
	}
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	return crds
}

func TestLinkerdCRDs(t *testing.T) {
	g := NewWithT(t)
	crds := linkerdCRDs(t)
	tests := []struct {
		name   string
		served string
		stored string
	}{
		{name: "servers.policy.linkerd.io", served: "v1beta3", stored: "v1beta3"},
		{name: "authorizationpolicies.policy.linkerd.io", served: "v1alpha1", stored: "v1alpha1"},
		{name: "meshtlsauthentications.policy.linkerd.io", served: "v1alpha1", stored: "v1alpha1"},
		{name: "networkauthentications.policy.linkerd.io", served: "v1alpha1", stored: "v1alpha1"},
		{name: "httproutes.policy.linkerd.io", served: "v1beta3"},
	}
	for _, tt := range tests {
		served, stored := versions(g, crds, tt.name)
		g.Expect(served).To(ContainElement(tt.served), tt.name)
		if tt.stored != "" {
			g.Expect(stored).To(Equal(tt.stored), tt.name)
		}
	}
	for _, c := range crds {
		g.Expect(c.Annotations).To(HaveKeyWithValue("linkerd.io/created-by", HavePrefix("linkerd/helm ")), c.Name)
	}
}

func TestLinkerdVersionIsAPseudoVersion(t *testing.T) {
	g := NewWithT(t)
	// linkerd2 has no semver tags after v0.5.0: every later commit is v0.5.1-0.<time>-<hash>.
	g.Expect(LinkerdVersion).To(MatchRegexp(`^v0\.5\.1-0\.\d{14}-[0-9a-f]{12}$`))
}

func TestLinkerdCRDsFromChartResolvesTheTemplates(t *testing.T) {
	g := NewWithT(t)
	crds, err := LinkerdCRDsFromChart("testdata/chart")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(crds).To(HaveLen(1))
	c := crds[0]
	g.Expect(c.Name).To(Equal("widgets.example.meshguard.dev"))
	g.Expect(c.Annotations).To(Equal(map[string]string{
		"linkerd.io/created-by":       "linkerd/helm 1.2.3+build.7",
		"example.meshguard.dev/image": "v9",
	}))
	g.Expect(c.Labels).To(Equal(map[string]string{
		"helm.sh/chart":            "widget-crds-1.2.3_build.7",
		"example.meshguard.dev/ns": "linkerd",
	}))
	served, stored := versions(g, crds, c.Name)
	g.Expect(served).To(Equal([]string{"v1alpha1", "v1"}))
	g.Expect(stored).To(Equal("v1"))
}

func TestResolveTemplateRefusesWhatItCannotFollow(t *testing.T) {
	c := &chart{name: "n", version: "1", values: map[string]any{"m": map[string]any{"k": "v"}}}
	tests := []struct {
		name     string
		template string
		want     string
	}{
		{name: "an else branch would be kept beside its if", template: "{{- if .Values.a }}\na: 1\n{{- else }}\na: 2\n{{- end }}", want: "{{ else }} is not supported"},
		{name: "an unknown function is refused", template: "x: {{ .Chart.Name | upper }}", want: `unsupported template function "upper"`},
		{name: "an unknown partial is refused", template: `{{ include "partials.other" . }}`, want: "unsupported template expression"},
		{name: "a value missing from values.yaml is refused", template: "x: {{ .Values.missing }}", want: ".Values.missing is not in values.yaml"},
		{name: "a map value is refused", template: "x: {{ .Values.m }}", want: "is not a scalar"},
		{name: "the line of the error is named", template: "a: 1\nb: {{ .Files.Get \"x\" }}", want: "line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := resolveTemplate(tt.template, c)
			g.Expect(err).To(MatchError(ContainSubstring(tt.want)))
		})
	}
}

func TestParseCRDsRefusesInvalidCRDs(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want string
	}{
		{name: "another kind is refused", doc: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", want: "not a CustomResourceDefinition"},
		{
			name: "a CRD without a stored version is refused",
			doc: `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets}
  versions:
  - {name: v1, served: true, storage: false, schema: {openAPIV3Schema: {type: object}}}
`,
			want: "must have exactly one version marked as storage version",
		},
		{name: "an unknown field is refused", doc: "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nbogus: 1\n", want: "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := parseCRDs("test", []byte(tt.doc))
			g.Expect(err).To(MatchError(ContainSubstring(tt.want)))
		})
	}
}

func TestValidator(t *testing.T) {
	crds, err := LinkerdCRDsFromChart("testdata/chart")
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewValidator(crds...)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		obj  string
		want string // "" when valid
	}{
		{name: "a valid object passes", obj: "apiVersion: example.meshguard.dev/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: 2, color: red}\n"},
		{name: "a schema violation is reported", obj: "apiVersion: example.meshguard.dev/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: 0}\n", want: "spec.size"},
		{name: "a CEL rule violation is reported", obj: "apiVersion: example.meshguard.dev/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: 1, color: black}\n", want: "no black widgets"},
		{name: "an unknown field is reported", obj: "apiVersion: example.meshguard.dev/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: 1, colour: red}\n", want: "spec.colour"},
		{name: "an unknown kind is reported", obj: "apiVersion: example.meshguard.dev/v1\nkind: Gadget\nmetadata: {name: w}\n", want: "Unsupported value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			u := &unstructured.Unstructured{}
			g.Expect(yaml.Unmarshal([]byte(tt.obj), &u.Object)).To(Succeed())
			errs := v.Validate(u)
			if tt.want == "" {
				g.Expect(errs).To(BeEmpty())
				return
			}
			g.Expect(errs.ToAggregate()).To(MatchError(ContainSubstring(tt.want)))
		})
	}
}

// TestRenderedObjectsMatchTheMeshCRDs renders every golden profile of internal/render and checks
// each Istio and Linkerd object against the real CRD schema: what the API server would refuse or
// silently drop is a rendering bug. Linkerd objects are checked when the Linkerd CRDs can be had.
func TestRenderedObjectsMatchTheMeshCRDs(t *testing.T) {
	g := NewWithT(t)
	istio, err := IstioCRDs()
	g.Expect(err).NotTo(HaveOccurred())
	all := istio
	linkerd, err := LinkerdCRDs()
	haveLinkerd := err == nil
	if !haveLinkerd && !(errors.Is(err, ErrLinkerdUnavailable) && SkipLinkerd()) {
		t.Fatal(err)
	}
	all = append(all, linkerd...)
	v, err := NewValidator(all...)
	g.Expect(err).NotTo(HaveOccurred())

	profiles, err := filepath.Glob("../../internal/render/testdata/*.yaml")
	g.Expect(err).NotTo(HaveOccurred())
	checked := map[string]int{}
	for _, path := range profiles {
		if strings.HasSuffix(path, ".golden.yaml") {
			continue
		}
		p := &v1alpha1.MeshSecurityProfile{}
		b, err := os.ReadFile(path)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(yaml.Unmarshal(b, p)).To(Succeed(), path)
		if p.Namespace == "" {
			p.Namespace = "default"
		}
		p.UID = types.UID("00000000-0000-0000-0000-000000000001")
		res, err := render.Render(p, render.DefaultOptions())
		if err != nil {
			continue // the invalid-* cases
		}
		for _, o := range res.Objects {
			group := o.GroupVersionKind().Group
			switch {
			case strings.HasSuffix(group, ".istio.io"):
			case group == "policy.linkerd.io" && haveLinkerd:
			default:
				continue
			}
			checked[group]++
			g.Expect(v.Validate(o)).To(BeEmpty(), "%s: %s %s", filepath.Base(path), o.GetKind(), o.GetName())
		}
	}
	g.Expect(checked).To(HaveKey("security.istio.io"), "no Istio object was checked")
	if haveLinkerd {
		g.Expect(checked).To(HaveKey("policy.linkerd.io"), "no Linkerd object was checked")
	} else {
		t.Logf("%s=1: Linkerd objects not checked", SkipLinkerdEnv)
	}
}

func TestWriteAll(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	err := WriteAll(dir)
	if err != nil {
		g.Expect(err).To(MatchError(ErrLinkerdUnavailable))
	}
	b, rerr := os.ReadFile(filepath.Join(dir, "peerauthentications.security.istio.io.yaml"))
	g.Expect(rerr).NotTo(HaveOccurred())
	back, perr := parseCRDs("written", b)
	g.Expect(perr).NotTo(HaveOccurred())
	g.Expect(back).To(HaveLen(1))
	if err == nil {
		_, serr := os.Stat(filepath.Join(dir, "servers.policy.linkerd.io.yaml"))
		g.Expect(serr).NotTo(HaveOccurred())
	}
}

func TestAChartCopyMustBeOfThePinnedCommit(t *testing.T) {
	pin := LinkerdVersion[strings.LastIndex(LinkerdVersion, "-")+1:]
	tests := []struct {
		name    string
		source  string // SOURCE.md; "" for none
		wantErr string
	}{
		{name: "a copy of the pinned commit is taken", source: "charts/linkerd-crds at commit " + pin + "0123456789abcdef0123456789ab\n"},
		{name: "a copy of another commit is refused, naming both", source: "at commit 0123456789abcdef0123456789abcdef01234567\n",
			wantErr: "holds linkerd2 commit 0123456789abcdef0123456789abcdef01234567 (its SOURCE.md), but test/crds pins " + LinkerdVersion},
		{name: "a checkout without SOURCE.md (to try another version) is taken as it is"},
		{name: "a SOURCE.md that names no commit is taken as it is", source: "copied by hand\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			dir := t.TempDir()
			if tt.source != "" {
				g.Expect(os.WriteFile(filepath.Join(dir, "SOURCE.md"), []byte(tt.source), 0o644)).To(Succeed())
			}
			err := checkChartSource(dir)
			if tt.wantErr == "" {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			g.Expect(err).To(MatchError(ContainSubstring(tt.wantErr)))
		})
	}
}

func TestTheSharedChartCopyIsOfThePinnedCommit(t *testing.T) {
	dir := os.Getenv(LinkerdChartEnv)
	if dir == "" {
		t.Skipf("%s is not set: the chart comes from the pinned module", LinkerdChartEnv)
	}
	NewWithT(t).Expect(checkChartSource(dir)).To(Succeed())
}

func TestNetworkPolicyAPICRDs(t *testing.T) {
	g := NewWithT(t)
	c, err := NetworkPolicyAPICRDs()
	g.Expect(err).NotTo(HaveOccurred())
	served, _ := versions(g, c, "adminnetworkpolicies.policy.networking.k8s.io")
	g.Expect(served).To(ContainElement("v1alpha1"))
	served, _ = versions(g, c, "baselineadminnetworkpolicies.policy.networking.k8s.io")
	g.Expect(served).To(ContainElement("v1alpha1"))
	served, _ = versions(g, c, "clusternetworkpolicies.policy.networking.k8s.io")
	g.Expect(served).To(ContainElement("v1alpha2"))
}
