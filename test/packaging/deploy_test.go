package packaging

import (
	"os/exec"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshguard/meshguard/hack/bundle/kustomize"
)

// TestMakeDeployRunsTheImageItIsGiven builds the overlay `make deploy IMG=...` applies
// (hack/image-overlay.sh) with kustomize: config/default with the manager image replaced, by tag
// or by digest, and nothing else changed.
func TestMakeDeployRunsTheImageItIsGiven(t *testing.T) {
	for img, want := range map[string]string{
		"registry.example.com/security/meshguard:v0.2.0":                                                   "registry.example.com/security/meshguard:v0.2.0",
		"localhost:5000/meshguard@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef": "localhost:5000/meshguard@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"localhost:5000/meshguard": "localhost:5000/meshguard:latest",
	} {
		t.Run(img, func(t *testing.T) {
			g := NewWithT(t)
			dir := t.TempDir()
			out, err := exec.Command(filepath.Join(root, "hack", "image-overlay.sh"), img, dir).CombinedOutput()
			g.Expect(err).NotTo(HaveOccurred(), "%s", out)
			objs, err := kustomize.Build(dir)
			g.Expect(err).NotTo(HaveOccurred())
			base, err := kustomize.Build(filepath.Join(root, "config", "default"))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(objs).To(HaveLen(len(base)), "the overlay changes no object but the Deployment's image")
			found := false
			for _, u := range objs {
				if u.GetKind() == "Deployment" {
					found = true
					containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
					g.Expect(containers).To(ContainElement(HaveKeyWithValue("image", want)))
				}
			}
			g.Expect(found).To(BeTrue())
		})
	}
}
