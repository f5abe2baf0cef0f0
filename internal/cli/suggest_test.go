package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

// suggestFixtures are the recorded metrics and workloads of internal/suggest/testdata.
const suggestFixtures = "../suggest/testdata"

func suggestRun(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := Suggest(args, strings.NewReader(""), &out, &errb)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// TestSuggestedProfilesRenderAndMeetTheirExpectations: for both meshes, the proposal passes
// `manager render`, and `manager explain --expectations` on it allows every observed flow and
// denies the unobserved ones (exit 0: every expectation met, and there are both kinds).
func TestSuggestedProfilesRenderAndMeetTheirExpectations(t *testing.T) {
	for _, c := range []struct{ mesh, fixture string }{{"Istio", "istio-shop"}, {"Linkerd", "linkerd-payments"}} {
		for _, shadow := range []bool{false, true} {
			t.Run(c.fixture, func(t *testing.T) {
				g := NewWithT(t)
				args := []string{"--mesh", c.mesh, "-f", filepath.Join(suggestFixtures, c.fixture+".prom"),
					"--workloads", filepath.Join(suggestFixtures, c.fixture+".workloads.yaml")}
				if shadow {
					args = append(args, "--shadow")
				}
				s := suggestRun(t, args...)
				g.Expect(s.code).To(Equal(ExitOK), s.stderr)
				g.Expect(s.stdout).To(ContainSubstring("want: Allowed"))
				g.Expect(s.stdout).To(ContainSubstring("want: Denied"))
				file := filepath.Join(t.TempDir(), "suggested.yaml")
				g.Expect(os.WriteFile(file, []byte(s.stdout), 0o644)).To(Succeed())

				r := renderReal(t, "", "-f", file)
				g.Expect(r.code).To(Equal(ExitOK), r.stderr)

				x := explainRun(t, "", "--expectations", "-f", file)
				g.Expect(x.code).To(Equal(ExplainAllowed), x.stdout+x.stderr)
				g.Expect(x.stdout).NotTo(ContainSubstring("  no  "), "every expectation is met")
			})
		}
	}
}

func TestSuggestGoldenOutputIsWhatTheCommandPrints(t *testing.T) {
	g := NewWithT(t)
	s := suggestRun(t, "--mesh", "Istio", "-f", filepath.Join(suggestFixtures, "istio-shop.prom"),
		"--workloads", filepath.Join(suggestFixtures, "istio-shop.workloads.yaml"))
	g.Expect(s.code).To(Equal(ExitOK), s.stderr)
	want, err := os.ReadFile(filepath.Join(suggestFixtures, "istio-shop.golden.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(s.stdout).To(Equal(string(want)))
	g.Expect(s.stderr).To(ContainSubstring("shop: note: plaintext clients of api seen"))
}

func TestSuggestRefusesWrongCommandLinesAndMissingWorkloads(t *testing.T) {
	prom := filepath.Join(suggestFixtures, "istio-shop.prom")
	wl := filepath.Join(suggestFixtures, "istio-shop.workloads.yaml")
	for _, c := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no metrics", []string{"--workloads", wl}, ExitUsage, "exactly one of -f or --prometheus-url"},
		{"both metric sources", []string{"-f", prom, "--prometheus-url", "http://x", "--workloads", wl}, ExitUsage, "exactly one of -f"},
		{"no workloads", []string{"-f", prom}, ExitUsage, "exactly one of --workloads or --kubeconfig"},
		{"an unknown mesh", []string{"--mesh", "Kuma", "-f", prom, "--workloads", wl}, ExitUsage, "must be Istio or Linkerd"},
		{"a receiving workload without labels", []string{"-f", prom, "--workloads", filepath.Join(suggestFixtures, "linkerd-payments.workloads.yaml")}, ExitInvalid, "no labels for the receiving workloads"},
		{"another mesh's metrics", []string{"--mesh", "Linkerd", "-f", prom, "--workloads", wl}, ExitInvalid, "no Linkerd traffic"},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := NewWithT(t)
			s := suggestRun(t, c.args...)
			g.Expect(s.code).To(Equal(c.code))
			g.Expect(s.stderr).To(ContainSubstring(c.msg))
			g.Expect(s.stdout).To(BeEmpty())
		})
	}
}
