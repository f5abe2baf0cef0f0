package explain

import "testing"

// Engine tests for the findings of the semantics audit 3 (E1–E10, C2): each case cites the
// upstream behaviour it reproduces.

func TestLinkerdMeshedTrafficMeetsNetworkPoliciesOnTheProxyInboundPort(t *testing.T) {
	// https://linkerd.io/2/common-errors/network-policy/: "Communication between two meshed pods
	// will always have its original target port replaced with the proxy's inbound port (by
	// default, 4143)".
	const proxyPortOnly = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: meshed-peers, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress: [{from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: frontend}}}], ports: [{port: 4143}]}]`
	const namedProxyPort = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: meshed-peers, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress: [{ports: [{port: linkerd-proxy}]}]`
	meshed := pod("frontend", "batch", "app", "batch")
	unmeshed := meshed
	unmeshed.Unmeshed = true
	runLayerCases(t, []layerCase{
		{name: "a meshed client arrives on 4143, which the rule admits", objects: proxyPortOnly,
			req: Request{From: meshed, To: to("shop", 8080, "app", "api")}, opts: Options{Mesh: MeshLinkerd},
			layer: LayerIngress, want: Allowed, deciding: []string{"NetworkPolicy shop/meshed-peers[0]"}},
		{name: "an unmeshed client arrives on the container port", objects: proxyPortOnly,
			req: Request{From: unmeshed, To: to("shop", 8080, "app", "api")}, opts: Options{Mesh: MeshLinkerd},
			layer: LayerIngress, want: Denied},
		{name: "an unmeshed destination is reached on its container port", objects: proxyPortOnly,
			req: Request{From: meshed, To: Destination{Namespace: "shop", Port: 8080, Unmeshed: true}}, opts: Options{Mesh: MeshLinkerd},
			layer: LayerIngress, want: Denied},
		{name: "the proxy port is an option", objects: proxyPortOnly,
			req: Request{From: meshed, To: to("shop", 8080, "app", "api")}, opts: Options{Mesh: MeshLinkerd, LinkerdProxyInboundPort: 4000},
			layer: LayerIngress, want: Denied},
		{name: "a named port linkerd-proxy is the proxy's port", objects: namedProxyPort,
			req: Request{From: meshed, To: to("shop", 8080, "app", "api")}, opts: Options{Mesh: MeshLinkerd},
			layer: LayerIngress, want: Allowed},
		{name: "under Istio the original port is kept", objects: proxyPortOnly,
			req: Request{From: meshed, To: to("shop", 8080, "app", "api")}, opts: Options{Mesh: MeshIstio},
			layer: LayerIngress, want: Denied},
	})
}
