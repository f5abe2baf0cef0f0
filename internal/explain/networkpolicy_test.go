package explain

import "testing"

// The example policy of https://kubernetes.io/docs/concepts/services-networking/network-policies/#networkpolicy-resource
const k8sDocsExample = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: test-network-policy, namespace: default}
spec:
  podSelector: {matchLabels: {role: db}}
  policyTypes: [Ingress, Egress]
  ingress:
  - from:
    - ipBlock: {cidr: 172.17.0.0/16, except: [172.17.1.0/24]}
    - namespaceSelector: {matchLabels: {project: myproject}}
    - podSelector: {matchLabels: {role: frontend}}
    ports:
    - {protocol: TCP, port: 6379}
  egress:
  - to:
    - ipBlock: {cidr: 10.0.0.0/24}
    ports:
    - {protocol: TCP, port: 5978}
---
apiVersion: v1
kind: Namespace
metadata: {name: myproject, labels: {project: myproject}}
`

const otherNamespace = `
---
apiVersion: v1
kind: Namespace
metadata: {name: other}
`

func TestNetworkPolicyLayers(t *testing.T) {
	ext := func(ip string) Source { return Source{IP: ip, Unmeshed: true} }
	runLayerCases(t, []layerCase{
		{name: "docs example: a frontend pod of the same namespace reaches db on 6379", objects: k8sDocsExample,
			req: Request{From: pod("default", "", "role", "frontend"), To: to("default", 6379, "role", "db")}, opts: Options{Mesh: MeshNone},
			layer: LayerIngress, want: Allowed, deciding: []string{"NetworkPolicy default/test-network-policy[0]"}, overall: Allowed},
		{name: "docs example: a frontend pod of another namespace does not (podSelector alone is the policy's namespace)", objects: k8sDocsExample + otherNamespace,
			req: Request{From: withIP(pod("other", "", "role", "frontend"), "10.244.1.5"), To: to("default", 6379, "role", "db")}, opts: Options{Mesh: MeshNone},
			layer: LayerIngress, want: Denied, deciding: []string{"NetworkPolicy default/test-network-policy"}, overall: Denied},
		// Audit E10: a namespace not given is not a namespace without labels; it may carry
		// project: myproject.
		{name: "docs example: a pod of a namespace whose labels were not given is unknown", objects: k8sDocsExample,
			req: Request{From: withIP(pod("other", "", "role", "frontend"), "10.244.1.5"), To: to("default", 6379, "role", "db")}, opts: Options{Mesh: MeshNone},
			layer: LayerIngress, want: Unknown},
		{name: "docs example: the same pod without its IP is unknown (the ipBlock might hold it), not guessed", objects: k8sDocsExample,
			req: Request{From: pod("other", "", "role", "frontend"), To: to("default", 6379, "role", "db")}, opts: Options{Mesh: MeshNone},
			layer: LayerIngress, want: Unknown, overall: Unknown},
		{name: "docs example: any pod of a namespace labelled project=myproject reaches db", objects: k8sDocsExample,
			req: Request{From: pod("myproject", ""), To: to("default", 6379, "role", "db")}, opts: Options{Mesh: MeshNone},
			layer: LayerIngress, want: Allowed},
		{name: "docs example: the right peer on another port is denied", objects: k8sDocsExample,
			req: Request{From: pod("default", "", "role", "frontend"), To: to("default", 6380, "role", "db")}, opts: Options{Mesh: MeshNone},
			layer: LayerIngress, want: Denied},
		{name: "docs example: an address in the ipBlock reaches db", objects: k8sDocsExample,
			req: Request{From: ext("172.17.2.1"), To: to("default", 6379, "role", "db")}, opts: Options{Mesh: MeshNone},
			layer: LayerIngress, want: Allowed},
		{name: "docs example: an address in the except range does not", objects: k8sDocsExample,
			req: Request{From: ext("172.17.1.9"), To: to("default", 6379, "role", "db")}, opts: Options{Mesh: MeshNone},
			layer: LayerIngress, want: Denied},
		{name: "docs example: a pod not selected by any policy is not isolated", objects: k8sDocsExample,
			req: Request{From: ext("8.8.8.8"), To: to("default", 80, "role", "web")}, opts: Options{Mesh: MeshNone},
			layer: LayerIngress, want: Allowed, deciding: []string{}},
		{name: "docs example: db's egress to another pod is denied (egress only to 10.0.0.0/24:5978)", objects: k8sDocsExample,
			req: Request{From: pod("default", "", "role", "db"), To: to("default", 80, "role", "web")}, opts: Options{Mesh: MeshNone},
			layer: LayerEgress, want: Denied},
		{name: "docs example: db's egress to an address in 10.0.0.0/24 on 5978 is allowed",
			objects: k8sDocsExample,
			req:     Request{From: pod("default", "", "role", "db"), To: Destination{IP: "10.0.0.7", Port: 5978}}, opts: Options{Mesh: MeshNone},
			layer: LayerEgress, want: Allowed},
		{name: "a pod without a given IP against an ipBlock-only egress rule is unknown, not guessed",
			objects: k8sDocsExample,
			req:     Request{From: pod("default", "", "role", "db"), To: Destination{Namespace: "default", Port: 5978}}, opts: Options{Mesh: MeshNone},
			layer: LayerEgress, want: Unknown},
		{name: "docs default deny ingress: an empty podSelector with no rules isolates every pod",
			objects: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny-ingress, namespace: default}
spec: {podSelector: {}, policyTypes: [Ingress]}`,
			req: Request{From: pod("default", ""), To: to("default", 80)}, opts: Options{Mesh: MeshNone},
			layer: LayerIngress, want: Denied, deciding: []string{"NetworkPolicy default/default-deny-ingress"}},
		{name: "docs allow all ingress: an empty ingress rule allows every source",
			objects: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-all-ingress, namespace: default}
spec: {podSelector: {}, ingress: [{}], policyTypes: [Ingress]}`,
			req: Request{From: Source{IP: "1.2.3.4"}, To: to("default", 80)}, opts: Options{Mesh: MeshNone},
			layer: LayerIngress, want: Allowed},
		{name: "policyTypes unset with only egress rules still isolates for ingress (Ingress is always defaulted)",
			objects: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress-only, namespace: default}
spec: {podSelector: {}, egress: [{}]}`,
			req: Request{From: pod("default", ""), To: to("default", 80)}, opts: Options{Mesh: MeshNone},
			layer: LayerIngress, want: Denied},
		{name: "docs endPort: a port inside the range is allowed",
			objects: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: multi-port-egress, namespace: default}
spec:
  podSelector: {matchLabels: {role: db}}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 10.0.0.0/24}}]
    ports: [{protocol: TCP, port: 32000, endPort: 32768}]`,
			req: Request{From: pod("default", "", "role", "db"), To: Destination{IP: "10.0.0.1", Port: 32500}}, opts: Options{Mesh: MeshNone},
			layer: LayerEgress, want: Allowed},
		{name: "a named port without the destination port's name is unknown",
			objects: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: named, namespace: default}
spec:
  podSelector: {}
  ingress: [{ports: [{port: http}]}]`,
			req: Request{From: pod("default", ""), To: to("default", 8080)}, opts: Options{Mesh: MeshNone},
			layer: LayerIngress, want: Unknown},
		{name: "UDP is not TCP: a TCP-only rule does not allow UDP",
			objects: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: tcp53, namespace: default}
spec:
  podSelector: {}
  ingress: [{ports: [{port: 53}]}]`,
			req: Request{From: pod("default", ""), To: Destination{Namespace: "default", Port: 53, Protocol: "UDP"}}, opts: Options{Mesh: MeshNone},
			layer: LayerIngress, want: Denied},
	})
}

func withIP(s Source, ip string) Source { s.IP = ip; return s }
