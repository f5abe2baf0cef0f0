package render

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/dataplane"
)

// ambientFacts is the file testdata/ambient/<case>.facts.yaml: what the controller would have
// observed in the profile's namespace.
type ambientFacts struct {
	SourceServiceAccounts bool                `json:"sourceServiceAccounts"`
	NamespaceLabels       map[string]string   `json:"namespaceLabels"`
	Pods                  []dataplane.Pod     `json:"pods"`
	Services              []dataplane.Service `json:"services"`
	Gateways              []dataplane.Gateway `json:"gateways"`
}

// loadAmbientCase reads a profile and its facts and returns the options to render it with.
func loadAmbientCase(t testing.TB, in string) Options {
	t.Helper()
	b, err := os.ReadFile(strings.TrimSuffix(in, ".yaml") + ".facts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var af ambientFacts
	if err := yaml.Unmarshal(b, &af); err != nil {
		t.Fatalf("%s: %v", in, err)
	}
	p := loadProfile(t, in)
	opts := DefaultOptions()
	opts.IstioSourceServiceAccounts = af.SourceServiceAccounts
	opts.DataPlane = &dataplane.Facts{Namespace: p.Namespace, NamespaceLabels: af.NamespaceLabels, Pods: af.Pods, Services: af.Services, Gateways: af.Gateways}
	return opts
}

// TestAmbientGolden renders testdata/ambient/<case>.yaml with the data plane facts of
// <case>.facts.yaml and compares objects, warnings, enforcement rows and unenforceable parts
// with <case>.golden.yaml (-update rewrites).
func TestAmbientGolden(t *testing.T) {
	all, err := filepath.Glob("testdata/ambient/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, in := range all {
		if strings.HasSuffix(in, ".golden.yaml") || strings.HasSuffix(in, ".facts.yaml") {
			continue
		}
		n++
		t.Run(strings.TrimSuffix(filepath.Base(in), ".yaml"), func(t *testing.T) {
			g := NewWithT(t)
			opts := loadAmbientCase(t, in)
			got := ambientText(loadProfile(t, in), opts)
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
		t.Fatal("no ambient golden cases")
	}
}

func ambientText(p *v1alpha1.MeshSecurityProfile, opts Options) []byte {
	return renderTextWith(p, opts)
}
