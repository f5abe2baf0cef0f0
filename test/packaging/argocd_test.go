package packaging

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/hack/bundle/kustomize"
)

// application is the part of an Argo CD Application the examples use.
type application struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		Source     *appSource  `json:"source"`
		Sources    []appSource `json:"sources"`
		SyncPolicy struct {
			SyncOptions []string `json:"syncOptions"`
		} `json:"syncPolicy"`
	} `json:"spec"`
}

func readApplication(t *testing.T, file string) application {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "config", "argocd", file))
	if err != nil {
		t.Fatal(err)
	}
	app := application{}
	if err := yaml.Unmarshal(b, &app); err != nil {
		t.Fatal(err)
	}
	return app
}

// TestTheProfilesApplicationSyncsAfterMeshguardWithoutADryRunOfTheMissingCRD: in an app-of-apps,
// meshguard's Applications come in an earlier wave than the profiles' Application, which skips
// the dry run of kinds whose CRD is not served yet; the profiles' source holds profiles.
func TestTheProfilesApplicationSyncsAfterMeshguardWithoutADryRunOfTheMissingCRD(t *testing.T) {
	g := NewWithT(t)
	wave := func(app application) int {
		w, err := strconv.Atoi(app.Metadata.Annotations["argocd.argoproj.io/sync-wave"])
		g.Expect(err).NotTo(HaveOccurred())
		return w
	}
	profiles := readApplication(t, "application-profiles.yaml")
	g.Expect(profiles.Spec.SyncPolicy.SyncOptions).To(ContainElement("SkipDryRunOnMissingResource=true"))
	for _, meshguard := range []string{"application-helm.yaml", "application-kustomize.yaml"} {
		g.Expect(wave(readApplication(t, meshguard))).To(BeNumerically("<", wave(profiles)), meshguard)
	}
	objs, err := kustomize.Build(filepath.Join(root, profiles.Spec.Source.Path))
	g.Expect(err).NotTo(HaveOccurred())
	var kinds []string
	for _, u := range objs {
		kinds = append(kinds, u.GetKind())
	}
	g.Expect(kinds).To(ContainElements("MeshSecurityProfile", "ClusterMeshSecurityProfile"))
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
	for _, file := range []string{"application-helm.yaml", "application-kustomize.yaml", "application-profiles.yaml"} {
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
