package crds

import (
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshguard/meshguard/internal/render"
	"github.com/meshguard/meshguard/internal/render/goldencase"
)

// TestAmbientObjectsMatchTheIstioCRDs renders every ambient golden case of internal/render (with
// its data plane facts) and checks each Istio object against the real Istio CRDs, CEL rules
// included: among them "only one of targetRefs or selector can be set", "cross namespace
// referencing is not currently supported", targetRefs maxItems 16 and "Cannot set serviceAccounts
// with namespaces". The CRD does not restrict the kinds a policy may target; Istio's own validation
// does (pkg/config/validation allowedTargetRefs: Service, ServiceEntry, Gateway of
// gateway.networking.k8s.io, GatewayClass), so that is checked here too. Why not istio.io/istio's
// ValidateAuthorizationPolicy itself: docs/semantics.md "How generated targetRefs policies are
// validated".
func TestAmbientObjectsMatchTheIstioCRDs(t *testing.T) {
	g := NewWithT(t)
	istio, err := IstioCRDs()
	g.Expect(err).NotTo(HaveOccurred())
	v, err := NewValidator(istio...)
	g.Expect(err).NotTo(HaveOccurred())

	cases, err := goldencase.Paths("../../internal/render/testdata/ambient")
	g.Expect(err).NotTo(HaveOccurred())
	allowed := map[string]bool{"/Service": true, "networking.istio.io/ServiceEntry": true,
		"gateway.networking.k8s.io/Gateway": true, "gateway.networking.k8s.io/GatewayClass": true}
	targeted := 0
	for _, path := range cases {
		p, opts, err := goldencase.Load(path)
		g.Expect(err).NotTo(HaveOccurred())
		res, err := render.Render(p, opts)
		g.Expect(err).NotTo(HaveOccurred(), path)
		for _, o := range res.Objects {
			if !strings.HasSuffix(o.GroupVersionKind().Group, ".istio.io") {
				continue
			}
			g.Expect(v.Validate(o)).To(BeEmpty(), "%s: %s %s", filepath.Base(path), o.GetKind(), o.GetName())
			refs, _, _ := unstructured.NestedSlice(o.Object, "spec", "targetRefs")
			for _, r := range refs {
				ref, _ := r.(map[string]any)
				group, _ := ref["group"].(string)
				kind, _ := ref["kind"].(string)
				g.Expect(allowed).To(HaveKey(group+"/"+kind), "%s: %s %s targets %v", filepath.Base(path), o.GetKind(), o.GetName(), ref)
				targeted++
			}
		}
	}
	g.Expect(targeted).To(BeNumerically(">", 0), "no targetRefs policy was checked")
}
