package e2e

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/meshguard/meshguard/test/testenv"
)

// alertMetrics reads config/prometheus/metrics.txt: the metric names the alerts use (test/packaging
// checks the alert expressions against this list with Prometheus' own PromQL parser, which the root
// module does not depend on).
func alertMetrics() []string {
	GinkgoHelper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "prometheus", "metrics.txt"))
	Expect(err).NotTo(HaveOccurred())
	var names []string
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		if l := strings.TrimSpace(s.Text()); l != "" && !strings.HasPrefix(l, "#") {
			names = append(names, l)
		}
	}
	Expect(s.Err()).NotTo(HaveOccurred())
	return names
}

var _ = Describe("the metrics the alerts use", func() {
	It("are all exported by the running manager once a profile was reconciled and corrected", func(ctx SpecContext) {
		names := alertMetrics()
		Expect(names).To(ContainElement("meshguard_profile_ready"), "metrics.txt was read")

		By("creating a profile and drifting its PeerAuthentication, so that the counters have series")
		ns, profile := newNamespace(ctx, "alertmetrics"), "baseline"
		applyProfile(ctx, ns, profile, strictProfile)
		expectReady(ctx, ns, profile)
		pa := generatedName(ctx, ns, profile, "PeerAuthentication")
		kubectl(ctx, "", "patch", "peerauthentications.security.istio.io", pa, "-n", ns,
			"--type=merge", "-p", `{"spec":{"mtls":{"mode":"PERMISSIVE"}}}`, "--field-manager=intruder")

		By("scraping the manager until every listed name has a series")
		Eventually(func(g Gomega) {
			text, err := env.scrapeMetrics(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			exported := map[string]bool{}
			for _, s := range testenv.ParseMetrics(text) {
				exported[s.Name] = true
			}
			var missing []string
			for _, n := range names {
				if !exported[n] {
					missing = append(missing, n)
				}
			}
			g.Expect(missing).To(BeEmpty(), "metrics that alerts.yaml uses but the manager does not export")
		}).WithContext(ctx).Should(Succeed())
	})
})
