package explain

import (
	"strings"
	"testing"

	"github.com/meshguard/meshguard/internal/dataplane"
)

// Inputs of an ambient namespace "shop": the Namespace labelled for ambient, a pod app=api that
// istio-cni captured, and (waypointInputs) a service waypoint for the Service api.
const ambientNS = `apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Pod
metadata: {name: api-0, namespace: shop, labels: {app: api}, annotations: {ambient.istio.io/redirection: enabled}}
`

const waypointInputs = `apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient, istio.io/use-waypoint: waypoint}}
---
apiVersion: v1
kind: Pod
metadata: {name: api-0, namespace: shop, labels: {app: api}, annotations: {ambient.istio.io/redirection: enabled}}
---
apiVersion: v1
kind: Pod
metadata: {name: waypoint-7f9c, namespace: shop, labels: {gateway.networking.k8s.io/gateway-name: waypoint, istio.io/dataplane-mode: none}}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
spec: {selector: {app: api}}
---
apiVersion: v1
kind: Service
metadata: {name: other, namespace: shop}
spec: {selector: {app: other}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: waypoint, namespace: shop, labels: {istio.io/waypoint-for: service}}
spec: {gatewayClassName: istio-waypoint}
`

func ap(name, spec string, annotations ...string) string {
	meta := "{name: " + name + ", namespace: shop}"
	if len(annotations) > 0 {
		meta = "{name: " + name + ", namespace: shop, annotations: {" + strings.Join(annotations, ", ") + "}}"
	}
	return "\n---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: " + meta + "\nspec: " + spec + "\n"
}

func withHTTP(r Request, h *HTTP) Request { r.HTTP = h; return r }

var (
	istio    = Options{Mesh: MeshIstio}
	webToAPI = Request{From: pod("frontend", "web", "app", "web"), To: to("shop", 8080, "app", "api")}
)

// TestAmbientZtunnel: an ambient pod without a waypoint is protected by ztunnel alone. Sources:
// istio/istio pilot/pkg/serviceregistry/ambient/authorization.go (convertAuthorizationPolicy,
// handleRule, hasEffectiveRules), istio.io docs/ambient/usage/l4-policy, research §1.2, §1.4, §1.5.
func TestAmbientZtunnel(t *testing.T) {
	runLayerCases(t, []layerCase{
		{
			name:    "an L4 ALLOW by service account admits the client's identity at ztunnel",
			objects: ambientNS + ap("allow-web", `{selector: {matchLabels: {app: api}}, rules: [{from: [{source: {serviceAccounts: [frontend/web]}}], to: [{operation: {ports: ["8080"]}}]}]}`),
			req:     webToAPI, opts: istio, layer: LayerAuthorizationZtunnel, want: Allowed,
			deciding: []string{"AuthorizationPolicy shop/allow-web[0]"}, overall: Allowed,
		},
		{
			name:    "an ALLOW rule with a method is dropped at ztunnel: nothing matches, everything is denied (handleRule: L7 policies never match for ALLOW)",
			objects: ambientNS + ap("allow-get", `{selector: {matchLabels: {app: api}}, rules: [{from: [{source: {namespaces: [frontend]}}], to: [{operation: {ports: ["8080"], methods: [GET]}}]}]}`),
			req:     withHTTP(webToAPI, get("/api")), opts: istio, layer: LayerAuthorizationZtunnel, want: Denied, overall: Denied,
		},
		{
			name:    "a DENY with only requestPrincipals has no effect at ztunnel: a request without a token passes (istio/istio#61126)",
			objects: ambientNS + ap("require-jwt", `{action: DENY, rules: [{from: [{source: {notRequestPrincipals: ["*"]}}]}]}`),
			req:     withHTTP(webToAPI, get("/api")), opts: istio, layer: LayerAuthorizationZtunnel, want: Allowed, overall: Allowed,
		},
		{
			name:    "a DENY source with an L4 and an L7 field matches on its L4 field only: wider than written",
			objects: ambientNS + ap("deny-frontend-token", `{action: DENY, rules: [{from: [{source: {namespaces: [frontend], requestPrincipals: ["https://idp/bad"]}}]}]}`),
			req:     withHTTP(webToAPI, get("/api")), opts: istio, layer: LayerAuthorizationZtunnel, want: Denied,
			deciding: []string{"AuthorizationPolicy shop/deny-frontend-token[0]"},
		},
		{
			name:    "a DENY whose to list holds only methods never matches, even with an L4 from: its clause is empty (hasEffectiveRules)",
			objects: ambientNS + ap("deny-post", `{action: DENY, rules: [{from: [{source: {namespaces: [frontend]}}], to: [{operation: {methods: [POST]}}]}]}`),
			req:     withHTTP(webToAPI, &HTTP{Method: "POST", Path: "/"}), opts: istio, layer: LayerAuthorizationZtunnel, want: Allowed,
		},
		{
			name:    "a DENY with a request.* when key never matches at ztunnel",
			objects: ambientNS + ap("deny-claim", `{action: DENY, rules: [{when: [{key: "request.auth.claims[group]", values: [admin]}]}]}`),
			req:     webToAPI, opts: istio, layer: LayerAuthorizationZtunnel, want: Allowed,
		},
		{
			name:    "CUSTOM policies are ignored by ztunnel (ZtunnelAccepted=False, UnsupportedValue)",
			objects: ambientNS + ap("ext", `{action: CUSTOM, provider: {name: opa}, rules: [{}]}`),
			req:     webToAPI, opts: istio, layer: LayerAuthorizationZtunnel, want: Allowed,
		},
		{
			name:    "a matching dry-run DENY is enforced by Istio 1.24.0-1.25.1 and dropped by 1.25.2+: Unknown (research §1.7)",
			objects: ambientNS + ap("deny-web", `{action: DENY, rules: [{from: [{source: {serviceAccounts: [frontend/web]}}]}]}`, `istio.io/dry-run: "true"`),
			req:     webToAPI, opts: istio, layer: LayerAuthorizationZtunnel, want: Unknown, overall: Unknown,
		},
		{
			name:    "a dry-run DENY that does not match gives the same answer on every version",
			objects: ambientNS + ap("deny-cron", `{action: DENY, rules: [{from: [{source: {serviceAccounts: [batch/cron]}}]}]}`, `istio.io/dry-run: "true"`),
			req:     webToAPI, opts: istio, layer: LayerAuthorizationZtunnel, want: Allowed,
		},
		{
			name:    "a targetRefs policy is never sent to ztunnel (\"TargetRef is not intended for ztunnel\")",
			objects: ambientNS + ap("deny-all-svc", `{action: DENY, targetRefs: [{kind: Service, name: api}], rules: [{}]}`),
			req:     webToAPI, opts: istio, layer: LayerAuthorizationZtunnel, want: Allowed,
		},
		{
			name: "mTLS DISABLE is read as PERMISSIVE: the connection still carries the client's identity (architecture/ambient/peer-authentication.md)",
			objects: ambientNS + `---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: off, namespace: shop}
spec: {mtls: {mode: DISABLE}}
` + ap("allow-web", `{rules: [{from: [{source: {serviceAccounts: [frontend/web]}}]}]}`),
			req: webToAPI, opts: istio, layer: LayerAuthorizationZtunnel, want: Allowed, overall: Allowed,
		},
		{
			name: "mTLS STRICT refuses a plaintext client at ztunnel",
			objects: ambientNS + `---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict, namespace: shop}
spec: {mtls: {mode: STRICT}}
`,
			req:  Request{From: Source{Namespace: "legacy", Unmeshed: true}, To: to("shop", 8080, "app", "api")},
			opts: istio, layer: LayerMTLSZtunnel, want: Denied, overall: Denied,
		},
		{
			name: "ztunnel never validates a JWT: request authentication does not take part",
			objects: ambientNS + `---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: shop}
spec: {selector: {matchLabels: {app: api}}, jwtRules: [{issuer: https://idp}]}
`,
			req:  withHTTP(webToAPI, &HTTP{Method: "GET", Path: "/", Principal: "https://other/sub"}),
			opts: istio, layer: LayerAuthenticationZtunnel, want: NotApplicable, overall: Allowed,
		},
		{
			name: "the ingress NetworkPolicy sees HBONE, port 15008, not the application port (istio.io docs/ambient/usage/networkpolicy)",
			objects: ambientNS + `---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: app-port-only, namespace: shop}
spec: {podSelector: {}, policyTypes: [Ingress], ingress: [{ports: [{port: 8080}]}]}
`,
			req: webToAPI, opts: istio, layer: LayerIngress, want: Denied, overall: Denied,
		},
	})
}

// TestAmbientWaypoint: a pod whose Service is bound to a waypoint. The waypoint enforces the
// targetRefs policies with the client's identity; ztunnel then sees the waypoint's identity
// (istio.io docs/ambient/usage/l4-policy, "Which identity ztunnel sees"; research §1.3).
func TestAmbientWaypoint(t *testing.T) {
	admitWaypoint := ap("only-waypoint", `{selector: {matchLabels: {app: api}}, rules: [{from: [{source: {serviceAccounts: [shop/waypoint]}}]}]}`)
	l7 := ap("web-get", `{targetRefs: [{kind: Service, name: api}], rules: [{from: [{source: {serviceAccounts: [frontend/web]}}], to: [{operation: {methods: [GET]}}]}]}`)
	runLayerCases(t, []layerCase{
		{
			name:    "an L7 ALLOW bound to the Service is enforced by the waypoint with the client's identity",
			objects: waypointInputs + l7 + admitWaypoint,
			req:     withHTTP(webToAPI, get("/api")), opts: istio, layer: LayerAuthorizationWaypoint, want: Allowed, overall: Allowed,
			deciding: []string{"AuthorizationPolicy shop/web-get[0]"},
		},
		{
			name:    "the waypoint denies a method its ALLOW does not list",
			objects: waypointInputs + l7 + admitWaypoint,
			req:     withHTTP(webToAPI, &HTTP{Method: "DELETE", Path: "/api"}), opts: istio, layer: LayerAuthorizationWaypoint, want: Denied, overall: Denied,
		},
		{
			name:    "after the waypoint, ztunnel sees the waypoint's identity: a policy admitting it passes",
			objects: waypointInputs + l7 + admitWaypoint,
			req:     withHTTP(webToAPI, get("/api")), opts: istio, layer: LayerAuthorizationZtunnel, want: Allowed,
			deciding: []string{"AuthorizationPolicy shop/only-waypoint[0]"},
		},
		{
			name:    "a selector ALLOW naming the client denies everything once a waypoint is in the path (fails closed)",
			objects: waypointInputs + ap("allow-web", `{selector: {matchLabels: {app: api}}, rules: [{from: [{source: {serviceAccounts: [frontend/web]}}]}]}`),
			req:     webToAPI, opts: istio, layer: LayerAuthorizationZtunnel, want: Denied, overall: Denied,
		},
		{
			name:    "a policy bound to another Service does not apply at this waypoint",
			objects: waypointInputs + ap("deny-other", `{action: DENY, targetRefs: [{kind: Service, name: other}], rules: [{}]}`),
			req:     webToAPI, opts: istio, layer: LayerAuthorizationWaypoint, want: Allowed,
		},
		{
			name:    "a policy bound to the waypoint Gateway applies to every Service it serves",
			objects: waypointInputs + ap("deny-gw", `{action: DENY, targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: waypoint}], rules: [{}]}`),
			req:     webToAPI, opts: istio, layer: LayerAuthorizationWaypoint, want: Denied,
		},
		{
			name:    "selector policies do not bind the waypoint",
			objects: waypointInputs + ap("deny-all", `{action: DENY, selector: {matchLabels: {app: api}}, rules: [{from: [{source: {serviceAccounts: [frontend/web]}}]}]}`),
			req:     webToAPI, opts: istio, layer: LayerAuthorizationWaypoint, want: Allowed,
		},
		{
			name: "a RequestAuthentication bound to the Service validates tokens at the waypoint",
			objects: waypointInputs + `---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: shop}
spec: {targetRefs: [{kind: Service, name: api}], jwtRules: [{issuer: https://idp}]}
`,
			req:  withHTTP(webToAPI, &HTTP{Method: "GET", Path: "/", Principal: "https://other/sub"}),
			opts: istio, layer: LayerAuthenticationWaypoint, want: Denied,
		},
		{
			name: "a sidecar client skips the waypoint: ztunnel sees its own identity (istio/istio PR #54483)",
			objects: waypointInputs + l7 + admitWaypoint + `---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: frontend, labels: {app: web}, annotations: {sidecar.istio.io/status: "{}"}}
`,
			req: withHTTP(webToAPI, get("/api")), opts: istio, layer: LayerAuthorizationZtunnel, want: Denied, overall: Denied,
		},
		{
			name: "the ingress NetworkPolicy hears from the waypoint's pods on 15008",
			objects: waypointInputs + `---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-waypoint, namespace: shop}
spec: {podSelector: {matchLabels: {app: api}}, policyTypes: [Ingress], ingress: [{from: [{podSelector: {matchLabels: {gateway.networking.k8s.io/gateway-name: waypoint}}}], ports: [{port: 15008}]}]}
`,
			req: webToAPI, opts: istio, layer: LayerIngress, want: Allowed,
		},
	})
}

func TestAmbientSidecarClientLayers(t *testing.T) {
	in := waypointInputs + `---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: frontend, labels: {app: web}, annotations: {sidecar.istio.io/status: "{}"}}
`
	res, err := Evaluate(objs(t, in), webToAPI, istio)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range res.Layers {
		if l.Layer == LayerAuthorizationWaypoint {
			if l.Decision != NotApplicable || !strings.Contains(l.Reason, "sidecars do not go through waypoints") {
				t.Fatalf("waypoint layer: %+v", l)
			}
			return
		}
	}
	t.Fatalf("no waypoint layer: %+v", res.Layers)
}

// TestAmbientFromOptions: the controller's facts decide the data plane when given, not the inputs.
func TestAmbientFromOptions(t *testing.T) {
	facts := &dataplane.Facts{Namespace: "shop", NamespaceLabels: map[string]string{"istio.io/dataplane-mode": "ambient"},
		Pods: []dataplane.Pod{{Name: "api-0", Labels: map[string]string{"app": "api"}}}}
	in := ap("allow-get", `{selector: {matchLabels: {app: api}}, rules: [{to: [{operation: {methods: [GET]}}]}]}`)
	res, err := Evaluate(objs(t, in), withHTTP(webToAPI, get("/")), Options{DataPlane: facts})
	if err != nil {
		t.Fatal(err)
	}
	if res.Decision != Denied || res.Layers[len(res.Layers)-1].Layer != LayerAuthorizationZtunnel {
		t.Fatalf("got %s %+v, want Denied at ztunnel", res.Decision, res.Layers)
	}
	// Without the facts, the same inputs are a sidecar destination: the ALLOW matches.
	res, err = Evaluate(objs(t, in), withHTTP(webToAPI, get("/")), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Decision != Allowed || res.Layers[len(res.Layers)-1].Layer != LayerAuthorization {
		t.Fatalf("got %s %+v, want Allowed by the sidecar", res.Decision, res.Layers)
	}
}

func TestAmbientMixedDataPlanesAreUnknown(t *testing.T) {
	in := ambientNS + `---
apiVersion: v1
kind: Pod
metadata: {name: api-1, namespace: shop, labels: {app: api}, annotations: {sidecar.istio.io/status: "{}"}}
`
	res, err := Evaluate(objs(t, in), webToAPI, istio)
	if err != nil {
		t.Fatal(err)
	}
	if res.Decision != Unknown || !strings.Contains(res.Layers[len(res.Layers)-1].Reason, "different data planes") {
		t.Fatalf("got %s %+v", res.Decision, res.Layers)
	}
}

// TestAmbientMissingWaypointIsUnknown: the namespace binds its pods to a waypoint whose Gateway is
// not among the inputs; with it, ztunnel would see the waypoint's identity, without it the client's:
// no answer rather than a guess.
func TestAmbientMissingWaypointIsUnknown(t *testing.T) {
	in := `apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient, istio.io/use-waypoint: waypoint}}
---
apiVersion: v1
kind: Pod
metadata: {name: api-0, namespace: shop, labels: {app: api}, annotations: {ambient.istio.io/redirection: enabled}}
` + ap("deny-web", `{action: DENY, rules: [{from: [{source: {serviceAccounts: [frontend/web]}}]}]}`)
	res, err := Evaluate(objs(t, in), webToAPI, istio)
	if err != nil {
		t.Fatal(err)
	}
	if res.Decision != Unknown || !strings.Contains(res.Layers[len(res.Layers)-1].Reason, "shop/waypoint") {
		t.Fatalf("got %s %+v", res.Decision, res.Layers)
	}
}
