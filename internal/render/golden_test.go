package render

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.yaml from the current output")

// TestGolden renders every testdata/<case>.yaml profile and compares the result with
// testdata/<case>.golden.yaml. Run `go test ./internal/render -update` to rewrite the goldens, then
// review the YAML diff like code.
//
// A case whose profile cannot be rendered has the error message as its golden, prefixed with
// "error: "; one whose fields the mesh cannot express lists them prefixed with "unsupported: ".
func TestGolden(t *testing.T) {
	cases := profileCases(t, "testdata/*.yaml")
	n := 0
	for _, in := range cases {
		n++
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			p := loadProfile(t, in)
			got := renderText(p)
			goldenPath := strings.TrimSuffix(in, ".yaml") + ".golden.yaml"
			if *update {
				g.Expect(os.WriteFile(goldenPath, got, 0o644)).To(Succeed())
			}
			want, err := os.ReadFile(goldenPath)
			g.Expect(err).NotTo(HaveOccurred(), "missing golden; run go test ./internal/render -update")
			g.Expect(string(got)).To(Equal(string(want)))
		})
	}
	if n == 0 {
		t.Fatal("no golden cases found in testdata/")
	}
}

// loadProfile reads a profile and gives it the UID an API server would, so that ownerReferences
// are stable in goldens.
func loadProfile(t testing.TB, path string) *v1alpha1.MeshSecurityProfile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p := &v1alpha1.MeshSecurityProfile{}
	if err := yaml.UnmarshalStrict(b, p); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if p.Namespace == "" {
		p.Namespace = "default"
	}
	p.UID = types.UID("00000000-0000-0000-0000-000000000001")
	return p
}

func renderText(p *v1alpha1.MeshSecurityProfile) []byte {
	return renderTextWith(p, DefaultOptions())
}

// renderTextWith is renderText with options; enforcement rows and unenforceable parts (only with
// data plane facts) come first, as comments.
func renderTextWith(p *v1alpha1.MeshSecurityProfile, opts Options) []byte {
	res, err := Render(p, opts)
	var buf bytes.Buffer
	var invalid *InvalidSpecError
	switch {
	case errors.As(err, &invalid):
		buf.WriteString("error: " + err.Error() + "\n")
		return buf.Bytes()
	case err != nil:
		buf.WriteString("unexpected error: " + err.Error() + "\n")
		return buf.Bytes()
	case len(res.Unsupported) > 0:
		for _, u := range res.Unsupported {
			buf.WriteString("unsupported: " + u + "\n")
		}
		return buf.Bytes()
	}
	for _, u := range res.Unenforceable {
		buf.WriteString("# unenforceable: " + u + "\n")
	}
	for _, e := range res.Enforcement {
		fmt.Fprintf(&buf, "# enforcement: %s by %s for %d pods %v", e.Rule, e.EnforcedBy, e.PodCount, e.Pods)
		if e.Reason != "" {
			buf.WriteString(": " + e.Reason)
		}
		buf.WriteString("\n")
	}
	for _, b := range res.AmbientBound {
		buf.WriteString("# ambient-bound: " + b + "\n")
	}
	for _, w := range res.Warnings {
		buf.WriteString("# warning: " + w + "\n")
	}
	if len(res.NamespaceAnnotations) > 0 {
		keys := make([]string, 0, len(res.NamespaceAnnotations))
		for k := range res.NamespaceAnnotations {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			buf.WriteString("# namespace annotation: " + k + "=" + res.NamespaceAnnotations[k] + "\n")
		}
	}
	for i, o := range res.Objects {
		if i > 0 {
			buf.WriteString("---\n")
		}
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			buf.WriteString("marshal error: " + err.Error() + "\n")
			continue
		}
		buf.Write(b)
	}
	return buf.Bytes()
}

// profileCases lists the testdata profiles matching pattern, goldens excluded.
func profileCases(t testing.TB, pattern string) []string {
	t.Helper()
	all, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, in := range all {
		if !strings.HasSuffix(in, ".golden.yaml") {
			out = append(out, in)
		}
	}
	return out
}

// renderByKindName renders a profile that must render and indexes its objects by "Kind/name".
func renderByKindName(g Gomega, p *v1alpha1.MeshSecurityProfile) map[string]*unstructured.Unstructured {
	res, err := Render(p, DefaultOptions())
	g.Expect(err).NotTo(HaveOccurred())
	byName := map[string]*unstructured.Unstructured{}
	for _, o := range res.Objects {
		byName[o.GetKind()+"/"+o.GetName()] = o
	}
	return byName
}
