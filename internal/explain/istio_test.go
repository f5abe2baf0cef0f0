package explain

import "testing"

// Examples of https://istio.io/latest/docs/reference/config/security/authorization-policy/,
// the authorization tasks (https://istio.io/latest/docs/tasks/security/authorization/) and
// https://istio.io/latest/docs/reference/config/security/peer_authentication/.

const istioAllowNothing = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-nothing, namespace: foo}
spec: {}`

const istioDenyAll = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-all, namespace: foo}
spec: {action: DENY, rules: [{}]}`

const istioAllowAll = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-all, namespace: foo}
spec: {rules: [{}]}`

// The reference's first example (the when clause on JWT claims is not modelled).
const istioAllowRead = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: httpbin, namespace: foo}
spec:
  action: ALLOW
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/default/sa/sleep"]}
    - source: {namespaces: ["test"]}
    to:
    - operation: {methods: ["GET"], paths: ["/info*"]}
    - operation: {methods: ["POST"], paths: ["/data"]}
    when:
    - key: request.auth.claims[iss]
      values: ["https://accounts.google.com"]`

// The reference's example without when: same from/to.
const istioAllowReadNoWhen = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: httpbin, namespace: foo}
spec:
  action: ALLOW
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/default/sa/sleep"]}
    - source: {namespaces: ["test"]}
    to:
    - operation: {methods: ["GET"], paths: ["/info*"]}
    - operation: {methods: ["POST"], paths: ["/data"]}`

// The reference's DENY example: deny requests from the "dev" namespace to POST.
const istioDenyDevPost = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: httpbin, namespace: foo}
spec:
  action: DENY
  rules:
  - from: [{source: {namespaces: ["dev"]}}]
    to: [{operation: {methods: ["POST"]}}]`

// The JWT task (https://istio.io/latest/docs/tasks/security/authentication/authn-policy/#end-user-authentication).
const istioJWT = `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt-example, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  jwtRules: [{issuer: testing@secure.istio.io, jwksUri: "https://raw.githubusercontent.com/istio/istio/release-1.28/security/tools/jwt/samples/jwks.json"}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: httpbin, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin}}
  jwtRules: [{issuer: testing@secure.istio.io, jwksUri: "https://example.com/jwks.json"}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: require-jwt, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin}}
  action: ALLOW
  rules:
  - from: [{source: {requestPrincipals: ["testing@secure.istio.io/testing@secure.istio.io"]}}]`

// The PeerAuthentication reference: mesh STRICT, namespace foo PERMISSIVE... and a workload
// policy for finance with port 8080 DISABLE.
const istioPeerAuthn = `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: foo}
spec: {mtls: {mode: PERMISSIVE}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: finance, namespace: foo}
spec:
  selector: {matchLabels: {app: finance}}
  mtls: {mode: STRICT}
  portLevelMtls: {"8080": {mode: DISABLE}}`

// The TCP task (https://istio.io/latest/docs/tasks/security/authorization/authz-tcp/).
const istioTCPAllowMethods = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: tcp-policy, namespace: foo}
spec:
  selector: {matchLabels: {app: tcp-echo}}
  action: ALLOW
  rules:
  - to: [{operation: {methods: ["GET"], ports: ["9000"]}}]`

const istioTCPDenyMethods = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: tcp-policy, namespace: foo}
spec:
  selector: {matchLabels: {app: tcp-echo}}
  action: DENY
  rules:
  - to: [{operation: {methods: ["GET"]}}]`

// The ext-authz task (https://istio.io/latest/docs/tasks/security/authorization/authz-custom/).
const istioCustom = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext-authz, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin}}
  action: CUSTOM
  provider: {name: sample-ext-authz-grpc}
  rules: [{to: [{operation: {paths: ["/headers"]}}]}]`

func TestIstioAuthorizationDocExamples(t *testing.T) {
	sleep := pod("default", "sleep", "app", "sleep")
	httpbin := to("foo", 8000, "app", "httpbin")
	runLayerCases(t, []layerCase{
		{name: "allow-nothing: an ALLOW policy without rules denies everything", objects: istioAllowNothing,
			req: Request{From: sleep, To: httpbin, HTTP: get("/")}, layer: LayerAuthorization, want: Denied,
			deciding: []string{"AuthorizationPolicy foo/allow-nothing"}, overall: Denied},
		{name: "deny-all: a DENY policy with an empty rule denies everything", objects: istioDenyAll,
			req: Request{From: sleep, To: httpbin, HTTP: get("/")}, layer: LayerAuthorization, want: Denied,
			deciding: []string{"AuthorizationPolicy foo/deny-all[0]"}},
		{name: "allow-all: an empty rule matches every request", objects: istioAllowAll,
			req: Request{From: sleep, To: httpbin, HTTP: get("/")}, layer: LayerAuthorization, want: Allowed,
			deciding: []string{"AuthorizationPolicy foo/allow-all[0]"}},
		{name: "deny-all overrides allow-all (DENY before ALLOW)", objects: istioDenyAll + "\n---\n" + istioAllowAll,
			req: Request{From: sleep, To: httpbin, HTTP: get("/")}, layer: LayerAuthorization, want: Denied},
		{name: "reference example: the JWT claim condition is not modelled, so the answer is unknown", objects: istioAllowRead,
			req: Request{From: sleep, To: httpbin, HTTP: get("/info")}, layer: LayerAuthorization, want: Unknown},
		{name: "reference example without when: sleep may GET /info/x", objects: istioAllowReadNoWhen,
			req: Request{From: sleep, To: httpbin, HTTP: get("/info/x")}, layer: LayerAuthorization, want: Allowed,
			deciding: []string{"AuthorizationPolicy foo/httpbin[0]"}},
		{name: "reference example without when: sleep may not GET /data", objects: istioAllowReadNoWhen,
			req: Request{From: sleep, To: httpbin, HTTP: get("/data")}, layer: LayerAuthorization, want: Denied},
		{name: "reference example without when: any workload of namespace test may POST /data", objects: istioAllowReadNoWhen,
			req: Request{From: pod("test", "any"), To: httpbin, HTTP: &HTTP{Method: "POST", Path: "/data"}}, layer: LayerAuthorization, want: Allowed},
		{name: "reference example without when: a plaintext client of namespace test has no namespace and is denied", objects: istioAllowReadNoWhen,
			req: Request{From: Source{Namespace: "test", ServiceAccount: "any", Unmeshed: true}, To: httpbin, HTTP: &HTTP{Method: "POST", Path: "/data"}}, layer: LayerAuthorization, want: Denied},
		{name: "reference example without when: a meshed source of unknown service account is unknown for principals", objects: istioAllowReadNoWhen,
			req: Request{From: pod("default", ""), To: httpbin, HTTP: get("/info")}, layer: LayerAuthorization, want: Unknown},
		{name: "principals [\"*\"] admits any mTLS peer, even of unknown service account", objects: `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: mtls-only, namespace: foo}
spec: {rules: [{from: [{source: {principals: ["*"]}}]}]}`,
			req: Request{From: pod("default", ""), To: httpbin, HTTP: get("/")}, layer: LayerAuthorization, want: Allowed},
		{name: "principals [\"*\"] refuses a plaintext peer", objects: `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: mtls-only, namespace: foo}
spec: {rules: [{from: [{source: {principals: ["*"]}}]}]}`,
			req: Request{From: Source{Namespace: "legacy", Unmeshed: true}, To: httpbin, HTTP: get("/")}, layer: LayerAuthorization, want: Denied},
		{name: "reference DENY example: POST from dev is denied", objects: istioDenyDevPost,
			req: Request{From: pod("dev", "x"), To: httpbin, HTTP: &HTTP{Method: "POST", Path: "/"}}, layer: LayerAuthorization, want: Denied,
			deciding: []string{"AuthorizationPolicy foo/httpbin[0]"}},
		{name: "reference DENY example: GET from dev is allowed by default (no ALLOW policy)", objects: istioDenyDevPost,
			req: Request{From: pod("dev", "x"), To: httpbin, HTTP: get("/")}, layer: LayerAuthorization, want: Allowed},
		{name: "JWT task: a request without a token is denied by require-jwt", objects: istioJWT,
			req: Request{From: sleep, To: httpbin, HTTP: get("/headers")}, layer: LayerAuthorization, want: Denied, overall: Denied},
		{name: "JWT task: a request with a valid token of the issuer is allowed", objects: istioJWT,
			req:   Request{From: sleep, To: httpbin, HTTP: &HTTP{Method: "GET", Path: "/headers", Principal: "testing@secure.istio.io/testing@secure.istio.io"}},
			layer: LayerAuthorization, want: Allowed, overall: Allowed},
		{name: "JWT task: a token of an unknown issuer is rejected by request authentication (401)", objects: istioJWT,
			req:   Request{From: sleep, To: httpbin, HTTP: &HTTP{Method: "GET", Path: "/", Principal: "https://evil.example/x"}},
			layer: LayerAuthentication, want: Denied, deciding: []string{"RequestAuthentication foo/httpbin"}, overall: Denied},
		{name: "TCP task: an ALLOW rule with the HTTP-only field methods never matches TCP traffic", objects: istioTCPAllowMethods,
			req: Request{From: sleep, To: opaque(to("foo", 9000, "app", "tcp-echo"))}, layer: LayerAuthorization, want: Denied},
		{name: "TCP task: a DENY rule with the HTTP-only field methods denies all TCP traffic", objects: istioTCPDenyMethods,
			req: Request{From: sleep, To: opaque(to("foo", 9000, "app", "tcp-echo"))}, layer: LayerAuthorization, want: Denied},
		// Audit E6: on a port that may speak HTTP the sender makes GET requests, which the ALLOW
		// rule admits (builder.go skips the rule on the TCP filter chain only).
		{name: "a TCP question on a port that may speak HTTP: the ALLOW rule with methods may admit it", objects: istioTCPAllowMethods,
			req: Request{From: sleep, To: to("foo", 9000, "app", "tcp-echo")}, layer: LayerAuthorization, want: Unknown},
		{name: "a TCP question on a port that may speak HTTP: the DENY rule with methods stops only GET", objects: istioTCPDenyMethods,
			req: Request{From: sleep, To: to("foo", 9000, "app", "tcp-echo")}, layer: LayerAuthorization, want: Unknown},
		{name: "a TCP question on another port: the ALLOW rule's port does not match", objects: istioTCPAllowMethods,
			req: Request{From: sleep, To: to("foo", 9001, "app", "tcp-echo")}, layer: LayerAuthorization, want: Denied},
		{name: "ext-authz task: a matching CUSTOM policy defers to the provider, which is not modelled", objects: istioCustom,
			req: Request{From: sleep, To: httpbin, HTTP: get("/headers")}, layer: LayerAuthorization, want: Unknown},
		{name: "ext-authz task: a CUSTOM policy that does not match leaves the request to the other policies", objects: istioCustom,
			req: Request{From: sleep, To: httpbin, HTTP: get("/ip")}, layer: LayerAuthorization, want: Allowed},
		{name: "root namespace policies apply to every namespace", objects: `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: global-deny, namespace: istio-system}
spec: {action: DENY, rules: [{from: [{source: {notNamespaces: ["foo"]}}]}]}`,
			req: Request{From: sleep, To: httpbin, HTTP: get("/")}, layer: LayerAuthorization, want: Denied,
			deciding: []string{"AuthorizationPolicy istio-system/global-deny[0]"}},
	})
}

func TestIstioPeerAuthenticationDocExamples(t *testing.T) {
	plain := Source{Namespace: "legacy", Unmeshed: true}
	runLayerCases(t, []layerCase{
		{name: "namespace PERMISSIVE overrides mesh STRICT: plaintext accepted", objects: istioPeerAuthn,
			req: Request{From: plain, To: to("foo", 80, "app", "web")}, layer: LayerMTLS, want: Allowed,
			deciding: []string{"PeerAuthentication foo/default"}},
		{name: "workload STRICT overrides namespace PERMISSIVE: plaintext refused", objects: istioPeerAuthn,
			req: Request{From: plain, To: to("foo", 9090, "app", "finance")}, layer: LayerMTLS, want: Denied,
			deciding: []string{"PeerAuthentication foo/finance"}, overall: Denied},
		{name: "portLevelMtls DISABLE on 8080 overrides the workload's STRICT", objects: istioPeerAuthn,
			req: Request{From: plain, To: to("foo", 8080, "app", "finance")}, layer: LayerMTLS, want: Allowed},
		{name: "mesh STRICT applies in a namespace without its own policy", objects: istioPeerAuthn,
			req: Request{From: plain, To: to("bar", 80)}, layer: LayerMTLS, want: Denied,
			deciding: []string{"PeerAuthentication istio-system/default"}},
		{name: "an address outside the cluster's pods has no sidecar: STRICT refuses it", objects: istioPeerAuthn,
			req: Request{From: Source{IP: "203.0.113.9"}, To: to("bar", 80)}, layer: LayerMTLS, want: Denied},
		{name: "no PeerAuthentication: Istio's default is PERMISSIVE", objects: istioAllowAll,
			req: Request{From: plain, To: to("bar", 80)}, layer: LayerMTLS, want: Allowed, deciding: []string{}},
		{name: "a selector in the root namespace is not a mesh-wide policy", objects: `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: sel, namespace: istio-system}
spec: {selector: {matchLabels: {app: web}}, mtls: {mode: STRICT}}`,
			req: Request{From: plain, To: to("foo", 80, "app", "web")}, layer: LayerMTLS, want: Allowed},
	})
}
