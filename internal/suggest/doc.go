// Package suggest proposes MeshSecurityProfiles from the traffic a mesh observed: one profile per
// destination namespace that allows exactly the flows seen (sender identity, receiving workload,
// port and, where the metrics carry them, HTTP methods and path prefixes), denies everything else,
// keeps mutual TLS Strict except for the workload ports where plaintext clients were seen, lets
// pods reach DNS and the mesh control plane, and writes the observed flows as
// `expectations: want: Allowed` and a few flows not seen as `want: Denied`, so that
// `manager explain --expectations` (and the controller) guard both.
//
// It is pure: Samples (metric name, labels, value) in, profiles out. Reading samples from an
// exposition-format file is here too (ParseExposition); querying a Prometheus server is the
// command's job (internal/cli). Selectors come from the workloads' real labels (Workload), never
// from pod names.
//
// The metrics and labels read, with their upstream definitions:
//   - Istio (https://istio.io/latest/docs/reference/config/metrics/): istio_requests_total and
//     istio_tcp_connections_opened_total with reporter, source_workload, source_workload_namespace,
//     source_principal, destination_workload, destination_workload_namespace,
//     destination_principal, request_protocol, response_code and connection_security_policy
//     (mutual_tls or none). Istio's standard metrics have no port, method or path label: the
//     labels destination_port, request_method and request_url_path are read when a Telemetry
//     resource adds them with tagOverrides, as
//     https://istio.io/latest/docs/tasks/observability/metrics/customize-metrics/ shows for
//     destination_port ("string(destination.port)"); without them rules cover every port.
//   - Linkerd (https://linkerd.io/2.18/reference/proxy-metrics/): request_total and tcp_open_total
//     with direction, tls, and the Kubernetes labels added at collection time (namespace,
//     deployment, statefulset, daemonset). The inbound labels client_id, target_addr and
//     target_port, and tls="no_identity" for plaintext clients, are those the proxy emits as
//     linkerd2's integration tests match them (test/integration/.../opaque_ports_test.go:
//     tcp_open_total{direction="inbound",peer="src",target_addr=...,tls="true",client_id=...}).
//     Linkerd's request_total has no method or path label, so Linkerd rules cover ports only.
package suggest
