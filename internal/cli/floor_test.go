package cli

import (
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/floors/*.golden.yaml from the current output")

// TestFloorGoldens runs `manager render -f testdata/floors/<case>.yaml` with the real renderer and
// compares stdout (then, after a "# stderr" line, stderr and the exit code) with
// <case>.golden.yaml. `go test ./internal/cli -run TestFloorGoldens -update` rewrites them: review
// the YAML diff like code.
func TestFloorGoldens(t *testing.T) {
	cases, err := filepath.Glob("testdata/floors/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, in := range cases {
		if strings.HasSuffix(in, ".golden.yaml") {
			continue
		}
		n++
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			r := renderReal(t, "", "-f", in)
			var got strings.Builder
			got.WriteString(r.stdout)
			got.WriteString("# stderr (exit " + strconv.Itoa(r.code) + "):\n")
			if s := strings.TrimSpace(r.stderr); s != "" {
				for _, line := range strings.Split(s, "\n") {
					got.WriteString("# " + line + "\n")
				}
			}
			golden := strings.TrimSuffix(in, ".yaml") + ".golden.yaml"
			if *updateGolden {
				g.Expect(os.WriteFile(golden, []byte(got.String()), 0o644)).To(Succeed())
			}
			want, err := os.ReadFile(golden)
			g.Expect(err).NotTo(HaveOccurred(), "missing golden; run go test ./internal/cli -run TestFloorGoldens -update")
			g.Expect(got.String()).To(Equal(string(want)))
		})
	}
	if n < 5 {
		t.Fatalf("only %d floor cases in testdata/floors", n)
	}
}

const floorManifest = `apiVersion: security.meshguard.dev/v1alpha1
kind: ClusterMeshSecurityProfile
metadata: {name: platform}
spec:
  namespaceSelector: {matchLabels: {tier: prod}}
  excludeNamespaces: [prod-sandbox]
  networkPolicy: {defaultDeny: [Ingress]}
`

func TestNamespaceLabelsChooseTheNamespacesAFloorIsRenderedFor(t *testing.T) {
	g := NewWithT(t)
	r := renderReal(t, floorManifest, "-f", "-",
		"--namespace-labels", "shop:tier=prod,team=a",
		"--namespace-labels", "prod-sandbox:tier=prod",
		"--namespace-labels", "dev:tier=dev",
		"--namespace-labels", "bare")
	g.Expect(r.code).To(Equal(ExitOK), r.stderr)
	docs := documents(g, r.stdout)
	var names []string
	for _, d := range docs {
		g.Expect(d.GetNamespace()).To(Equal("shop"), "only shop is selected: prod-sandbox is excluded, dev and bare do not match")
		g.Expect(d.GetOwnerReferences()).To(HaveLen(1))
		g.Expect(d.GetOwnerReferences()[0].Kind).To(Equal("ClusterMeshSecurityProfile"))
		names = append(names, d.GetKind()+"/"+d.GetName())
	}
	g.Expect(names).To(ConsistOf("NetworkPolicy/platform-default-deny", "PeerAuthentication/platform-mtls"), "mtls defaults to Strict in a floor too")
}

func TestAFloorThatSelectsNothingGivenIsSaidOnStderr(t *testing.T) {
	g := NewWithT(t)
	r := renderReal(t, floorManifest, "-f", "-")
	g.Expect(r.code).To(Equal(ExitOK), r.stderr)
	g.Expect(documents(g, r.stdout)).To(BeEmpty())
	g.Expect(r.stderr).To(ContainSubstring("ClusterMeshSecurityProfile/platform: selects none of the namespaces given"))
}

func TestTheMetadataNameLabelIsSetOnEveryNamespaceAsTheAPIServerDoes(t *testing.T) {
	g := NewWithT(t)
	floor := strings.Replace(floorManifest, "{matchLabels: {tier: prod}}", "{matchLabels: {kubernetes.io/metadata.name: shop}}", 1)
	r := renderReal(t, floor, "-f", "-", "--namespace-labels", "shop", "--namespace-labels", "web")
	g.Expect(r.code).To(Equal(ExitOK), r.stderr)
	docs := documents(g, r.stdout)
	g.Expect(docs).NotTo(BeEmpty())
	for _, d := range docs {
		g.Expect(d.GetNamespace()).To(Equal("shop"))
	}
}

func TestMalformedNamespaceLabelsAreAUsageError(t *testing.T) {
	for _, arg := range []string{"Not_A_Namespace", "shop:tier", "shop:tier=prod,=x", "shop:tier=not a value"} {
		t.Run(arg, func(t *testing.T) {
			g := NewWithT(t)
			r := renderReal(t, floorManifest, "-f", "-", "--namespace-labels", arg)
			g.Expect(r.code).To(Equal(ExitUsage))
			g.Expect(r.stderr).To(ContainSubstring("--namespace-labels"))
			g.Expect(r.stdout).To(BeEmpty())
		})
	}
}

func TestAnInvalidFloorExitsOneNamingTheField(t *testing.T) {
	g := NewWithT(t)
	r := renderReal(t, "apiVersion: security.meshguard.dev/v1alpha1\nkind: ClusterMeshSecurityProfile\nmetadata: {name: platform}\nspec: {mtls: {mode: Strict}}\n", "-f", "-")
	g.Expect(r.code).To(Equal(ExitInvalid))
	g.Expect(r.stderr).To(ContainSubstring("<stdin>: ClusterMeshSecurityProfile/platform: spec.namespaceSelector: Required value"))
	g.Expect(r.stdout).To(BeEmpty())
}
