package clusterfacts

import (
	"testing"

	. "github.com/onsi/gomega"
	"github.com/spf13/pflag"
)

func parse(t *testing.T, args ...string) (Facts, error) {
	t.Helper()
	f := Defaults()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	f.Bind(fs)
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	return f, f.Validate()
}

func TestTheFlagDefaultsAreTheDefaultsOfAStockCluster(t *testing.T) {
	g := NewWithT(t)
	f, err := parse(t)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f).To(Equal(Defaults()))
	g.Expect(f.TrustDomain).To(Equal("cluster.local"))
	g.Expect(f.RootNamespace()).To(Equal("istio-system"))
	g.Expect(f.DNSPodLabels).To(Equal(map[string]string{"k8s-app": "kube-dns"}))
}

func TestIstiosRootNamespaceFollowsTheIstioNamespaceUnlessSet(t *testing.T) {
	g := NewWithT(t)
	f, err := parse(t, "--istio-namespace=mesh")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f.RootNamespace()).To(Equal("mesh"))
	f, err = parse(t, "--istio-namespace=mesh", "--istio-root-namespace=mesh-root")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f.RootNamespace()).To(Equal("mesh-root"))
}

func TestDNSPeersAreSetFromFlags(t *testing.T) {
	g := NewWithT(t)
	f, err := parse(t, "--dns-namespace=openshift-dns", "--dns-pod-labels=dns.operator.openshift.io/daemonset-dns=default")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f.DNSNamespace).To(Equal("openshift-dns"))
	g.Expect(f.DNSPodLabels).To(Equal(map[string]string{"dns.operator.openshift.io/daemonset-dns": "default"}))
}

func TestMalformedFactsAreRefusedNamingTheFlag(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"a trust domain with a slash", []string{"--trust-domain=cluster.local/prod"}, "--trust-domain"},
		{"a namespace that is not a DNS label", []string{"--linkerd-namespace=Linkerd_CP"}, "--linkerd-namespace"},
		{"a root namespace that is not a DNS label", []string{"--istio-root-namespace=a.b"}, "--istio-root-namespace"},
		{"DNS pod labels that are not key=value", []string{"--dns-pod-labels=kube-dns"}, "dns-pod-labels"},
		{"empty DNS pod labels (they would select every pod of the namespace)", []string{"--dns-pod-labels="}, "dns-pod-labels"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := parse(t, tc.args...)
			g.Expect(err).To(MatchError(ContainSubstring(tc.want)))
		})
	}
}
