package fleet

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// golden are the profile status fixtures, as meshguard writes them.
var golden = []string{"profile-ready.yaml", "profile-weakened.yaml", "profile-audit-drifted.yaml", "profile-not-observed.yaml"}

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Dir(), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// unstructuredOf decodes YAML as the API machinery does for dynamic clients: integers int64.
func unstructuredOf(t *testing.T, b []byte) map[string]any {
	t.Helper()
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(j); err != nil {
		t.Fatal(err)
	}
	return u.Object
}

func TestGoldenProfilesAreMeshSecurityProfiles(t *testing.T) {
	for _, name := range golden {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			p := &v1alpha1.MeshSecurityProfile{}
			g.Expect(yaml.UnmarshalStrict(read(t, filepath.Join("testdata", name)), p)).To(Succeed())
			g.Expect(p.Status.Summary).NotTo(BeNil())
			ready := ""
			for _, c := range p.Status.Conditions {
				if c.Type == v1alpha1.ConditionReady {
					ready = string(c.Status)
				}
			}
			g.Expect(string(p.Status.Summary.Ready)).To(Equal(ready), "the summary repeats Ready")
		})
	}
}

// clusterParams are what Argo CD's cluster generator gives a template for one cluster Secret.
type clusterParams struct {
	Name, NameNormalized, Server, Project string
	Metadata                              struct{ Labels, Annotations map[string]string }
}

func TestApplicationSetGivesEveryLabelledClusterItsApplication(t *testing.T) {
	g := NewWithT(t)
	var set struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Spec       struct {
			GoTemplate        bool     `json:"goTemplate"`
			GoTemplateOptions []string `json:"goTemplateOptions"`
			Generators        []struct {
				Clusters *struct {
					Selector struct {
						MatchLabels map[string]string `json:"matchLabels"`
					} `json:"selector"`
				} `json:"clusters"`
			} `json:"generators"`
			Template map[string]any `json:"template"`
		} `json:"spec"`
	}
	g.Expect(yaml.Unmarshal(read(t, "applicationset.yaml"), &set)).To(Succeed())
	g.Expect(set.Kind).To(Equal("ApplicationSet"))
	g.Expect(set.Spec.GoTemplate).To(BeTrue())
	g.Expect(set.Spec.GoTemplateOptions).To(ContainElement("missingkey=error"), "a misspelt parameter fails instead of rendering empty")
	g.Expect(set.Spec.Generators).To(HaveLen(1))
	g.Expect(set.Spec.Generators[0].Clusters).NotTo(BeNil(), "a cluster generator")
	g.Expect(set.Spec.Generators[0].Clusters.Selector.MatchLabels).To(HaveKeyWithValue("meshguard.dev/profiles", "enabled"))

	// Render the template as the ApplicationSet controller does with goTemplate (text/template
	// over the generator's parameters) for two clusters.
	tmpl, err := json.Marshal(set.Spec.Template)
	g.Expect(err).NotTo(HaveOccurred())
	seen := map[string]bool{}
	for _, c := range []clusterParams{
		{Name: "prod-eu/west", NameNormalized: "prod-eu-west", Server: "https://eu-west.example.com:6443", Project: "default"},
		{Name: "prod-us", NameNormalized: "prod-us", Server: "https://us.example.com:6443", Project: "default"},
	} {
		tp, err := template.New("app").Option("missingkey=error").Parse(string(tmpl))
		g.Expect(err).NotTo(HaveOccurred())
		var out bytes.Buffer
		g.Expect(tp.Execute(&out, map[string]any{"name": c.Name, "nameNormalized": c.NameNormalized, "server": c.Server, "project": c.Project})).To(Succeed())
		var app struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
			Spec struct {
				Source struct {
					Path string `json:"path"`
				} `json:"source"`
				Destination struct {
					Server string `json:"server"`
				} `json:"destination"`
				SyncPolicy struct {
					SyncOptions []string `json:"syncOptions"`
				} `json:"syncPolicy"`
			} `json:"spec"`
		}
		g.Expect(json.Unmarshal(out.Bytes(), &app)).To(Succeed())
		g.Expect(validation.IsDNS1123Subdomain(app.Metadata.Name)).To(BeEmpty(), "the Application name is a valid object name")
		g.Expect(seen[app.Metadata.Name]).To(BeFalse(), "one Application per cluster")
		seen[app.Metadata.Name] = true
		g.Expect(app.Spec.Destination.Server).To(Equal(c.Server))
		g.Expect(app.Spec.SyncPolicy.SyncOptions).To(ContainElement("SkipDryRunOnMissingResource=true"))
		_, err = os.Stat(filepath.Join(Dir(), "..", "..", "..", app.Spec.Source.Path, "kustomization.yaml"))
		g.Expect(err).NotTo(HaveOccurred(), "the source path is a kustomization of this repository")
	}
}

func TestManifestWorkCarriesTheShopSample(t *testing.T) {
	g := NewWithT(t)
	m, err := LoadManifestWorkReplicaSet()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(m.Kind).To(Equal("ManifestWorkReplicaSet"))
	g.Expect(m.Spec.PlacementRefs).To(HaveLen(1))

	var placement struct {
		Metadata struct{ Name, Namespace string } `json:"metadata"`
	}
	g.Expect(yaml.Unmarshal(read(t, "placement.yaml"), &placement)).To(Succeed())
	g.Expect(m.Spec.PlacementRefs[0].Name).To(Equal(placement.Metadata.Name))
	g.Expect(m.Metadata.Namespace).To(Equal(placement.Metadata.Namespace), "a placement is referred to in its own namespace")

	sample := map[string]any{}
	g.Expect(yaml.Unmarshal(read(t, "../security_v1alpha1_meshsecurityprofile_shop.yaml"), &sample)).To(Succeed())
	var profile map[string]any
	for _, mf := range m.Spec.ManifestWorkTemplate.Workload.Manifests {
		if mf["kind"] == "MeshSecurityProfile" {
			profile = mf
		}
	}
	g.Expect(profile).To(Equal(sample), "the ManifestWork carries the shop sample unchanged")
	b, err := json.Marshal(profile)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(yaml.UnmarshalStrict(b, &v1alpha1.MeshSecurityProfile{})).To(Succeed())

	g.Expect(m.Spec.ManifestWorkTemplate.ManifestConfigs).To(HaveLen(1))
	id := m.Spec.ManifestWorkTemplate.ManifestConfigs[0].ResourceIdentifier
	meta := profile["metadata"].(map[string]any)
	g.Expect([]string{id.Namespace, id.Name}).To(Equal([]string{meta["namespace"].(string), meta["name"].(string)}), "the feedback names the profile it carries")
}

func TestOCMFeedbackReadsReadyAndEffectiveFromTheSummary(t *testing.T) {
	paths, err := ProfileFeedbackPaths()
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	NewWithT(t).Expect(paths).NotTo(BeEmpty())
	cases := map[string]map[string]any{
		"profile-ready.yaml": {"ready": "True", "effective": "True", "driftCount": int64(0),
			"earliestCertificateExpiry": "2027-03-01T00:00:00Z", "dataPlane": "Sidecar", "observedGeneration": int64(2)},
		"profile-weakened.yaml": {"ready": "False", "effective": "False", "driftCount": int64(0),
			"earliestCertificateExpiry": "2027-01-15T00:00:00Z", "dataPlane": "Ambient", "observedGeneration": int64(2)},
		"profile-audit-drifted.yaml": {"ready": "False", "effective": "True", "driftCount": int64(2),
			"dataPlane": "Sidecar", "observedGeneration": int64(1)},
		"profile-not-observed.yaml": {"ready": "True", "effective": "True", "driftCount": int64(0),
			"dataPlane": "Sidecar", "observedGeneration": int64(2)},
	}
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := Feedback(unstructuredOf(t, read(t, filepath.Join("testdata", name))), paths)
			NewWithT(t).Expect(err).NotTo(HaveOccurred())
			NewWithT(t).Expect(got).To(Equal(want))
		})
	}
	t.Run("a profile without status feeds nothing back, without error", func(t *testing.T) {
		got, err := Feedback(map[string]any{"kind": "MeshSecurityProfile"}, paths)
		NewWithT(t).Expect(err).NotTo(HaveOccurred())
		NewWithT(t).Expect(got).To(BeEmpty())
	})
	t.Run("a path to a list is refused as OCM refuses it", func(t *testing.T) {
		_, err := Feedback(unstructuredOf(t, read(t, "testdata/profile-ready.yaml")), []JSONPath{{Name: "conditions", Path: ".status.conditions"}})
		NewWithT(t).Expect(err).To(MatchError(ContainSubstring("not a string, integer or boolean")))
	})
}

func scripts(t *testing.T) *KarmadaScripts {
	t.Helper()
	k, err := LoadKarmadaScripts()
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	NewWithT(t).Expect(k.Target).To(Equal(v1alpha1.GroupVersion.String() + "/MeshSecurityProfile"))
	return k
}

func call(t *testing.T, script, fn string, args ...any) any {
	t.Helper()
	out, err := CallLua(script, fn, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func jsonObject(t *testing.T, name string) map[string]any {
	t.Helper()
	j, err := yaml.YAMLToJSON(read(t, filepath.Join("testdata", name)))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(j, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestKarmadaHealthAgreesWithTheArgoCDCheck(t *testing.T) {
	health := scripts(t).Health
	for name, want := range map[string]bool{
		"profile-ready.yaml":         true,
		"profile-weakened.yaml":      false,
		"profile-audit-drifted.yaml": true, // Audit mode does what it declares (config/argocd health.lua)
		"profile-not-observed.yaml":  false,
	} {
		t.Run(name, func(t *testing.T) {
			got := call(t, health, "InterpretHealth", jsonObject(t, name))
			NewWithT(t).Expect(got).To(Equal(want))
		})
	}
	t.Run("a profile without status is not healthy", func(t *testing.T) {
		NewWithT(t).Expect(call(t, health, "InterpretHealth", map[string]any{"metadata": map[string]any{"generation": 1.0}})).To(Equal(false))
	})
}

// aggregate reflects each member's profile, then aggregates into the template as Karmada does.
func aggregate(t *testing.T, members map[string]string) *v1alpha1.MeshSecurityProfile {
	t.Helper()
	objs := map[string]map[string]any{}
	var clusters []string
	for _, cluster := range []string{"east", "west", "north"} {
		name, ok := members[cluster]
		if !ok {
			continue
		}
		clusters = append(clusters, cluster)
		if name != "" {
			objs[cluster] = jsonObject(t, name)
		}
	}
	template := jsonObject(t, "profile-ready.yaml")
	template["metadata"].(map[string]any)["generation"] = 3.0
	delete(template, "status")
	out, err := scripts(t).AggregateMembers(template, clusters, objs)
	if err != nil {
		t.Fatal(err)
	}
	p, err := asProfile(out)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestKarmadaAggregatesTheMembersIntoOneSummary(t *testing.T) {
	t.Run("all members ready: Ready True, the earliest expiry, observed", func(t *testing.T) {
		g := NewWithT(t)
		p := aggregate(t, map[string]string{"east": "profile-ready.yaml", "west": "profile-ready.yaml"})
		g.Expect(p.Status.Summary).NotTo(BeNil())
		g.Expect(p.Status.Summary.Ready).To(BeEquivalentTo("True"))
		g.Expect(p.Status.Summary.Reason).To(Equal("Succeeded"))
		g.Expect(p.Status.Summary.DataPlane).To(Equal("Sidecar"))
		g.Expect(p.Status.ObservedGeneration).To(Equal(int64(3)), "every member observed the template's generation 3")
		g.Expect(p.Status.Conditions).To(HaveLen(1))
		g.Expect(p.Status.Conditions[0].Message).To(Equal("clusters: east=True/Succeeded, west=True/Succeeded"))
	})
	t.Run("one member weakened: Ready and Effective False, the member named, data planes Mixed", func(t *testing.T) {
		g := NewWithT(t)
		p := aggregate(t, map[string]string{"east": "profile-ready.yaml", "west": "profile-weakened.yaml"})
		s := p.Status.Summary
		g.Expect([]string{string(s.Ready), s.Reason, string(s.Effective), s.DataPlane}).To(Equal([]string{"False", "Weakened", "False", "Mixed"}))
		g.Expect(s.EarliestCertificateExpiry.UTC().Format("2006-01-02")).To(Equal("2027-01-15"))
		g.Expect(p.Status.Conditions[0].Status).To(BeEquivalentTo("False"))
		g.Expect(p.Status.Conditions[0].Message).To(ContainSubstring("west=False/Weakened"))
		g.Expect(p.Status.Conditions[0].LastTransitionTime.UTC().Format("2006-01-02T15:04:05Z")).To(Equal("2026-11-03T10:00:00Z"), "the latest member transition")
	})
	t.Run("drift counts add up", func(t *testing.T) {
		p := aggregate(t, map[string]string{"east": "profile-audit-drifted.yaml", "west": "profile-audit-drifted.yaml"})
		NewWithT(t).Expect(p.Status.Summary.DriftCount).To(Equal(int32(4)))
	})
	t.Run("a member that has not reported makes Ready Unknown and the generation not observed", func(t *testing.T) {
		g := NewWithT(t)
		p := aggregate(t, map[string]string{"east": "profile-ready.yaml", "north": ""})
		g.Expect(p.Status.Summary.Ready).To(BeEquivalentTo("Unknown"))
		g.Expect(p.Status.Summary.Reason).To(Equal("NotReported"))
		g.Expect(p.Status.ObservedGeneration).To(BeZero())
		g.Expect(p.Status.Conditions[0].Message).To(ContainSubstring("north=NotReported"))
	})
	t.Run("a member that has not observed the new generation keeps the template's unobserved", func(t *testing.T) {
		p := aggregate(t, map[string]string{"east": "profile-ready.yaml", "west": "profile-not-observed.yaml"})
		NewWithT(t).Expect(p.Status.ObservedGeneration).To(BeZero())
	})
	t.Run("the scripts read no library but Lua's base functions", func(t *testing.T) {
		k := scripts(t)
		for _, s := range []string{k.Health, k.Reflect, k.Aggregate} {
			for _, lib := range []string{"string.", "table.", "math.", "os.", "kube."} {
				NewWithT(t).Expect(strings.Contains(s, lib)).To(BeFalse(), lib)
			}
		}
	})
}
