package suggest

import (
	"strings"
)

// Istio metric names (https://istio.io/latest/docs/reference/config/metrics/).
const (
	istioRequests = "istio_requests_total"
	istioTCPOpens = "istio_tcp_connections_opened_total"
)

// istioFlow reads one Istio series. Only reporter="destination" series count: the server-side
// proxy reports connection_security_policy (mutual_tls or none) and the client's proven
// source_principal; the client side reports what it asked for. deny is true for HTTP 403
// answers, what Istio's authorization answers a denied request with
// (https://istio.io/latest/docs/concepts/security/#authorization): they are not proposed.
func istioFlow(s Sample, notes map[string]bool) (f Flow, ok, deny bool, err error) {
	switch s.Metric {
	case istioRequests:
		f.HTTP = true
	case istioTCPOpens:
	default:
		return f, false, false, nil
	}
	l := s.Labels
	if l["reporter"] != "destination" {
		return f, false, false, nil
	}
	f.DestNamespace, f.DestWorkload = known(l["destination_workload_namespace"]), known(l["destination_workload"])
	if f.DestNamespace == "" || f.DestWorkload == "" {
		notes["series without destination_workload or destination_workload_namespace are skipped"] = true
		return f, false, false, nil
	}
	f.SourceWorkload = known(l["source_workload"])
	if l["connection_security_policy"] == "mutual_tls" {
		if ns, sa, ok := istioPrincipal(l["source_principal"]); ok {
			f.SourceNamespace, f.SourceServiceAccount = ns, sa
		}
	}
	if !f.Meshed() {
		// A plaintext client has no identity; its workload name (if any) is not proven.
		f.SourceWorkload = ""
	}
	if p, has := l["destination_port"]; has {
		f.Port = parsePort(p)
	} else {
		notes["Istio series carry no destination_port label (add it with a Telemetry tagOverrides, docs/adoption.md): rules cover every port"] = true
	}
	if f.HTTP {
		if m, has := l["request_method"]; has && known(m) != "" {
			f.Method = strings.ToUpper(m)
		}
		if p, has := l["request_url_path"]; has && strings.HasPrefix(p, "/") {
			f.Path, _, _ = strings.Cut(p, "?")
		}
		if _, has := l["request_method"]; !has {
			notes["Istio request series carry no request_method or request_url_path label: HTTP rules cover every method and path"] = true
		}
		deny = l["response_code"] == "403"
	}
	return f, true, deny, nil
}

// known maps Istio's "unknown" placeholder to "".
func known(s string) string {
	if s == "unknown" {
		return ""
	}
	return s
}

// istioPrincipal reads spiffe://<trust domain>/ns/<namespace>/sa/<name>, the form of
// source_principal (https://istio.io/latest/docs/reference/config/security/authorization-policy/#Source
// "principals": "<TRUST_DOMAIN>/ns/<NAMESPACE>/sa/<SERVICE_ACCOUNT>").
func istioPrincipal(p string) (ns, sa string, ok bool) {
	rest, found := strings.CutPrefix(p, "spiffe://")
	if !found {
		return "", "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 5 || parts[1] != "ns" || parts[3] != "sa" || parts[2] == "" || parts[4] == "" {
		return "", "", false
	}
	return parts[2], parts[4], true
}
