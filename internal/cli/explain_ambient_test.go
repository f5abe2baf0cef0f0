package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

// TestExplainAmbientGoldens: `manager explain` on an ambient namespace with a waypoint
// (testdata/ambient/shop.yaml) renders the profile for ztunnel and the waypoint, as the controller
// does, and answers layer by layer naming the proxy that decided. Each request's table is compared
// with testdata/ambient/<request>.golden.txt (-update rewrites them; review the diff).
func TestExplainAmbientGoldens(t *testing.T) {
	in := filepath.Join("testdata", "ambient", "shop.yaml")
	web := []string{"--from", "frontend/web", "--from-labels", "app=web", "--to-namespace", "shop", "--to-labels", "app=api", "--port", "8080"}
	cases := []struct {
		name string
		args []string
		code int
	}{
		{"web-get-with-token", append(append([]string{}, web...), "--method", "GET", "--path", "/api/items", "--principal", "https://auth.example.com/alice"), ExplainAllowed},
		{"web-get-without-token", append(append([]string{}, web...), "--method", "GET", "--path", "/api/items"), ExplainDenied},
		{"web-delete", append(append([]string{}, web...), "--method", "DELETE", "--path", "/api/items", "--principal", "https://auth.example.com/alice"), ExplainDenied},
		{"intruder", []string{"--from", "frontend/intruder", "--from-labels", "app=intruder", "--to-namespace", "shop", "--to-labels", "app=api", "--port", "8080",
			"--method", "GET", "--path", "/api/items", "--principal", "https://auth.example.com/alice"}, ExplainDenied},
		{"unmeshed", []string{"--from-namespace", "frontend", "--from-labels", "app=web", "--from-ip", "10.244.0.9", "--from-unmeshed", "--to-namespace", "shop", "--to-labels", "app=api", "--port", "8080"}, ExplainDenied},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			r := explainRun(t, "", append([]string{"-f", in}, tc.args...)...)
			g.Expect(r.code).To(Equal(tc.code), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
			golden := filepath.Join("testdata", "ambient", tc.name+".golden.txt")
			if *updateGolden {
				g.Expect(os.WriteFile(golden, []byte(r.stdout), 0o644)).To(Succeed())
			}
			want, err := os.ReadFile(golden)
			g.Expect(err).NotTo(HaveOccurred(), "missing golden; run go test ./internal/cli -run TestExplainAmbientGoldens -update")
			g.Expect(r.stdout).To(Equal(string(want)))
			g.Expect(strings.Contains(r.stdout, "(ztunnel)")).To(BeTrue(), "the table names the proxy")
		})
	}
}
