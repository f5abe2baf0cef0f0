package cli

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

// TestClusterFactGoldens renders one profile (allowDNS, allowMeshControlPlane) for clusters whose
// DNS and istiod are not where a stock cluster has them; testdata/cluster-facts/<case>.golden.yaml
// holds the output (-update rewrites it).
func TestClusterFactGoldens(t *testing.T) {
	profile := filepath.Join("testdata", "cluster-facts", "profile.yaml")
	for _, tc := range []struct {
		name string
		args []string
	}{
		// OpenShift's DNS operator runs CoreDNS as the dns-default DaemonSet in openshift-dns, listening on 5353
		// (https://docs.openshift.com/container-platform/latest/networking/dns-operator.html).
		{"openshift-dns", []string{"--dns-namespace=openshift-dns", "--dns-pod-labels=dns.operator.openshift.io/daemonset-dns=default", "--dns-ports=5353"}},
		// NodeLocal DNSCache answers on 169.254.20.10 in the host network, with kube-dns behind it
		// (https://kubernetes.io/docs/tasks/administer-cluster/nodelocaldns/).
		{"nodelocal-dns-cache", []string{"--dns-ip-blocks=169.254.20.10/32"}},
		// A revisioned istiod (istio.io/rev) in its own namespace.
		{"istiod-revision", []string{"--istio-namespace=istio-canary", "--istiod-pod-labels=app=istiod,istio.io/rev=canary"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			r := renderReal(t, "", append([]string{"-f", profile}, tc.args...)...)
			got := r.stdout + "# stderr (exit " + strconv.Itoa(r.code) + "):\n"
			if s := strings.TrimSpace(r.stderr); s != "" {
				got += "# " + strings.ReplaceAll(s, "\n", "\n# ") + "\n"
			}
			golden := filepath.Join("testdata", "cluster-facts", tc.name+".golden.yaml")
			if *updateGolden {
				g.Expect(os.WriteFile(golden, []byte(got), 0o644)).To(Succeed())
			}
			want, err := os.ReadFile(golden)
			g.Expect(err).NotTo(HaveOccurred(), "missing golden; run go test ./internal/cli -run TestClusterFactGoldens -update")
			g.Expect(got).To(Equal(string(want)))
		})
	}
}

// explain answers with the same facts the render used: a DNS query to NodeLocal DNSCache's
// address is allowed by the allow-dns policy only when the cluster says the cache is there.
func TestExplainAllowsDNSToTheNodeLocalCacheOnlyWhenTheClusterHasOne(t *testing.T) {
	g := NewWithT(t)
	profile := filepath.Join("testdata", "cluster-facts", "profile.yaml")
	args := []string{"-f", profile, "--mesh", "None", "--from", "shop/api", "--from-labels", "app=api", "--to-ip", "169.254.20.10", "--port", "53", "--protocol", "UDP"}
	stock := explainRun(t, "", args...)
	g.Expect(stock.code).To(Equal(ExplainDenied), stock.stdout+stock.stderr)
	local := explainRun(t, "", append(args, "--dns-ip-blocks", "169.254.20.10/32")...)
	g.Expect(local.code).To(Equal(ExplainAllowed), local.stdout+local.stderr)
	g.Expect(local.stdout).To(ContainSubstring("NetworkPolicy shop/baseline-allow-dns[0]"))
}
