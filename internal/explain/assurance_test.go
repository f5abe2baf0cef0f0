package explain

import (
	"net/netip"
	"strings"
	"testing"
)

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

func TestPiecesSplitACIDRAtEveryBoundaryInsideIt(t *testing.T) {
	b := func(s ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, x := range s {
			out = append(out, netip.MustParsePrefix(x))
		}
		return out
	}
	cases := []struct {
		name  string
		block string
		in    []netip.Prefix
		want  string
	}{
		{"no boundary: the first address", "198.51.100.0/24", nil, "198.51.100.0"},
		{"a half: both halves", "198.51.100.0/24", b("198.51.100.128/25"), "198.51.100.0 198.51.100.128"},
		{"an inner block: before, in, after", "0.0.0.0/0", b("10.0.0.0/8"), "0.0.0.0 10.0.0.0 11.0.0.0"},
		{"a containing block does not split", "10.1.0.0/16", b("10.0.0.0/8"), "10.1.0.0"},
		{"another family does not split", "10.0.0.0/8", b("fd00::/8"), "10.0.0.0"},
		{"a block and its except", "0.0.0.0/0", b("0.0.0.0/0", "192.168.0.0/16"), "0.0.0.0 192.168.0.0 192.169.0.0"},
		{"a block ending at the end", "0.0.0.0/0", b("255.0.0.0/8"), "0.0.0.0 255.0.0.0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, a := range pieces(netip.MustParsePrefix(tc.block), tc.in) {
				got = append(got, a.String())
			}
			if strings.Join(got, " ") != tc.want {
				t.Fatalf("got %v, want %s", got, tc.want)
			}
		})
	}
}

func TestExpectationsAreJudgedForEverySenderTheyStandFor(t *testing.T) {
	const permissiveDenyByNamespace = `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: mtls, namespace: shop}
spec: {mtls: {mode: PERMISSIVE}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: block-sandbox, namespace: istio-system}
spec: {action: DENY, rules: [{from: [{source: {namespaces: [sandbox]}}]}]}`
	const strictDenyByNamespace = `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: mtls, namespace: shop}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: block-sandbox, namespace: istio-system}
spec: {action: DENY, rules: [{from: [{source: {namespaces: [sandbox]}}]}]}`
	const halfOpen = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: partner, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress: [{from: [{ipBlock: {cidr: 198.51.100.0/24, except: [198.51.100.0/25]}}]}]`
	const sourceLockdown = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: lockdown, namespace: sandbox}
spec: {podSelector: {}, policyTypes: [Egress]}`
	api := ExpectationTo{PodLabels: lbls("app", "api"), Port: 8080}
	cases := []struct {
		name    string
		objects string
		x       Expectation
		mesh    Mesh
		want    Decision
		sender  string
		reason  string
	}{
		// ISTIO-SECURITY-2021-004: identity conditions need mTLS; PERMISSIVE accepts plaintext.
		{"PERMISSIVE: a DENY by namespace does not stop the plaintext sender", permissiveDenyByNamespace,
			Expectation{Name: "x", From: ExpectationFrom{Namespace: "sandbox"}, To: api, Want: Denied}, MeshIstio, Allowed, "the same sender without a mesh proxy", ""},
		{"STRICT: both senders are stopped", strictDenyByNamespace,
			Expectation{Name: "x", From: ExpectationFrom{Namespace: "sandbox"}, To: api, Want: Denied}, MeshIstio, Denied, "", ""},
		{"want Allowed is about the sender with a proxy", permissiveDenyByNamespace,
			Expectation{Name: "x", From: ExpectationFrom{Namespace: "sandbox"}, To: api, Want: Allowed}, MeshIstio, Denied, "", ""},
		// NetworkPolicy ipBlock: "cidr minus except"; the upper half of the /24 is admitted.
		{"a CIDR is judged piece by piece", halfOpen,
			Expectation{Name: "x", From: ExpectationFrom{IPBlock: "198.51.100.0/24"}, To: api, Want: Denied}, MeshNone, Allowed, "the sender 198.51.100.128", ""},
		{"a CIDR wholly in the except is denied", halfOpen,
			Expectation{Name: "x", From: ExpectationFrom{IPBlock: "198.51.100.0/25"}, To: api, Want: Denied}, MeshNone, Denied, "", ""},
		{"the sender's own egress policy does not count", sourceLockdown,
			Expectation{Name: "x", From: ExpectationFrom{Namespace: "sandbox", Unmeshed: true}, To: api, Want: Denied}, MeshNone, Allowed, "", ReasonDeniedOnlyBySource},
		{"the sender's own egress policy counts for want Allowed", sourceLockdown,
			Expectation{Name: "x", From: ExpectationFrom{Namespace: "sandbox", Unmeshed: true}, To: api, Want: Allowed}, MeshNone, Denied, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := EvaluateExpectation(objs(t, tc.objects), "shop", tc.x, Options{Mesh: tc.mesh})
			if err != nil {
				t.Fatal(err)
			}
			if r.Decision != tc.want || r.Met != (tc.want == tc.x.Want) {
				t.Fatalf("got %s (met %v) for %q, want %s", r.Decision, r.Met, r.Sender, tc.want)
			}
			if !strings.HasPrefix(r.Sender, tc.sender) || (tc.sender == "" && r.Sender != "" && r.Decision != tc.x.Want) {
				t.Fatalf("sender %q, want prefix %q", r.Sender, tc.sender)
			}
			if r.Reason != tc.reason {
				t.Fatalf("reason %q, want %q", r.Reason, tc.reason)
			}
		})
	}
}
