package suggest

import (
	"math"
	"regexp"
	"sort"
	"strings"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// ShadowCount is how many requests the rules in shadow would have denied on one workload.
type ShadowCount struct {
	Namespace string
	// Workload is the pod (Istio's per-proxy statistics) or the workload (Linkerd's deployment,
	// statefulset or daemonset label).
	Workload string
	// Engine is Istio's shadow engine that would deny (allow: no dry-run ALLOW policy matched;
	// deny: a dry-run DENY policy matched), or Linkerd's default policy that admitted them.
	Engine string
	Count  float64
}

// istioRBACStat is the Envoy RBAC statistic of an inbound listener as Istio exports it, for
// example envoy_http_inbound_0_0_0_0_80_rbac
// (https://istio.io/latest/docs/tasks/security/authorization/authz-dry-run/).
var istioRBACStat = regexp.MustCompile(`^envoy_http_inbound_.*_rbac$`)

// ShadowQuery is a PromQL selector of series ShadowReport reads and the metric name its results
// stand for (a rate drops the name; Istio's per-listener names are all read alike).
type ShadowQuery struct{ Selector, Metric string }

// ShadowQueries are the series ShadowReport reads, per mesh.
var ShadowQueries = map[v1alpha1.Mesh][]ShadowQuery{
	v1alpha1.MeshIstio: {{`{__name__=~"envoy_http_inbound_.*_rbac",authz_dry_run_result="denied"}`, "envoy_http_inbound_any_rbac"}},
	v1alpha1.MeshLinkerd: {
		{`inbound_http_authz_allow_total{authz_name=~"audit|all-authenticated"}`, "inbound_http_authz_allow_total"},
		{`inbound_tcp_authz_allow_total{authz_name=~"audit|all-authenticated"}`, "inbound_tcp_authz_allow_total"},
	},
}

// ShadowReport counts what rules in shadow would have denied:
//   - Istio: the dry-run results of the proxies' RBAC filters, authz_dry_run_result="denied",
//     per authz_dry_run_action (allow or deny engine);
//   - Linkerd: requests and connections a default policy admitted instead of a meshguard
//     AuthorizationPolicy (inbound_http_authz_allow_total / inbound_tcp_authz_allow_total,
//     authz_name audit, or all-authenticated on a Server: what Shadow puts where it would deny,
//     internal/render/shadow.go).
//
// A counter read from one scrape is its total since the proxy started; from Prometheus
// (QueryPrometheus) it is the increase over the window.
func ShadowReport(mesh v1alpha1.Mesh, samples []Sample) []ShadowCount {
	sum := map[[3]string]float64{}
	for _, s := range samples {
		if s.Value <= 0 || math.IsNaN(s.Value) {
			continue
		}
		l := s.Labels
		var key [3]string
		switch mesh {
		case v1alpha1.MeshLinkerd:
			if s.Metric != "inbound_http_authz_allow_total" && s.Metric != "inbound_tcp_authz_allow_total" {
				continue
			}
			switch {
			case l["authz_name"] == linkerdAuditPolicy:
			case l["authz_name"] == "all-authenticated" && l["srv_kind"] == "server":
			default:
				continue
			}
			wl := ""
			for _, k := range linkerdWorkloadLabels {
				if l[k] != "" {
					wl = l[k]
					break
				}
			}
			key = [3]string{l["namespace"], wl, l["authz_name"]}
		default:
			if !istioRBACStat.MatchString(s.Metric) || l["authz_dry_run_result"] != "denied" {
				continue
			}
			key = [3]string{first(l, "namespace", "kubernetes_namespace"), first(l, "pod", "kubernetes_pod_name"), l["authz_dry_run_action"]}
		}
		sum[key] += s.Value
	}
	out := make([]ShadowCount, 0, len(sum))
	for k, v := range sum {
		out = append(out, ShadowCount{Namespace: k[0], Workload: k[1], Engine: k[2], Count: v})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		return strings.Join([]string{a.Namespace, a.Workload, a.Engine}, "\x00") < strings.Join([]string{b.Namespace, b.Workload, b.Engine}, "\x00")
	})
	return out
}

const linkerdAuditPolicy = "audit"

func first(l map[string]string, keys ...string) string {
	for _, k := range keys {
		if l[k] != "" {
			return l[k]
		}
	}
	return ""
}
