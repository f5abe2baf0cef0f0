package drift

import (
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

func obj(t *testing.T, y string) *unstructured.Unstructured {
	t.Helper()
	m := map[string]any{}
	if err := yaml.Unmarshal([]byte(y), &m); err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: m}
}

const rendered = `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: p-mtls
  labels: {app.kubernetes.io/managed-by: meshguard, security.meshguard.dev/profile: p}
spec:
  mtls: {mode: STRICT}
  portLevelMtls:
    "8080": {mode: PERMISSIVE}
`

func TestCompare(t *testing.T) {
	cases := []struct {
		name string
		live string
		want []string
	}{
		{"an identical object has no changes", rendered, nil},
		{"status, other labels, annotations and managed fields written by others are not drift", `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: p-mtls
  resourceVersion: "42"
  labels: {app.kubernetes.io/managed-by: meshguard, security.meshguard.dev/profile: p, team: blue}
  annotations: {kubectl.kubernetes.io/last-applied-configuration: "{}"}
spec:
  mtls: {mode: STRICT}
  portLevelMtls:
    "8080": {mode: PERMISSIVE}
status:
  validationMessages: [{type: {code: IST0001}}]
`, nil},
		{"an edited mode is reported with old and new value", `
metadata:
  labels: {app.kubernetes.io/managed-by: meshguard, security.meshguard.dev/profile: p}
spec:
  mtls: {mode: PERMISSIVE}
  portLevelMtls:
    "8080": {mode: PERMISSIVE}
`, []string{"spec.mtls.mode: STRICT → PERMISSIVE"}},
		{"an added port exception is an extra field", `
metadata:
  labels: {app.kubernetes.io/managed-by: meshguard, security.meshguard.dev/profile: p}
spec:
  mtls: {mode: STRICT}
  portLevelMtls:
    "8080": {mode: PERMISSIVE}
    "9090": {mode: DISABLE}
`, []string{`spec.portLevelMtls.9090: added {"mode":"DISABLE"}`}},
		{"a removed field is reported", `
metadata:
  labels: {app.kubernetes.io/managed-by: meshguard, security.meshguard.dev/profile: p}
spec:
  mtls: {mode: STRICT}
`, []string{`spec.portLevelMtls: {"8080":{"mode":"PERMISSIVE"}} removed`}},
		{"a changed meshguard label is drift", `
metadata:
  labels: {app.kubernetes.io/managed-by: someone, security.meshguard.dev/profile: p}
spec:
  mtls: {mode: STRICT}
  portLevelMtls:
    "8080": {mode: PERMISSIVE}
`, []string{"metadata.labels[app.kubernetes.io/managed-by]: meshguard → someone"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			var got []string
			for _, c := range Compare(obj(t, rendered), obj(t, tc.live)) {
				got = append(got, c.String())
			}
			g.Expect(got).To(Equal(tc.want))
		})
	}
}

func TestCompareLists(t *testing.T) {
	want := obj(t, `
spec:
  rules:
  - from: [{source: {principals: [cluster.local/ns/a/sa/b]}}]
`)
	t.Run("an added rule changes the list length", func(t *testing.T) {
		g := NewWithT(t)
		live := obj(t, `
spec:
  rules:
  - from: [{source: {principals: [cluster.local/ns/a/sa/b]}}]
  - {}
`)
		c := Compare(want, live)
		g.Expect(c).To(HaveLen(1))
		g.Expect(c[0].Path).To(Equal("spec.rules"))
		g.Expect(c[0].Extra).To(BeFalse(), "a changed list is restored by apply, not by removal")
	})
	t.Run("an edited principal inside a rule is named by index", func(t *testing.T) {
		g := NewWithT(t)
		live := obj(t, `
spec:
  rules:
  - from: [{source: {principals: ["*"]}}]
`)
		c := Compare(want, live)
		g.Expect(c).To(HaveLen(1))
		g.Expect(c[0].String()).To(Equal("spec.rules[0].from[0].source.principals[0]: cluster.local/ns/a/sa/b → *"))
	})
	t.Run("integers compare by value whatever their Go type", func(t *testing.T) {
		g := NewWithT(t)
		a := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"port": int64(53)}}}
		b := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"port": float64(53)}}}
		g.Expect(Compare(a, b)).To(BeEmpty())
	})
}

func TestCompareOwnerReference(t *testing.T) {
	g := NewWithT(t)
	want := &unstructured.Unstructured{Object: map[string]any{}}
	ref := metav1.OwnerReference{APIVersion: "security.meshguard.dev/v1alpha1", Kind: "MeshSecurityProfile", Name: "p", UID: "u1", Controller: ptr.To(true)}
	want.SetOwnerReferences([]metav1.OwnerReference{ref})
	live := &unstructured.Unstructured{Object: map[string]any{}}
	g.Expect(Compare(want, live)).To(HaveLen(1), "a removed controller reference is drift")
	live.SetOwnerReferences([]metav1.OwnerReference{ref})
	g.Expect(Compare(want, live)).To(BeEmpty())
}

func TestSummary(t *testing.T) {
	g := NewWithT(t)
	cs := []Change{{Path: "a", Want: "1", Got: "2"}, {Path: "b", Want: "x"}, {Path: "c", Got: "y", Extra: true}}
	g.Expect(Summary(cs, 2)).To(Equal("a: 1 → 2; b: x removed; and 1 more"))
	g.Expect(Paths(cs)).To(Equal("a, b, c"))
}

func TestComparePointer(t *testing.T) {
	g := NewWithT(t)
	want := obj(t, `{spec: {selector: {matchLabels: {app: a}}}}`)
	live := obj(t, `{spec: {selector: {matchLabels: {app: a, "example.com/x~y": b}}}}`)
	c := Compare(want, live)
	g.Expect(c).To(HaveLen(1))
	g.Expect(c[0].Extra).To(BeTrue())
	g.Expect(c[0].Pointer).To(Equal("/spec/selector/matchLabels/example.com~1x~0y"))
}
