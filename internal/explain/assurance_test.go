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

// The admin network policy examples follow sigs.k8s.io/network-policy-api
// (apis/v1alpha1/adminnetworkpolicy_types.go: "AdminNetworkPolicyRuleActionAllow indicates that
// matching traffic will be allowed regardless of NetworkPolicy and BaselineAdminNetworkPolicy
// rules"; apis/v1alpha2/clusternetworkpolicy_types.go: tiers Admin, NetworkPolicy, Baseline).
func TestAdminNetworkPolicyTiers(t *testing.T) {
	const npDefaultDeny = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: shop}
spec: {podSelector: {}, policyTypes: [Ingress]}
---
apiVersion: v1
kind: Namespace
metadata: {name: sandbox, labels: {tier: sandbox}}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {tier: prod}}
---
`
	const anpAllowAll = `
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: allow-lb-health}
spec: {priority: 10, subject: {namespaces: {}}, ingress: [{name: all, action: Allow, from: [{namespaces: {}}]}]}`
	const anpDenySandbox = `
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: deny-sandbox}
spec:
  priority: 5
  subject: {namespaces: {matchLabels: {tier: prod}}}
  ingress: [{name: sandbox, action: Deny, from: [{namespaces: {matchLabels: {tier: sandbox}}}], ports: [{portNumber: {protocol: TCP, port: 8080}}]}]`
	const anpPassSandbox = `
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: pass-sandbox}
spec: {priority: 1, subject: {namespaces: {}}, ingress: [{name: pass, action: Pass, from: [{namespaces: {matchLabels: {tier: sandbox}}}]}]}`
	const banpDeny = `
apiVersion: policy.networking.k8s.io/v1alpha1
kind: BaselineAdminNetworkPolicy
metadata: {name: default}
spec: {subject: {namespaces: {}}, ingress: [{name: deny-all, action: Deny, from: [{namespaces: {}}]}]}`
	const cnpAccept = `
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: accept-8080}
spec:
  tier: Admin
  priority: 20
  subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: api}}}}
  ingress: [{action: Accept, from: [{namespaces: {}}], protocols: [{tcp: {destinationPort: {number: 8080}}}]}]`
	const cnpAcceptOtherPriority = `
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: deny-same-priority}
spec:
  tier: Admin
  priority: 10
  subject: {namespaces: {}}
  ingress: [{action: Deny, from: [{namespaces: {}}]}]`
	const cilium = `
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: world}
spec: {endpointSelector: {}, ingress: [{fromEntities: [world]}]}`
	src := pod("sandbox", "", "app", "x")
	req := Request{From: src, To: to("shop", 8080, "app", "api")}
	none := Options{Mesh: MeshNone}
	runLayerCases(t, []layerCase{
		{name: "an ANP Allow opens what the NetworkPolicy default deny closes", objects: npDefaultDeny + anpAllowAll,
			req: req, opts: none, layer: LayerIngress, want: Allowed, deciding: []string{"AdminNetworkPolicy allow-lb-health[0]"}},
		{name: "an ANP Deny of higher precedence comes first", objects: npDefaultDeny + anpAllowAll + "\n---\n" + anpDenySandbox,
			req: req, opts: none, layer: LayerIngress, want: Denied, deciding: []string{"AdminNetworkPolicy deny-sandbox[0]"}},
		{name: "an ANP Deny does not match another port", objects: anpDenySandbox + "\n---\n" + npDefaultDeny,
			req: Request{From: src, To: to("shop", 9090, "app", "api")}, opts: none, layer: LayerIngress, want: Denied,
			deciding: []string{"NetworkPolicy shop/default-deny"}},
		{name: "Pass hands the decision to the NetworkPolicies", objects: npDefaultDeny + anpPassSandbox + "\n---\n" + anpAllowAll,
			req: req, opts: none, layer: LayerIngress, want: Denied, deciding: []string{"NetworkPolicy shop/default-deny"}},
		{name: "the BANP decides for pods no NetworkPolicy isolates", objects: banpDeny,
			req: req, opts: none, layer: LayerIngress, want: Denied, deciding: []string{"BaselineAdminNetworkPolicy default[0]"}},
		{name: "NetworkPolicy overrides the BANP", objects: banpDeny + "\n---\n" + `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: open, namespace: shop}
spec: {podSelector: {}, ingress: [{}]}`,
			req: req, opts: none, layer: LayerIngress, want: Allowed, deciding: []string{"NetworkPolicy shop/open[0]"}},
		{name: "a ClusterNetworkPolicy Accept in the Admin tier", objects: npDefaultDeny + cnpAccept,
			req: req, opts: none, layer: LayerIngress, want: Allowed, deciding: []string{"ClusterNetworkPolicy accept-8080[0]"}},
		{name: "two policies of one priority that disagree are undetermined", objects: npDefaultDeny + anpAllowAll + "\n---\n" + cnpAcceptOtherPriority,
			req: req, opts: none, layer: LayerIngress, want: Unknown},
		{name: "the subject's namespace labels not given: undetermined", objects: anpDenySandbox,
			req: req, opts: none, layer: LayerIngress, want: Unknown},
		{name: "a CNI-specific policy among the inputs makes a NetworkPolicy Denied Unknown", objects: npDefaultDeny + cilium,
			req: req, opts: none, layer: LayerIngress, want: Unknown},
		{name: "a served CNI-specific kind makes a NetworkPolicy Denied Unknown", objects: npDefaultDeny,
			req: req, opts: Options{Mesh: MeshNone, CNIPolicyKinds: []string{"GlobalNetworkPolicy.crd.projectcalico.org"}}, layer: LayerIngress, want: Unknown},
		// network-policy-api v0.1.0–v0.1.1 wrote peers as NamespacedPeer (apis/v1alpha1/shared_types.go):
		// the CRD of those releases is what clusters serve that installed them.
		{name: "an ANP Allow in v0.1.1's peer shape opens what the NetworkPolicy default deny closes", objects: npDefaultDeny + `
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: allow-old-shape}
spec: {priority: 10, subject: {namespaces: {}}, ingress: [{name: all, action: Allow, from: [{namespaces: {namespaceSelector: {}}}]}]}`,
			req: req, opts: none, layer: LayerIngress, want: Allowed, deciding: []string{"AdminNetworkPolicy allow-old-shape[0]"}},
		{name: "an ANP Deny in v0.1.1's pod peer shape denies", objects: npDefaultDeny + anpAllowAll + "\n---\n" + `
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: deny-old-shape}
spec:
  priority: 5
  subject: {namespaces: {matchLabels: {tier: prod}}}
  ingress: [{name: sandbox, action: Deny, from: [{pods: {namespaces: {namespaceSelector: {matchLabels: {tier: sandbox}}}, podSelector: {}}}]}]`,
			req: req, opts: none, layer: LayerIngress, want: Denied, deciding: []string{"AdminNetworkPolicy deny-old-shape[0]"}},
		{name: "an ANP peer by sameLabels is undetermined", objects: npDefaultDeny + `
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: same-labels}
spec: {priority: 10, subject: {namespaces: {}}, ingress: [{name: same, action: Allow, from: [{namespaces: {sameLabels: [tenant]}}]}]}`,
			req: req, opts: none, layer: LayerIngress, want: Unknown, deciding: []string{"AdminNetworkPolicy same-labels"}},
		{name: "an unknown field makes the layer Unknown", objects: npDefaultDeny + `
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: future}
spec: {priority: 1, subject: {namespaces: {}}, ingress: [{action: Allow, from: [{namespaces: {}}], newField: 1}]}`,
			req: req, opts: none, layer: LayerIngress, want: Unknown, deciding: []string{"AdminNetworkPolicy future"}},
	})
}

// linkerd2 policy-controller/k8s/index/src/inbound/index.rs (client_authzs) merges every
// ServerAuthorization whose server selector selects a Server into its authorizations;
// server_authorization.rs: a name, else a selector (absent: every Server); unauthenticated,
// meshTLS unauthenticatedTLS, identities and serviceAccounts, networks with excepts.
func TestLinkerdServerAuthorizationsAreModelled(t *testing.T) {
	const server = `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {namespace: shop, name: api-http, labels: {tier: legacy}}
spec: {podSelector: {matchLabels: {app: api}}, port: 8080}
---
`
	saz := func(spec string) string {
		return server + "apiVersion: policy.linkerd.io/v1beta1\nkind: ServerAuthorization\nmetadata: {namespace: shop, name: legacy}\nspec: " + spec
	}
	batch := pod("batch", "worker")
	outside := Source{IP: "203.0.113.10", Unmeshed: true}
	req := Request{From: batch, To: to("shop", 8080, "app", "api")}
	lk := Options{Mesh: MeshLinkerd}
	runLayerCases(t, []layerCase{
		{name: "without one the Server's default accessPolicy deny decides", objects: server,
			req: req, opts: lk, layer: LayerAuthorization, want: Denied},
		{name: "an empty selector selects every Server: any meshed identity", objects: saz(`{server: {selector: {}}, client: {meshTLS: {identities: ["*"]}}}`),
			req: req, opts: lk, layer: LayerAuthorization, want: Allowed, deciding: []string{"ServerAuthorization shop/legacy"}},
		{name: "by server name", objects: saz(`{server: {name: api-http}, client: {meshTLS: {serviceAccounts: [{name: worker, namespace: batch}]}}}`),
			req: req, opts: lk, layer: LayerAuthorization, want: Allowed},
		{name: "another server name does not select it", objects: saz(`{server: {name: other}, client: {unauthenticated: true}}`),
			req: req, opts: lk, layer: LayerAuthorization, want: Denied},
		{name: "a selector on the Server's labels", objects: saz(`{server: {selector: {matchLabels: {tier: legacy}}}, client: {unauthenticated: true}}`),
			req: Request{From: outside, To: to("shop", 8080, "app", "api")}, opts: lk, layer: LayerAuthorization, want: Allowed},
		{name: "meshTLS does not admit plaintext", objects: saz(`{server: {selector: {}}, client: {meshTLS: {unauthenticatedTLS: true}}}`),
			req: Request{From: outside, To: to("shop", 8080, "app", "api")}, opts: lk, layer: LayerAuthorization, want: Denied},
		{name: "networks limit the clients", objects: saz(`{server: {selector: {}}, client: {unauthenticated: true, networks: [{cidr: 203.0.113.0/24, except: [203.0.113.10/32]}]}}`),
			req: Request{From: outside, To: to("shop", 8080, "app", "api")}, opts: lk, layer: LayerAuthorization, want: Denied},
		{name: "another identity is not authorized", objects: saz(`{server: {selector: {}}, client: {meshTLS: {serviceAccounts: [{name: web}]}}}`),
			req: req, opts: lk, layer: LayerAuthorization, want: Denied},
		{name: "an unknown field makes the answer Unknown", objects: saz(`{server: {selector: {}}, client: {unauthenticated: true}, future: 1}`),
			req: req, opts: lk, layer: LayerAuthorization, want: Unknown},
	})
}

// Istio's injection template (manifests/charts/istio-control/istio-discovery/files/
// injection-template.yaml) reads sidecar.istio.io/inject and traffic.sidecar.istio.io/
// excludeInboundPorts; Linkerd's config.linkerd.io/skip-inbound-ports
// (https://linkerd.io/2/reference/proxy-configuration/): such pods and ports get no mesh layer.
func TestDestinationsWithoutAProxyOrWithAnExcludedPortGetNoMeshLayer(t *testing.T) {
	const istioDeny = `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: mtls, namespace: shop}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-all, namespace: shop}
spec: {}
---
`
	pod := func(annotations, container string) string {
		return `apiVersion: v1
kind: Pod
metadata: {name: legacy-0, namespace: shop, labels: {app: legacy, pod-template-hash: x}, annotations: ` + annotations + `}
spec: {containers: [{name: app, image: app}, {name: ` + container + `, image: proxy}]}`
	}
	outside := Source{IP: "203.0.113.10", Unmeshed: true}
	req := Request{From: outside, To: to("shop", 8080, "app", "legacy")}
	runLayerCases(t, []layerCase{
		{name: "a proxied pod: STRICT refuses plaintext", objects: istioDeny + pod("{}", "istio-proxy"),
			req: req, opts: Options{Mesh: MeshIstio}, layer: LayerMTLS, want: Denied, overall: Denied},
		{name: "a pod without istio-proxy (sidecar.istio.io/inject: false)", objects: istioDeny + pod(`{sidecar.istio.io/inject: "false"}`, "other"),
			req: req, opts: Options{Mesh: MeshIstio}, layer: LayerAuthorization, want: NotApplicable, overall: Allowed},
		{name: "an excluded inbound port", objects: istioDeny + pod(`{traffic.sidecar.istio.io/excludeInboundPorts: "9090,8080"}`, "istio-proxy"),
			req: req, opts: Options{Mesh: MeshIstio}, layer: LayerAuthorization, want: NotApplicable, overall: Allowed},
		{name: "a port outside includeInboundPorts", objects: istioDeny + pod(`{traffic.sidecar.istio.io/includeInboundPorts: "9090"}`, "istio-proxy"),
			req: req, opts: Options{Mesh: MeshIstio}, layer: LayerAuthorization, want: NotApplicable, overall: Allowed},
		{name: "an excludeInboundPorts that cannot be read takes every port out (fail closed, as the status does)", objects: istioDeny + pod(`{traffic.sidecar.istio.io/excludeInboundPorts: "http"}`, "istio-proxy"),
			req: req, opts: Options{Mesh: MeshIstio}, layer: LayerAuthorization, want: NotApplicable, overall: Allowed},
		{name: "Linkerd skip-inbound-ports with a range", objects: pod(`{config.linkerd.io/skip-inbound-ports: "4190,8000-8100"}`, "linkerd-proxy"),
			req: req, opts: Options{Mesh: MeshLinkerd, LinkerdDefaultPolicy: "deny"}, layer: LayerAuthorization, want: NotApplicable, overall: Allowed},
		{name: "Linkerd: a proxied pod under the deny default", objects: pod(`{}`, "linkerd-proxy"),
			req: req, opts: Options{Mesh: MeshLinkerd, LinkerdDefaultPolicy: "deny"}, layer: LayerAuthorization, want: Denied},
	})
}

// linkerd2 policy-controller/k8s/index/src/inbound/index.rs adds a probe route (GET, exact path)
// for the pod's HTTP probes on ports with no Server or a Server without HTTPRoutes, authorized
// from policyController.probeNetworks (default 0.0.0.0/0, ::/0).
func TestLinkerdProbeRoutesAreModelled(t *testing.T) {
	const probedPod = `
apiVersion: v1
kind: Pod
metadata: {name: api-0, namespace: shop, labels: {app: api}}
spec:
  containers:
  - name: api
    image: api
    ports: [{name: http, containerPort: 8080}]
    livenessProbe: {httpGet: {path: /debug/health, port: http}}
  - {name: linkerd-proxy, image: proxy}`
	outside := Source{IP: "203.0.113.10", Unmeshed: true}
	deny := Options{Mesh: MeshLinkerd, LinkerdDefaultPolicy: "deny"}
	runLayerCases(t, []layerCase{
		{name: "GET on the probe path is allowed from anywhere", objects: probedPod,
			req: Request{From: outside, To: to("shop", 8080, "app", "api"), HTTP: get("/debug/health")}, opts: deny, layer: LayerAuthorization, want: Allowed},
		{name: "GET on another path is denied", objects: probedPod,
			req: Request{From: outside, To: to("shop", 8080, "app", "api"), HTTP: get("/admin")}, opts: deny, layer: LayerAuthorization, want: Denied},
		{name: "POST on the probe path is denied", objects: probedPod,
			req: Request{From: outside, To: to("shop", 8080, "app", "api"), HTTP: &HTTP{Method: "POST", Path: "/debug/health"}}, opts: deny, layer: LayerAuthorization, want: Denied},
		{name: "outside narrower probeNetworks: denied", objects: probedPod,
			req:  Request{From: outside, To: to("shop", 8080, "app", "api"), HTTP: get("/debug/health")},
			opts: Options{Mesh: MeshLinkerd, LinkerdDefaultPolicy: "deny", LinkerdProbeNetworks: []string{"10.0.0.0/8"}}, layer: LayerAuthorization, want: Denied},
		{name: "probe paths not known: GET is undetermined", objects: "",
			req: Request{From: outside, To: to("shop", 8080, "app", "api"), HTTP: get("/debug/health")}, opts: deny, layer: LayerAuthorization, want: Unknown},
		{name: "a TCP question is not a probe", objects: "",
			req: Request{From: outside, To: to("shop", 8080, "app", "api")}, opts: deny, layer: LayerAuthorization, want: Denied},
	})
}
