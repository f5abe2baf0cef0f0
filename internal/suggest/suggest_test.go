package suggest

import (
	"testing"

	. "github.com/onsi/gomega"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

func istioSample(metric string, kv ...string) Sample {
	l := map[string]string{
		"reporter": "destination", "destination_workload": "api", "destination_workload_namespace": "shop",
		"source_workload": "web", "source_workload_namespace": "frontend",
		"source_principal": "spiffe://cluster.local/ns/frontend/sa/web", "connection_security_policy": "mutual_tls",
		"destination_port": "8080", "response_code": "200",
	}
	for i := 0; i+1 < len(kv); i += 2 {
		l[kv[i]] = kv[i+1]
	}
	return Sample{Metric: metric, Labels: l, Value: 1}
}

func TestIstioSeriesBecomeFlowsOnlyFromTheDestinationsReport(t *testing.T) {
	for _, c := range []struct {
		name   string
		sample Sample
		want   []Flow
	}{
		{"a mutual TLS request names the client's service account and the port",
			istioSample(istioRequests, "request_method", "get", "request_url_path", "/a/b?x=1"),
			[]Flow{{SourceNamespace: "frontend", SourceServiceAccount: "web", SourceWorkload: "web", DestNamespace: "shop", DestWorkload: "api", Port: 8080, HTTP: true, Method: "GET", Path: "/a/b", Count: 1}}},
		{"the client side's report is ignored", istioSample(istioRequests, "reporter", "source"), nil},
		{"a plaintext connection has no identity, whatever the principal label says",
			istioSample(istioTCPOpens, "connection_security_policy", "none"),
			[]Flow{{DestNamespace: "shop", DestWorkload: "api", Port: 8080, Count: 1}}},
		{"an unknown destination workload is skipped", istioSample(istioRequests, "destination_workload", "unknown"), nil},
		{"other metrics are ignored", istioSample("istio_request_bytes_sum"), nil},
		{"a malformed principal is no identity",
			istioSample(istioTCPOpens, "source_principal", "spiffe://cluster.local/ns/frontend"),
			[]Flow{{DestNamespace: "shop", DestWorkload: "api", Port: 8080, Count: 1, SourceWorkload: ""}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := NewWithT(t)
			o, err := Observe(v1alpha1.MeshIstio, []Sample{c.sample})
			g.Expect(err).NotTo(HaveOccurred())
			if c.want == nil {
				g.Expect(o.Flows).To(BeEmpty())
				return
			}
			g.Expect(o.Flows).To(Equal(c.want))
		})
	}
}

func TestAFlowIsRefusedOnlyWhenEverySampleOfItWas403(t *testing.T) {
	g := NewWithT(t)
	o, err := Observe(v1alpha1.MeshIstio, []Sample{
		istioSample(istioRequests, "response_code", "403", "destination_workload", "admin"),
		istioSample(istioRequests, "response_code", "403"),
		istioSample(istioRequests, "response_code", "200"),
	})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(o.Flows).To(HaveLen(1))
	g.Expect(o.Flows[0].DestWorkload).To(Equal("api"))
	g.Expect(o.Flows[0].Count).To(BeEquivalentTo(1), "the 403 answers are not counted as allowed")
	g.Expect(o.Refused).To(HaveLen(1))
	g.Expect(o.Refused[0].DestWorkload).To(Equal("admin"))
}

func TestLinkerdSeriesBecomeFlowsFromInboundClientConnections(t *testing.T) {
	g := NewWithT(t)
	base := map[string]string{"direction": "inbound", "namespace": "payments", "statefulset": "db", "target_addr": "10.0.0.1:5432",
		"tls": "true", "client_id": "ledger.payments.serviceaccount.identity.linkerd.cluster.local"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	o, err := Observe(v1alpha1.MeshLinkerd, []Sample{
		{Metric: linkerdTCPOpens, Labels: with("peer", "src"), Value: 3},
		{Metric: linkerdTCPOpens, Labels: with("peer", "dst"), Value: 3},
		{Metric: linkerdTCPOpens, Labels: with("direction", "outbound"), Value: 3},
		{Metric: linkerdTCPOpens, Labels: with("tls", "no_identity", "client_id", "", "target_addr", "10.0.0.1:9090"), Value: 1},
	})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(o.Flows).To(ConsistOf(
		Flow{SourceNamespace: "payments", SourceServiceAccount: "ledger", DestNamespace: "payments", DestWorkload: "db", Port: 5432, Count: 3},
		Flow{DestNamespace: "payments", DestWorkload: "db", Port: 9090, Count: 1},
	))
}

func TestPathPrefixesKeepTheFirstSegment(t *testing.T) {
	g := NewWithT(t)
	for in, want := range map[string]string{"/api/items/42": "/api/*", "/healthz": "/healthz", "/": "/", "": "", "/a/": "/a/*"} {
		g.Expect(pathPrefix(in)).To(Equal(want), in)
	}
}

func TestRulesAllowExactlyTheObservedMethodAndPathPairs(t *testing.T) {
	g := NewWithT(t)
	b := &builder{ns: "shop"}
	grp := &group{dest: Workload{Name: "api", Labels: map[string]string{"app": "api"}}, srcNS: "frontend", srcSA: "web", port: 8080, meshed: true,
		flows: []Flow{
			{HTTP: true, Method: "GET", Path: "/a/1"}, {HTTP: true, Method: "GET", Path: "/b/1"},
			{HTTP: true, Method: "POST", Path: "/a/2"},
		}}
	rs := b.rules(grp)
	g.Expect(rs).To(HaveLen(2), "GET on /a and /b, POST on /a only: one rule would also allow POST /b")
	var got [][]string
	for _, r := range rs {
		got = append(got, append(append([]string{}, r.To.Methods...), r.To.Paths...))
	}
	g.Expect(got).To(ConsistOf([]string{"GET", "/a/*", "/b/*"}, []string{"POST", "/a/*"}))
}

func TestAConnectionFlowCarryingRequestsOfTheSameClientAndPortAddsNoPortWideRule(t *testing.T) {
	g := NewWithT(t)
	f := Flow{SourceNamespace: "a", SourceServiceAccount: "b", DestNamespace: "c", DestWorkload: "d", Port: 80}
	h := f
	h.HTTP, h.Method = true, "GET"
	g.Expect(dropCarriers([]Flow{f, h})).To(Equal([]Flow{h}))
	other := f
	other.Port = 81
	g.Expect(dropCarriers([]Flow{other, h})).To(HaveLen(2))
}

func TestAReceivingWorkloadWithoutLabelsIsAnErrorNamingIt(t *testing.T) {
	g := NewWithT(t)
	_, err := Suggest(&Observation{Flows: []Flow{{DestNamespace: "shop", DestWorkload: "api", Port: 80}}}, nil, Options{})
	g.Expect(err).To(MatchError(ContainSubstring("shop/api")))
}

func TestLongNamesAreCutDeterministicallyAndStayDistinct(t *testing.T) {
	g := NewWithT(t)
	a := shorten("istio-ingressgateway-service-account-istio-system-to-web-8080")
	b := shorten("istio-ingressgateway-service-account-istio-system-to-web-8081")
	g.Expect(len(a)).To(BeNumerically("<=", maxRuleName))
	g.Expect(a).NotTo(Equal(b))
	g.Expect(shorten("istio-ingressgateway-service-account-istio-system-to-web-8080")).To(Equal(a))
}
