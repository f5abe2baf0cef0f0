package e2e

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/test/fixtures"
)

var _ = Describe("manager render", func() {
	DescribeTable("prints the objects of a sample profile as YAML documents",
		func(ctx SpecContext, file, namespace, profile string, wantKinds map[string]int) {
			stdout, stderr, code, err := env.runManager(ctx, nil, "render", "-f", filepath.Join("config", "samples", file))
			Expect(err).NotTo(HaveOccurred())
			Expect(code).To(Equal(0), "stderr: %s", stderr)
			objs, err := decodeDocuments(stdout)
			Expect(err).NotTo(HaveOccurred(), "stdout is YAML documents:\n%s", stdout)
			kinds := map[string]int{}
			for _, o := range objs {
				kinds[o.GetKind()]++
				Expect(o.GetNamespace()).To(Equal(namespace), "%s/%s is in the profile's namespace", o.GetKind(), o.GetName())
				Expect(o.GetLabels()).To(HaveKeyWithValue(v1alpha1.LabelProfile, profile))
				Expect(o.GetLabels()).To(HaveKeyWithValue(v1alpha1.LabelManagedBy, v1alpha1.ManagedByValue))
			}
			Expect(kinds).To(Equal(wantKinds))
		},
		Entry("shop: strict mTLS, authorization and NetworkPolicies", "security_v1alpha1_meshsecurityprofile_shop.yaml", "shop", "baseline",
			map[string]int{"PeerAuthentication": 1, "AuthorizationPolicy": 2, "NetworkPolicy": 4}),
		Entry("legacy: permissive mTLS with a strict workload", "security_v1alpha1_meshsecurityprofile_legacy.yaml", "legacy", "migration",
			map[string]int{"PeerAuthentication": 2}),
		Entry("api: JWT required", "security_v1alpha1_meshsecurityprofile_jwt.yaml", "api", "jwt",
			map[string]int{"PeerAuthentication": 1, "RequestAuthentication": 1, "AuthorizationPolicy": 2}),
	)

	It("refuses an invalid profile on standard input with exit code 1 and an error naming the field", func(ctx SpecContext) {
		manifest := profileManifest("shop", "bad", "  mtls:\n    mode: Sometimes\n")
		stdout, stderr, code, err := env.runManager(ctx, strings.NewReader(manifest), "render", "-f", "-")
		Expect(err).NotTo(HaveOccurred())
		Expect(code).To(Equal(1))
		Expect(stdout).To(BeEmpty(), "nothing is printed when a profile is invalid")
		Expect(stderr).To(ContainSubstring("spec.mtls.mode"))
	})

	// render promises the API server's validation: what one refuses, the other refuses, naming the
	// same field; what the API server accepts, render accepts too, unless the mesh cannot express
	// it (which the API server cannot know). kubectl create reports fields as render does
	// (spec.rules[1]); server-side apply names list entries by key instead.
	Context("agrees with the API server", func() {
		var ns string
		BeforeEach(func(ctx SpecContext) { ns = newNamespace(ctx, "render") })

		invalid := []any{func(ctx SpecContext, c fixtures.InvalidCase) {
			stdout, stderr, code, err := env.runManager(ctx, strings.NewReader(c.YAML), "render", "-n", ns, "-f", "-")
			Expect(err).NotTo(HaveOccurred())
			Expect(code).To(Equal(1), "manager render refuses it; stdout: %s", stdout)
			Expect(stdout).To(BeEmpty(), "nothing is rendered for a refused profile")
			Expect(stderr).To(ContainSubstring(c.WantField), "manager render names the field")

			_, kstderr, kerr := env.kubectl(ctx, strings.NewReader(c.YAML), "create", "--dry-run=server", "-n", ns, "-f", "-")
			Expect(kerr).To(HaveOccurred(), "kubectl create is refused too")
			Expect(kstderr).To(ContainSubstring(c.WantField), "the API server names the same field")
		}}
		for _, c := range fixtures.InvalidProfiles {
			invalid = append(invalid, Entry(c.Name, c))
		}
		DescribeTable("refusing", invalid...)

		valid := []any{func(ctx SpecContext, c fixtures.ValidCase) {
			_, kstderr, kerr := env.kubectl(ctx, strings.NewReader(c.YAML), "create", "--dry-run=server", "-n", ns, "-f", "-")
			Expect(kerr).NotTo(HaveOccurred(), "the API server accepts it: %s", kstderr)

			_, stderr, code, err := env.runManager(ctx, strings.NewReader(c.YAML), "render", "-n", ns, "-f", "-")
			Expect(err).NotTo(HaveOccurred())
			if code != 0 {
				// Only what the mesh cannot express may be refused, and nothing else.
				Expect(code).To(Equal(1))
				for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
					Expect(line).To(ContainSubstring(": not supported by "), "manager render refuses only what the mesh cannot express")
				}
			}
		}}
		for _, c := range fixtures.ValidProfiles {
			valid = append(valid, Entry(c.Name, c))
		}
		DescribeTable("accepting", valid...)
	})
})

// decodeDocuments parses a stream of YAML documents (comments and empty documents skipped).
func decodeDocuments(s string) ([]unstructured.Unstructured, error) {
	d := utilyaml.NewYAMLOrJSONDecoder(bytes.NewBufferString(s), 4096)
	var out []unstructured.Unstructured
	for {
		var u unstructured.Unstructured
		if err := d.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
}
