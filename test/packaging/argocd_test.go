package packaging

import (
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/test/packaging/kustomize"
)

// application is the part of an Argo CD Application the examples use.
type application struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Spec       struct {
		Source  *appSource  `json:"source"`
		Sources []appSource `json:"sources"`
	} `json:"spec"`
}

type appSource struct {
	RepoURL string `json:"repoURL"`
	Path    string `json:"path"`
	Helm    *struct {
		ReleaseName  string         `json:"releaseName"`
		ValuesObject map[string]any `json:"valuesObject"`
	} `json:"helm"`
}

// TestTheArgoCDApplicationsRenderWhatTheyPointAt renders each example Application's sources as
// Argo CD would: the chart with the Application's values (Helm's engine and the chart's schema),
// the kustomize paths with kustomize.
func TestTheArgoCDApplicationsRenderWhatTheyPointAt(t *testing.T) {
	for _, file := range []string{"application-helm.yaml", "application-kustomize.yaml"} {
		t.Run(file, func(t *testing.T) {
			g := NewWithT(t)
			b, err := os.ReadFile(filepath.Join(root, "config", "argocd", file))
			g.Expect(err).NotTo(HaveOccurred())
			app := application{}
			g.Expect(yaml.Unmarshal(b, &app)).To(Succeed())
			g.Expect(app.APIVersion).To(Equal("argoproj.io/v1alpha1"))
			g.Expect(app.Kind).To(Equal("Application"))
			sources := app.Spec.Sources
			if app.Spec.Source != nil {
				sources = append(sources, *app.Spec.Source)
			}
			g.Expect(sources).NotTo(BeEmpty())
			for _, s := range sources {
				g.Expect(s.RepoURL).To(Equal("https://github.com/meshguard/meshguard.git"))
				if s.Helm != nil {
					g.Expect(s.Path).To(Equal("charts/meshguard"))
					objs, err := renderChart(t, s.Helm.ReleaseName, "meshguard-system", s.Helm.ValuesObject)
					g.Expect(err).NotTo(HaveOccurred(), "the chart renders with the Application's values")
					g.Expect(objs).NotTo(BeEmpty())
					continue
				}
				objs, err := kustomize.Build(filepath.Join(root, s.Path))
				g.Expect(err).NotTo(HaveOccurred(), "kustomize builds %s", s.Path)
				g.Expect(objs).NotTo(BeEmpty())
			}
		})
	}
}
