package e2e

import (
	"github.com/meshguard/meshguard/test/testenv"

	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("the manager's command line", func() {
	It("refuses a misspelled command with the nearest one instead of starting the controller", func(ctx SpecContext) {
		start := time.Now()
		stdout, stderr, code, err := env.runManager(ctx, nil, "rendr", "-f", "config/samples")
		Expect(err).NotTo(HaveOccurred())
		Expect(code).To(Equal(2), "stdout: %s", stdout)
		Expect(stderr).To(ContainSubstring(`unknown command "rendr" (did you mean "render"?)`))
		Expect(time.Since(start)).To(BeNumerically("<", 20*time.Second), "it exits, it does not run a controller")
	})

	It("lists its commands in --help and prints its version", func(ctx SpecContext) {
		_, stderr, code, err := env.runManager(ctx, nil, "--help")
		Expect(err).NotTo(HaveOccurred())
		Expect(code).To(Equal(0))
		Expect(stderr).To(ContainSubstring("manager render"))
		Expect(stderr).To(ContainSubstring("manager explain"))
		Expect(stderr).To(ContainSubstring("--istio-ca"))
		stdout, _, code, err := env.runManager(ctx, nil, "version")
		Expect(err).NotTo(HaveOccurred())
		Expect(code).To(Equal(0))
		Expect(stdout).To(MatchRegexp(`^meshguard \S+\ncommit: \S+\ngo: go`))
	})

	It("exposes meshguard_build_info on its metrics endpoint", func(ctx SpecContext) {
		text, err := env.scrapeMetrics(ctx)
		Expect(err).NotTo(HaveOccurred())
		found := false
		for _, s := range testenv.ParseMetrics(text) {
			if s.Name == "meshguard_build_info" {
				found = true
				Expect(s.Value).To(Equal(1.0))
				Expect(s.Labels).To(HaveKey("version"))
				Expect(s.Labels).To(HaveKey("commit"))
			}
		}
		Expect(found).To(BeTrue(), "meshguard_build_info is exported")
	})
})
