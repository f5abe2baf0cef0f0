package crds

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/dataplane"
	"github.com/meshguard/meshguard/internal/render"
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

	cases, err := filepath.Glob("../../internal/render/testdata/ambient/*.yaml")
	g.Expect(err).NotTo(HaveOccurred())
	allowed := map[string]bool{"/Service": true, "networking.istio.io/ServiceEntry": true,
		"gateway.networking.k8s.io/Gateway": true, "gateway.networking.k8s.io/GatewayClass": true}
	targeted := 0
	for _, path := range cases {
		if strings.HasSuffix(path, ".golden.yaml") || strings.HasSuffix(path, ".facts.yaml") {
			continue
		}
		p := &v1alpha1.MeshSecurityProfile{}
		b, err := os.ReadFile(path)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(yaml.Unmarshal(b, p)).To(Succeed(), path)
		p.UID = types.UID("00000000-0000-0000-0000-000000000001")
		var facts struct {
			SourceServiceAccounts bool                `json:"sourceServiceAccounts"`
			NamespaceLabels       map[string]string   `json:"namespaceLabels"`
			Pods                  []dataplane.Pod     `json:"pods"`
			Services              []dataplane.Service `json:"services"`
			Gateways              []dataplane.Gateway `json:"gateways"`
		}
		b, err = os.ReadFile(strings.TrimSuffix(path, ".yaml") + ".facts.yaml")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(yaml.Unmarshal(b, &facts)).To(Succeed(), path)
		opts := render.DefaultOptions()
		opts.IstioSourceServiceAccounts = facts.SourceServiceAccounts
		opts.DataPlane = &dataplane.Facts{Namespace: p.Namespace, NamespaceLabels: facts.NamespaceLabels,
			Pods: facts.Pods, Services: facts.Services, Gateways: facts.Gateways}
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
