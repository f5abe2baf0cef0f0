package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// sampleProfile is one profile of config/samples/, as kustomize builds it.
type sampleProfile struct {
	namespace, name, mesh, mtls string
	manifest                    unstructured.Unstructured
}

var _ = Describe("the samples applied with kubectl apply -k config/samples", func() {
	It("become Ready, read as such in kubectl get msp, and generate exactly what manager render previews", func(ctx SpecContext) {
		samples := buildSamples(ctx)
		Expect(samples).NotTo(BeEmpty())

		By("creating the samples' namespaces with Istio's root certificate, as istiod would")
		for _, s := range samples {
			Expect(env.createNamespace(ctx, s.namespace)).To(Succeed())
		}

		By("applying the samples as the README says")
		kubectl(ctx, "", "apply", "--server-side", "-k", "config/samples")

		By("waiting with kubectl wait, as a GitOps pipeline or a script does")
		kubectl(ctx, "", "wait", "--for=condition=Ready", "msp", "--all", "-A", "--timeout=60s")

		By("reading the dashboard: kubectl get msp -A")
		header, rows := parseTable(kubectl(ctx, "", "get", "msp", "-A"))
		Expect(header).To(Equal([]string{"NAMESPACE", "NAME", "MESH", "MTLS", "READY", "IN-SYNC", "CERTS", "AGE"}))
		for _, s := range samples {
			row := findRow(rows, s.namespace, s.name)
			Expect(row).NotTo(BeNil(), "a row for %s/%s in %v", s.namespace, s.name, rows)
			Expect(row).To(HaveKeyWithValue("MESH", s.mesh))
			Expect(row).To(HaveKeyWithValue("MTLS", s.mtls))
			Expect(row).To(HaveKeyWithValue("READY", "True"))
			Expect(row).To(HaveKeyWithValue("IN-SYNC", "True"))
			Expect(row["CERTS"]).To(Equal("Valid"), "the mesh CAs of the test cluster are valid for years")
			Expect(row["AGE"]).NotTo(BeEmpty())
		}

		By("reading the wide dashboard: kubectl get msp -A -o wide")
		header, rows = parseTable(kubectl(ctx, "", "get", "msp", "-A", "-o", "wide"))
		Expect(header).To(Equal([]string{"NAMESPACE", "NAME", "MESH", "MTLS", "READY", "IN-SYNC", "CERTS", "AGE", "MESSAGE", "EXPIRES", "EXPECTATIONS", "EFFECTIVE", "DRIFT", "DATA-PLANE"}))
		for _, s := range samples {
			row := findRow(rows, s.namespace, s.name)
			Expect(row).NotTo(BeNil())
			Expect(row).To(HaveKeyWithValue("READY", "True"))
			Expect(row["MESSAGE"]).NotTo(BeEmpty(), "the Ready message explains the state")
			// The fleet summary (status.summary): nothing weakens the samples, nothing drifted, and
			// the test cluster runs no pods in their namespaces.
			Expect(row).To(HaveKeyWithValue("EFFECTIVE", "True"))
			Expect(row).To(HaveKeyWithValue("DRIFT", "0"))
			if s.mesh == "Linkerd" {
				Expect(row).To(HaveKeyWithValue("DATA-PLANE", "Linkerd"))
			} else {
				Expect(row).To(HaveKeyWithValue("DATA-PLANE", "NoPods"))
			}
			// The nearest CA expiry is in the future; a date column would print it as <invalid>.
			Expect(row["EXPIRES"]).NotTo(BeElementOf("", "<none>", "<invalid>"), "EXPIRES shows when the nearest CA certificate of %s/%s expires", s.namespace, s.name)
			if _, ok, _ := unstructured.NestedSlice(s.manifest.Object, "spec", "expectations"); ok {
				Expect(row["EXPECTATIONS"]).To(Equal(v1alpha1.ReasonExpectationsAllMet), "every expectation of %s/%s is met", s.namespace, s.name)
			} else {
				Expect(row["EXPECTATIONS"]).To(BeEmpty(), "no ExpectationsMet condition without expectations (kubectl prints nothing for it)")
			}
		}

		for _, s := range samples {
			By(fmt.Sprintf("comparing manager render of %s/%s with what the manager generated", s.namespace, s.name))
			manifest, err := yaml.Marshal(s.manifest.Object)
			Expect(err).NotTo(HaveOccurred())
			stdout, stderr, code, err := env.runManager(ctx, bytes.NewReader(manifest), "render", "-f", "-")
			Expect(err).NotTo(HaveOccurred())
			Expect(code).To(Equal(0), "stderr: %s", stderr)
			rendered, err := decodeDocuments(stdout)
			Expect(err).NotTo(HaveOccurred())

			p := expectReady(ctx, s.namespace, s.name)
			live, err := generatedObjects(ctx, s.namespace, s.name)
			Expect(err).NotTo(HaveOccurred())
			Expect(sorted(kindNames(live))).To(Equal(sorted(kindNames(rendered))), "the cluster holds exactly the rendered objects")
			for _, o := range live {
				owner := metav1.GetControllerOf(&o)
				Expect(owner).NotTo(BeNil(), "%s/%s has a controller", o.GetKind(), o.GetName())
				Expect(owner.UID).To(Equal(p.UID), "%s/%s is controlled by the profile", o.GetKind(), o.GetName())
				Expect(o.GetLabels()).To(HaveKeyWithValue(v1alpha1.LabelManagedBy, v1alpha1.ManagedByValue))
			}
			for _, r := range p.Status.Resources {
				Expect(r.State).To(Equal(v1alpha1.ResourceInSync), "%s %s: %s", r.Kind, r.Name, r.Message)
			}
		}
	})
})

// buildSamples returns the profiles of config/samples/ as `kubectl kustomize` builds them, so that
// a sample added to the kustomization is covered without changing this test.
func buildSamples(ctx context.Context) []sampleProfile {
	GinkgoHelper()
	docs, err := decodeDocuments(kubectl(ctx, "", "kustomize", "config/samples"))
	Expect(err).NotTo(HaveOccurred())
	var out []sampleProfile
	for _, d := range docs {
		if d.GetKind() != "MeshSecurityProfile" {
			continue
		}
		s := sampleProfile{namespace: d.GetNamespace(), name: d.GetName(), mesh: "Istio", mtls: "Strict", manifest: d}
		if m, ok, _ := unstructured.NestedString(d.Object, "spec", "mesh"); ok {
			s.mesh = m
		}
		if m, ok, _ := unstructured.NestedString(d.Object, "spec", "mtls", "mode"); ok {
			s.mtls = m
		}
		out = append(out, s)
	}
	return out
}

// parseTable reads kubectl's table output: the header's names and one map per row, by column
// position (values such as MESSAGE contain spaces).
func parseTable(out string) ([]string, []map[string]string) {
	GinkgoHelper()
	var lines []string
	s := bufio.NewScanner(strings.NewReader(out))
	for s.Scan() {
		if strings.TrimSpace(s.Text()) != "" {
			lines = append(lines, s.Text())
		}
	}
	Expect(lines).NotTo(BeEmpty(), "kubectl printed a table")
	head := lines[0]
	var names []string
	var starts []int
	for i := 0; i < len(head); i++ {
		if head[i] != ' ' && (i == 0 || head[i-1] == ' ') {
			starts = append(starts, i)
			end := strings.IndexByte(head[i:], ' ')
			if end < 0 {
				end = len(head) - i
			}
			names = append(names, head[i:i+end])
		}
	}
	var rows []map[string]string
	for _, l := range lines[1:] {
		row := map[string]string{}
		for c, start := range starts {
			end := len(l)
			if c+1 < len(starts) && starts[c+1] < end {
				end = starts[c+1]
			}
			if start < end {
				row[names[c]] = strings.TrimSpace(l[start:end])
			}
		}
		rows = append(rows, row)
	}
	return names, rows
}

func findRow(rows []map[string]string, namespace, name string) map[string]string {
	for _, r := range rows {
		if r["NAMESPACE"] == namespace && r["NAME"] == name {
			return r
		}
	}
	return nil
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}
