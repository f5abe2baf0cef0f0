package suggest

import (
	"net"
	"strings"
)

// Linkerd metric names (https://linkerd.io/2.18/reference/proxy-metrics/).
const (
	linkerdRequests = "request_total"
	linkerdTCPOpens = "tcp_open_total"
)

// linkerdWorkloadLabels are the labels Linkerd's Prometheus configuration copies from the pod's
// linkerd.io/proxy-<kind> label ("Linkerd labels added at collection time").
var linkerdWorkloadLabels = []string{"deployment", "statefulset", "daemonset", "k8s_job", "replicationcontroller"}

// linkerdFlow reads one Linkerd series. Only direction="inbound" series count (for tcp_open_total
// only peer="src", the client's connection to the proxy): the receiving proxy knows the client's
// identity (client_id, with tls="true") or that it had none (tls="no_identity").
func linkerdFlow(s Sample, notes map[string]bool) (f Flow, ok bool, err error) {
	l := s.Labels
	switch s.Metric {
	case linkerdRequests:
		f.HTTP = true
	case linkerdTCPOpens:
		if p, has := l["peer"]; has && p != "src" {
			return f, false, nil
		}
	default:
		return f, false, nil
	}
	if l["direction"] != "inbound" {
		return f, false, nil
	}
	f.DestNamespace = l["namespace"]
	for _, k := range linkerdWorkloadLabels {
		if l[k] != "" {
			f.DestWorkload = l[k]
			break
		}
	}
	if f.DestNamespace == "" || f.DestWorkload == "" {
		notes["Linkerd series without namespace and a workload label (deployment, statefulset, daemonset) are skipped"] = true
		return f, false, nil
	}
	if l["tls"] == "true" {
		if ns, sa, ok := linkerdIdentity(l["client_id"]); ok {
			f.SourceNamespace, f.SourceServiceAccount = ns, sa
		}
	}
	switch {
	case l["target_port"] != "":
		f.Port = parsePort(l["target_port"])
	case l["target_addr"] != "":
		if _, p, err := net.SplitHostPort(l["target_addr"]); err == nil {
			f.Port = parsePort(p)
		}
	default:
		notes["Linkerd series carry no target_addr or target_port label: rules cover every port"] = true
	}
	return f, true, nil
}

// linkerdIdentity reads <sa>.<namespace>.serviceaccount.identity.<linkerd namespace>.<trust
// domain>, the identity Linkerd gives a pod (https://linkerd.io/2.18/features/automatic-mtls/).
func linkerdIdentity(id string) (ns, sa string, ok bool) {
	parts := strings.SplitN(id, ".", 4)
	if len(parts) < 4 || parts[2] != "serviceaccount" || !strings.HasPrefix(parts[3], "identity.") || parts[0] == "" || parts[1] == "" {
		return "", "", false
	}
	return parts[1], parts[0], true
}
