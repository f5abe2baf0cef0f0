package suggest

import (
	"os"
	"testing"

	. "github.com/onsi/gomega"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

func TestTheShadowReportCountsWhatDryRunPoliciesWouldDenyPerPodAndEngine(t *testing.T) {
	g := NewWithT(t)
	f, err := os.Open("testdata/istio-shadow.prom")
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = f.Close() }()
	samples, err := ParseExposition(f)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ShadowReport(v1alpha1.MeshIstio, samples)).To(Equal([]ShadowCount{
		{Namespace: "shop", Workload: "api-74fb669cc6-95qm8", Engine: "allow", Count: 5},
		{Namespace: "shop", Workload: "api-74fb669cc6-95qm8", Engine: "deny", Count: 1},
	}))
}

func TestTheLinkerdShadowReportCountsRequestsOnlyADefaultPolicyAdmitted(t *testing.T) {
	g := NewWithT(t)
	s := func(metric string, kv ...string) Sample {
		l := map[string]string{"namespace": "payments", "deployment": "ledger"}
		for i := 0; i+1 < len(kv); i += 2 {
			l[kv[i]] = kv[i+1]
		}
		return Sample{Metric: metric, Labels: l, Value: 4}
	}
	g.Expect(ShadowReport(v1alpha1.MeshLinkerd, []Sample{
		s("inbound_http_authz_allow_total", "authz_name", "audit", "srv_kind", "server"),
		s("inbound_tcp_authz_allow_total", "authz_name", "all-authenticated", "srv_kind", "server"),
		s("inbound_http_authz_allow_total", "authz_name", "all-authenticated", "srv_kind", "default"),
		s("inbound_http_authz_allow_total", "authz_name", "baseline-rule-x", "authz_kind", "authorizationpolicy"),
	})).To(Equal([]ShadowCount{
		{Namespace: "payments", Workload: "ledger", Engine: "all-authenticated", Count: 4},
		{Namespace: "payments", Workload: "ledger", Engine: "audit", Count: 4},
	}))
}
