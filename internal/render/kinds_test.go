package render

import (
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// TestKindsListsEveryRenderedKind renders every testdata case and fails when one emits a kind that
// Kinds() lacks: the reconciler would never watch or prune objects of that kind.
func TestKindsListsEveryRenderedKind(t *testing.T) {
	g := NewWithT(t)
	listed := map[schema.GroupVersionKind]bool{}
	for _, k := range Kinds() {
		g.Expect(listed).NotTo(HaveKey(k), "Kinds() lists %s twice", k)
		listed[k] = true
	}
	emitted := map[schema.GroupVersionKind]bool{}
	cases := profileCases(t, "testdata/*.yaml")
	g.Expect(cases).NotTo(BeEmpty())
	for _, in := range cases {
		res, err := Render(loadProfile(t, in), DefaultOptions())
		if err != nil || res == nil {
			continue
		}
		for _, o := range res.Objects {
			gvk := o.GroupVersionKind()
			emitted[gvk] = true
			g.Expect(listed).To(HaveKey(gvk), "%s renders %s, which render.Kinds() lacks", strings.TrimSuffix(filepath.Base(in), ".yaml"), gvk)
		}
	}
	// The other way round: a listed kind no case renders is untested, or no longer generated.
	for k := range listed {
		g.Expect(emitted).To(HaveKey(k), "no testdata case renders %s: add one, or remove the kind from Kinds()", k)
	}
}

func TestKindsReturnsACopyTheCallerMayModify(t *testing.T) {
	g := NewWithT(t)
	a := Kinds()
	a[0].Kind = "Changed"
	g.Expect(Kinds()[0].Kind).NotTo(Equal("Changed"))
}
