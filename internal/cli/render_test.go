package cli

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/render"
	"github.com/meshguard/meshguard/internal/validation"
	"github.com/meshguard/meshguard/test/fixtures"
)

// result is what one run printed.
type result struct {
	code           int
	stdout, stderr string
}

func runWith(t *testing.T, fn renderFunc, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errOut, fn)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// renderReal runs the command as the manager does, with render.Render.
func renderReal(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Render(args, strings.NewReader(stdin), &out, &errOut)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// documents parses the output stream into objects, dropping documents that hold only comments.
func documents(g Gomega, stream string) []*unstructured.Unstructured {
	docs, err := validation.SplitDocuments([]byte(stream))
	g.Expect(err).NotTo(HaveOccurred())
	var objs []*unstructured.Unstructured
	for _, d := range docs {
		m := map[string]any{}
		g.Expect(yaml.UnmarshalStrict(d, &m)).To(Succeed())
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	return objs
}

func kinds(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetKind())
	}
	return out
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func manifest(name, namespace, spec string) string {
	s := "apiVersion: security.meshguard.dev/v1alpha1\nkind: MeshSecurityProfile\nmetadata:\n  name: " + name + "\n"
	if namespace != "" {
		s += "  namespace: " + namespace + "\n"
	}
	return s + spec
}

// fakeRender renders one ConfigMap per profile, named after it, and records the options.
type fakeRender struct {
	opts     []render.Options
	profiles []string
	result   func(p *v1alpha1.MeshSecurityProfile) (*render.Result, error)
}

func (f *fakeRender) render(p *v1alpha1.MeshSecurityProfile, o render.Options) (*render.Result, error) {
	f.opts = append(f.opts, o)
	f.profiles = append(f.profiles, p.Namespace+"/"+p.Name)
	if f.result != nil {
		return f.result(p)
	}
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("ConfigMap")
	u.SetName(p.Name + "-cm")
	u.SetNamespace(p.Namespace)
	return &render.Result{Objects: []*unstructured.Unstructured{u}}, nil
}

func designProfile(t *testing.T) string {
	t.Helper()
	for _, c := range fixtures.ValidProfiles {
		if strings.HasPrefix(c.Name, "the profile of the design document") {
			return c.YAML
		}
	}
	t.Fatal("design profile fixture not found")
	return ""
}

func TestAValidIstioProfileRendersAsYAMLDocumentsOfTheExpectedKinds(t *testing.T) {
	g := NewWithT(t)
	path := writeFile(t, t.TempDir(), "profile.yaml", designProfile(t))
	r := renderReal(t, "", "-f", path)
	g.Expect(r.code).To(Equal(ExitOK), r.stderr)
	// The design profile requires tokens: its only stderr line is the warning that this also
	// denies plain TCP connections.
	g.Expect(strings.Split(strings.TrimSpace(r.stderr), "\n")).To(ConsistOf(ContainSubstring("warning: spec.requestAuthentication.requireToken")))
	g.Expect(r.stdout).To(HavePrefix("---\n# Source: " + path + "\n# MeshSecurityProfile default/baseline: mesh Istio, enforcement Enforce,"))

	objs := documents(g, r.stdout)
	g.Expect(kinds(objs)).To(ContainElements("PeerAuthentication", "RequestAuthentication", "AuthorizationPolicy", "NetworkPolicy"))
	for _, o := range objs {
		g.Expect(o.GetNamespace()).To(Equal("default"), "the manifest has no namespace")
		g.Expect(o.GetName()).To(HavePrefix("baseline-"))
		g.Expect(o.GetLabels()).To(HaveKeyWithValue(v1alpha1.LabelProfile, "baseline"))
		refs := o.GetOwnerReferences()
		g.Expect(refs).To(HaveLen(1))
		g.Expect(refs[0].Name).To(Equal("baseline"))
		g.Expect(refs[0].Kind).To(Equal("MeshSecurityProfile"))
		g.Expect(o.Object["metadata"]).To(HaveKeyWithValue("ownerReferences", ConsistOf(Not(HaveKey("uid")))),
			"a profile read from a file has no uid, and uid: \"\" would be refused by an API server")
	}
}

func TestTheOutputIsTheSameOnEveryRun(t *testing.T) {
	g := NewWithT(t)
	first := renderReal(t, designProfile(t), "-f", "-")
	g.Expect(first.code).To(Equal(ExitOK), first.stderr)
	for range 5 {
		g.Expect(renderReal(t, designProfile(t), "-f", "-").stdout).To(Equal(first.stdout))
	}
}

func TestEveryInvalidProfileExitsOneWithAnErrorNamingTheField(t *testing.T) {
	for _, c := range fixtures.InvalidProfiles {
		t.Run(c.Name, func(t *testing.T) {
			g := NewWithT(t)
			u, err := fixtures.Object(c.YAML, "")
			g.Expect(err).NotTo(HaveOccurred())
			r := renderReal(t, c.YAML, "-f", "-")
			g.Expect(r.code).To(Equal(ExitInvalid))
			g.Expect(r.stdout).To(BeEmpty())
			g.Expect(r.stderr).To(ContainSubstring("<stdin>: MeshSecurityProfile/" + u.GetName() + ": "))
			g.Expect(r.stderr).To(ContainSubstring(c.WantField))
		})
	}
}

func TestAnErrorLineNamesFileKindNameAndField(t *testing.T) {
	g := NewWithT(t)
	path := writeFile(t, t.TempDir(), "shop.yaml", manifest("baseline", "shop", "spec:\n  mtls:\n    mode: Strickt\n"))
	r := runWith(t, (&fakeRender{}).render, "", "-f", path)
	g.Expect(r.code).To(Equal(ExitInvalid))
	g.Expect(r.stderr).To(HavePrefix(path + `: MeshSecurityProfile/baseline: spec.mtls.mode: Unsupported value: "Strickt": supported values: "Strict", "Permissive", "Disable"` + "\n"))
}

func TestStandardInputIsReadWithDashF(t *testing.T) {
	g := NewWithT(t)
	fake := &fakeRender{}
	r := runWith(t, fake.render, manifest("p", "shop", ""), "-f", "-")
	g.Expect(r.code).To(Equal(ExitOK), r.stderr)
	g.Expect(fake.profiles).To(Equal([]string{"shop/p"}))
	g.Expect(r.stdout).To(ContainSubstring("# Source: <stdin>\n"))
}

func TestStandardInputCanBeGivenOnlyOnce(t *testing.T) {
	g := NewWithT(t)
	r := runWith(t, (&fakeRender{}).render, manifest("p", "shop", ""), "-f", "-", "-f", "-")
	g.Expect(r.code).To(Equal(ExitInvalid))
	g.Expect(r.stderr).To(ContainSubstring("only once"))
	g.Expect(r.stdout).To(BeEmpty())
}

func TestDocumentsOfSeveralFilesRenderInTheOrderGiven(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	a := writeFile(t, dir, "a.yaml", manifest("one", "shop", "")+"---\n# a comment-only document is skipped\n---\n"+manifest("two", "shop", ""))
	b := writeFile(t, dir, "b.json", `{"apiVersion":"security.meshguard.dev/v1alpha1","kind":"MeshSecurityProfile","metadata":{"name":"three","namespace":"shop"}}`)
	fake := &fakeRender{}
	r := runWith(t, fake.render, "", "-f", b, "--filename", a)
	g.Expect(r.code).To(Equal(ExitOK), r.stderr)
	g.Expect(fake.profiles).To(Equal([]string{"shop/three", "shop/one", "shop/two"}))
	objs := documents(g, r.stdout)
	g.Expect(objs).To(HaveLen(3))
	g.Expect([]string{objs[0].GetName(), objs[1].GetName(), objs[2].GetName()}).To(Equal([]string{"three-cm", "one-cm", "two-cm"}))
	g.Expect(strings.Count(r.stdout, "---\n")).To(Equal(3))
}

func TestEveryDocumentIsCheckedEvenAfterAnInvalidOne(t *testing.T) {
	g := NewWithT(t)
	stream := manifest("first", "shop", "spec:\n  mesh: Cilium\n") + "---\n" +
		manifest("fine", "shop", "") + "---\n" +
		manifest("third", "shop", "spec:\n  authorization:\n    rules:\n    - name: x\n")
	fake := &fakeRender{}
	r := runWith(t, fake.render, stream, "-f", "-")
	g.Expect(r.code).To(Equal(ExitInvalid))
	g.Expect(r.stdout).To(BeEmpty(), "nothing is printed unless every profile is valid")
	g.Expect(r.stderr).To(ContainSubstring("<stdin>: MeshSecurityProfile/first: spec.mesh: Unsupported value"))
	g.Expect(r.stderr).To(ContainSubstring("<stdin>: MeshSecurityProfile/third: spec.authorization.rules[0]: Invalid value: a rule needs from or to"))
	g.Expect(r.stderr).NotTo(ContainSubstring("MeshSecurityProfile/fine"))
	g.Expect(fake.profiles).To(Equal([]string{"shop/fine"}), "valid profiles are still rendered, to report their errors too")
}

func TestTheNamespaceDefaultsToDefaultAndCanBeSet(t *testing.T) {
	tests := []struct {
		name     string
		manifest string
		args     []string
		want     string
		wantErr  string
	}{
		{name: "a manifest without namespace goes to default", manifest: manifest("p", "", ""), want: "default/p"},
		{name: "--namespace sets the namespace of a manifest without one", manifest: manifest("p", "", ""), args: []string{"--namespace", "shop"}, want: "shop/p"},
		{name: "-n is short for --namespace", manifest: manifest("p", "", ""), args: []string{"-n", "shop"}, want: "shop/p"},
		{name: "the manifest's namespace is kept", manifest: manifest("p", "shop", ""), want: "shop/p"},
		{name: "the manifest's namespace may repeat -n", manifest: manifest("p", "shop", ""), args: []string{"-n", "shop"}, want: "shop/p"},
		{name: "a manifest's namespace that differs from -n is an error, as with kubectl", manifest: manifest("p", "shop", ""), args: []string{"-n", "other"},
			wantErr: `<stdin>: MeshSecurityProfile/p: metadata.namespace: Invalid value: "shop": does not match --namespace "other"`},
		{name: "-n must be a valid namespace", manifest: manifest("p", "", ""), args: []string{"-n", "Not_A_Namespace"},
			wantErr: `<stdin>: MeshSecurityProfile/p: metadata.namespace: Invalid value: "Not_A_Namespace"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			fake := &fakeRender{}
			r := runWith(t, fake.render, tt.manifest, append([]string{"-f", "-"}, tt.args...)...)
			if tt.wantErr != "" {
				g.Expect(r.code).To(Equal(ExitInvalid))
				g.Expect(r.stderr).To(ContainSubstring(tt.wantErr))
				g.Expect(fake.profiles).To(BeEmpty())
				return
			}
			g.Expect(r.code).To(Equal(ExitOK), r.stderr)
			g.Expect(fake.profiles).To(Equal([]string{tt.want}))
		})
	}
}

func TestFlagsReachTheRenderOptions(t *testing.T) {
	g := NewWithT(t)
	fake := &fakeRender{}
	r := runWith(t, fake.render, manifest("p", "shop", ""), "-f", "-", "--trust-domain", "prod.example.com",
		"--istio-namespace", "istio-prod", "--linkerd-namespace", "linkerd-prod")
	g.Expect(r.code).To(Equal(ExitOK), r.stderr)
	g.Expect(fake.opts).To(HaveLen(1))
	g.Expect(fake.opts[0].TrustDomain).To(Equal("prod.example.com"))
	g.Expect(fake.opts[0].IstioNamespace).To(Equal("istio-prod"))
	g.Expect(fake.opts[0].LinkerdNamespace).To(Equal("linkerd-prod"))
	g.Expect(fake.opts[0].DNSNamespace).To(Equal(render.DefaultOptions().DNSNamespace))
}

func TestFlagsDefaultToAStockCluster(t *testing.T) {
	g := NewWithT(t)
	fake := &fakeRender{}
	r := runWith(t, fake.render, manifest("p", "shop", ""), "-f", "-")
	g.Expect(r.code).To(Equal(ExitOK), r.stderr)
	g.Expect(fake.opts).To(Equal([]render.Options{render.DefaultOptions()}))
	g.Expect(fake.opts[0].TrustDomain).To(Equal("cluster.local"))
}

func TestFieldsTheMeshCannotExpressExitOne(t *testing.T) {
	g := NewWithT(t)
	fake := &fakeRender{result: func(*v1alpha1.MeshSecurityProfile) (*render.Result, error) {
		return &render.Result{Unsupported: []string{"spec.authorization.rules[0].action: Linkerd has no deny policies"}}, nil
	}}
	r := runWith(t, fake.render, manifest("p", "shop", "spec:\n  mesh: Linkerd\n"), "-f", "-")
	g.Expect(r.code).To(Equal(ExitInvalid))
	g.Expect(r.stdout).To(BeEmpty())
	g.Expect(r.stderr).To(Equal("<stdin>: MeshSecurityProfile/p: not supported by Linkerd: spec.authorization.rules[0].action: Linkerd has no deny policies\n"))
}

func TestWarningsArePrintedOnStandardErrorAndKeepTheExitCode(t *testing.T) {
	g := NewWithT(t)
	r := renderReal(t, manifest("p", "shop", `spec:
  authorization:
    rules:
    - name: no-delete
      action: Deny
      to: {methods: [DELETE]}
`), "-f", "-")
	g.Expect(r.code).To(Equal(ExitOK), r.stderr)
	g.Expect(r.stderr).To(HavePrefix("<stdin>: MeshSecurityProfile/p: warning: spec.authorization.rules[no-delete].to: a Deny rule with methods or paths and no ports also denies every non-HTTP (TCP) connection"))
	g.Expect(r.stdout).To(ContainSubstring("kind: AuthorizationPolicy"))
}

func TestProfilesInTheMeshRootAndControlPlaneNamespacesAreRefused(t *testing.T) {
	for _, ns := range []string{"istio-system", "linkerd", "mesh-root"} {
		g := NewWithT(t)
		r := renderReal(t, manifest("p", ns, ""), "-f", "-", "--istio-root-namespace", "mesh-root")
		g.Expect(r.code).To(Equal(ExitInvalid), ns)
		g.Expect(r.stderr).To(ContainSubstring("metadata.namespace: Forbidden: a profile cannot govern namespace %q", ns))
	}
}

func TestRenderErrorsNameTheFieldLikeValidationErrors(t *testing.T) {
	g := NewWithT(t)
	fake := &fakeRender{result: func(*v1alpha1.MeshSecurityProfile) (*render.Result, error) {
		return nil, &render.InvalidSpecError{Errs: field.ErrorList{field.Invalid(field.NewPath("spec", "mtls", "overrides").Index(0), "x", "overlaps another override")}}
	}}
	r := runWith(t, fake.render, manifest("p", "shop", ""), "-f", "-")
	g.Expect(r.code).To(Equal(ExitInvalid))
	g.Expect(r.stderr).To(Equal("<stdin>: MeshSecurityProfile/p: spec.mtls.overrides[0]: Invalid value: \"x\": overlaps another override\n"))

	fake.result = func(*v1alpha1.MeshSecurityProfile) (*render.Result, error) { return nil, errors.New("boom") }
	r = runWith(t, fake.render, manifest("p", "shop", ""), "-f", "-")
	g.Expect(r.code).To(Equal(ExitInvalid))
	g.Expect(r.stderr).To(Equal("<stdin>: MeshSecurityProfile/p: render: boom\n"))
}

func TestNamespaceAnnotationsArePrintedAsAComment(t *testing.T) {
	g := NewWithT(t)
	fake := &fakeRender{result: func(*v1alpha1.MeshSecurityProfile) (*render.Result, error) {
		return &render.Result{NamespaceAnnotations: map[string]string{
			"config.linkerd.io/default-inbound-policy": "all-authenticated",
			"a.example/first":                          "1",
		}}, nil
	}}
	r := runWith(t, fake.render, manifest("p", "shop", "spec:\n  mesh: Linkerd\n  enforcement: Audit\n"), "-f", "-")
	g.Expect(r.code).To(Equal(ExitOK), r.stderr)
	g.Expect(r.stdout).To(Equal(`---
# Source: <stdin>
# MeshSecurityProfile shop/p: mesh Linkerd, enforcement Audit, 0 objects
# Audit: meshguard compares these objects with the cluster and reports drift; it does not apply them.
# meshguard also sets these annotations on Namespace shop (server-side apply, field manager meshguard):
#   a.example/first: 1
#   config.linkerd.io/default-inbound-policy: all-authenticated
`))
	g.Expect(documents(g, r.stdout)).To(BeEmpty(), "a comment is no object: applying the output does not touch the Namespace")
}

func TestAProfileGivenTwiceIsAnError(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	a := writeFile(t, dir, "a.yaml", manifest("p", "shop", ""))
	b := writeFile(t, dir, "b.yaml", manifest("p", "", ""))
	r := runWith(t, (&fakeRender{}).render, "", "-f", a, "-f", b, "-n", "shop")
	g.Expect(r.code).To(Equal(ExitInvalid))
	g.Expect(r.stderr).To(Equal(b + `: MeshSecurityProfile/p: metadata.name: Duplicate value: "shop/p": also in ` + a + "\n"))
}

func TestADirectoryIsReadFileByFile(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	writeFile(t, dir, "b.yml", manifest("b", "shop", ""))
	writeFile(t, dir, "a.yaml", manifest("a", "shop", ""))
	writeFile(t, dir, "README.md", "not a manifest")
	fake := &fakeRender{}
	r := runWith(t, fake.render, "", "-f", dir)
	g.Expect(r.code).To(Equal(ExitOK), r.stderr)
	g.Expect(fake.profiles).To(Equal([]string{"shop/a", "shop/b"}))

	empty := t.TempDir()
	r = runWith(t, fake.render, "", "-f", empty)
	g.Expect(r.code).To(Equal(ExitInvalid))
	g.Expect(r.stderr).To(ContainSubstring("no .yaml, .yml or .json files"))
}

func TestObjectsOfOtherKindsAreSkippedAndListsAreOpened(t *testing.T) {
	g := NewWithT(t)
	stream := "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n" +
		"apiVersion: v1\nkind: List\nitems:\n- apiVersion: security.meshguard.dev/v1alpha1\n  kind: MeshSecurityProfile\n  metadata: {name: a, namespace: shop}\n" +
		"- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: c}\n"
	fake := &fakeRender{}
	r := runWith(t, fake.render, stream, "-f", "-")
	g.Expect(r.code).To(Equal(ExitOK), r.stderr)
	g.Expect(fake.profiles).To(Equal([]string{"shop/a"}))
	g.Expect(r.stderr).To(ContainSubstring("<stdin>: document 1: v1/Namespace shop: read for its labels"))
	g.Expect(r.stderr).To(ContainSubstring("<stdin>: document 2: skipping v1/ConfigMap c: not a MeshSecurityProfile or ClusterMeshSecurityProfile"))
}

func TestInputThatIsNotAManifestIsAnError(t *testing.T) {
	tests := []struct{ name, input, want string }{
		{"malformed YAML", "a: [", "<stdin>: "},
		{"a document without kind", "foo: bar\n", "<stdin>: document 1: not a Kubernetes object"},
		{"a key given twice", manifest("p", "shop", "spec: {}\nspec: {}\n"), "<stdin>: document 1: "},
		{"another version of the API", "apiVersion: security.meshguard.dev/v1\nkind: MeshSecurityProfile\nmetadata: {name: p}\n", `<stdin>: MeshSecurityProfile/p: apiVersion: Invalid value: "security.meshguard.dev/v1"`},
		{"a profile without a name", "apiVersion: security.meshguard.dev/v1alpha1\nkind: MeshSecurityProfile\nmetadata: {namespace: shop}\n", "<stdin>: MeshSecurityProfile (document 1): metadata.name: Required value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			r := runWith(t, (&fakeRender{}).render, tt.input, "-f", "-")
			g.Expect(r.code).To(Equal(ExitInvalid))
			g.Expect(r.stdout).To(BeEmpty())
			g.Expect(r.stderr).To(ContainSubstring(tt.want))
		})
	}
}

func TestAMissingFileIsAnError(t *testing.T) {
	g := NewWithT(t)
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	r := runWith(t, (&fakeRender{}).render, "", "-f", missing)
	g.Expect(r.code).To(Equal(ExitInvalid))
	g.Expect(r.stderr).To(Equal(missing + ": no such file or directory\n"))
}

func TestAWrongCommandLineIsAUsageError(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no -f", nil, ExitUsage, "at least one -f is required"},
		{"an unknown flag", []string{"-f", "-", "--output", "json"}, ExitUsage, "unknown flag: --output"},
		{"a file without -f", []string{"profile.yaml"}, ExitUsage, `unexpected argument "profile.yaml"`},
		{"-f without a value", []string{"-f"}, ExitUsage, "flag needs an argument"},
		{"a trust domain with a slash", []string{"-f", "-", "--trust-domain", "cluster.local/x"}, ExitUsage, "is not a trust domain"},
		{"--help", []string{"--help"}, ExitOK, "Usage: manager render -f FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			r := runWith(t, (&fakeRender{}).render, "", tt.args...)
			g.Expect(r.code).To(Equal(tt.code))
			g.Expect(r.stdout).To(BeEmpty())
			g.Expect(r.stderr).To(ContainSubstring(tt.want))
		})
	}
}

func TestStandaloneObjectsHaveNoOwnerReferences(t *testing.T) {
	g := NewWithT(t)
	owned := renderReal(t, "", "-f", shopSample)
	g.Expect(owned.code).To(Equal(ExitOK), owned.stderr)
	for _, o := range documents(g, owned.stdout) {
		g.Expect(o.GetOwnerReferences()).To(HaveLen(1), "%s %s", o.GetKind(), o.GetName())
	}
	r := renderReal(t, "", "-f", shopSample, "--standalone")
	g.Expect(r.code).To(Equal(ExitOK), r.stderr)
	objs := documents(g, r.stdout)
	g.Expect(objs).NotTo(BeEmpty())
	for _, o := range objs {
		g.Expect(o.GetOwnerReferences()).To(BeEmpty(), "%s %s", o.GetKind(), o.GetName())
	}
	g.Expect(r.stdout).To(ContainSubstring("# --standalone"))
}

func TestQuietLeavesOutInfoLinesButNotWarnings(t *testing.T) {
	g := NewWithT(t)
	const in = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"
	loud := renderReal(t, in, "-f", "-")
	g.Expect(loud.stderr).To(ContainSubstring("read for its labels"))
	g.Expect(loud.stderr).To(ContainSubstring("skipping v1/ConfigMap x"))
	quiet := renderReal(t, in, "-f", "-", "-q")
	g.Expect(quiet.stderr).To(BeEmpty())
	bad := renderReal(t, manifest("p", "shop", "spec:\n  mtls:\n    mode: Sometimes\n"), "-f", "-", "-q")
	g.Expect(bad.code).To(Equal(ExitInvalid))
	g.Expect(bad.stderr).To(ContainSubstring("spec.mtls.mode"), "errors are never quieted")
}
