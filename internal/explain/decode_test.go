package explain

import (
	"strings"
	"testing"

	"github.com/meshguard/meshguard/internal/clusterfacts"
)

// Source fields that the hand-written decoding used to drop (AuthorizationPolicy reference,
// https://istio.io/latest/docs/reference/config/security/authorization-policy/#Source):
// serviceAccounts ("<namespace>/<serviceaccount>", or a bare name of the policy's namespace,
// from the peer certificate, mTLS only, no wildcard) and trustDomains (the peer certificate's
// trust domain; exact, prefix, suffix and presence). Read as an empty source they matched
// everyone.

const istioAllowSA = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: only-sleep, namespace: foo}
spec: {rules: [{from: [{source: {serviceAccounts: ["default/sleep", "curl"]}}]}]}`

const istioDenySA = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-sleep, namespace: foo}
spec: {action: DENY, rules: [{from: [{source: {notServiceAccounts: ["default/sleep"]}}]}]}`

const istioAllowTD = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: own-domain, namespace: foo}
spec: {rules: [{from: [{source: {trustDomains: ["cluster.local"]}}]}]}`

func TestIstioSourceServiceAccountsAndTrustDomains(t *testing.T) {
	httpbin := to("foo", 8000, "app", "httpbin")
	other := Options{Facts: clusterfacts.Facts{TrustDomain: "other.example"}}
	runLayerCases(t, []layerCase{
		{name: "an ALLOW with only serviceAccounts admits the named account", objects: istioAllowSA,
			req: Request{From: pod("default", "sleep"), To: httpbin, HTTP: get("/")}, layer: LayerAuthorization, want: Allowed,
			deciding: []string{"AuthorizationPolicy foo/only-sleep[0]"}},
		{name: "an ALLOW with only serviceAccounts refuses another account (it is not an empty source)", objects: istioAllowSA,
			req: Request{From: pod("default", "intruder"), To: httpbin, HTTP: get("/")}, layer: LayerAuthorization, want: Denied},
		{name: "a bare service account name is of the policy's namespace", objects: istioAllowSA,
			req: Request{From: pod("foo", "curl"), To: httpbin, HTTP: get("/")}, layer: LayerAuthorization, want: Allowed},
		{name: "a bare service account name does not match the same name in another namespace", objects: istioAllowSA,
			req: Request{From: pod("bar", "curl"), To: httpbin, HTTP: get("/")}, layer: LayerAuthorization, want: Denied},
		{name: "serviceAccounts need mTLS: a plaintext client is refused", objects: istioAllowSA,
			req: Request{From: Source{Namespace: "default", ServiceAccount: "sleep", Unmeshed: true}, To: httpbin, HTTP: get("/")}, layer: LayerAuthorization, want: Denied},
		{name: "serviceAccounts of a meshed client of unknown account are unknown", objects: istioAllowSA,
			req: Request{From: pod("default", ""), To: httpbin, HTTP: get("/")}, layer: LayerAuthorization, want: Unknown},
		{name: "a DENY with notServiceAccounts denies every other account", objects: istioDenySA,
			req: Request{From: pod("default", "intruder"), To: httpbin, HTTP: get("/")}, layer: LayerAuthorization, want: Denied},
		{name: "a DENY with notServiceAccounts lets the named account through", objects: istioDenySA,
			req: Request{From: pod("default", "sleep"), To: httpbin, HTTP: get("/")}, layer: LayerAuthorization, want: Allowed},
		{name: "an ALLOW with only trustDomains admits a peer of that trust domain", objects: istioAllowTD,
			req: Request{From: pod("default", "sleep"), To: httpbin, HTTP: get("/")}, layer: LayerAuthorization, want: Allowed},
		{name: "an ALLOW with only trustDomains refuses a mesh of another trust domain", objects: istioAllowTD,
			req: Request{From: pod("default", "sleep"), To: httpbin, HTTP: get("/")}, opts: other, layer: LayerAuthorization, want: Denied},
		{name: "trustDomains need mTLS: a plaintext client is refused", objects: istioAllowTD,
			req: Request{From: Source{Namespace: "default", Unmeshed: true}, To: httpbin, HTTP: get("/")}, layer: LayerAuthorization, want: Denied},
	})
}

// linkerdWebServer is a Server of foo's httpbin port, followed by a document separator.
const linkerdWebServer = `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {namespace: foo, name: web}
spec: {podSelector: {matchLabels: {app: httpbin}}, port: 8000}
---
`

// An object with a field meshguard does not know is not evaluated as if the field were absent:
// its layer answers Unknown, naming the object and the field.
func TestNotUnderstoodObjectsAreUnknown(t *testing.T) {
	httpbin := to("foo", 8000, "app", "httpbin")
	cases := []struct {
		name, objects, layer, field string
		req                         Request
	}{
		{name: "an AuthorizationPolicy source with an unknown field", layer: LayerAuthorization, field: "spec.rules[0].from[0].source.serviceIdentities",
			objects: `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: future, namespace: foo}
spec: {rules: [{from: [{source: {serviceIdentities: ["x"]}}]}]}`,
			req: Request{From: pod("default", "sleep"), To: httpbin, HTTP: get("/")}},
		{name: "a PeerAuthentication with an unknown field", layer: LayerMTLS, field: "spec.mtls.minVersion",
			objects: `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: foo}
spec: {mtls: {mode: STRICT, minVersion: TLS1_3}}`,
			req: Request{From: pod("default", "sleep"), To: httpbin}},
		{name: "a RequestAuthentication with an unknown field", layer: LayerAuthentication, field: "spec.jwtRules[0].audience",
			objects: `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: foo}
spec: {jwtRules: [{issuer: x, audience: y}]}`,
			req: Request{From: pod("default", "sleep"), To: httpbin, HTTP: get("/")}},
		{name: "a Linkerd Server with an unknown field", layer: LayerAuthorization, field: "spec.podSelector.matchFields",
			objects: `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {namespace: foo, name: web}
spec: {podSelector: {matchFields: {a: b}}, port: 8000}`,
			req: Request{From: pod("default", "sleep"), To: httpbin}},
		{name: "a Linkerd AuthorizationPolicy with an unknown field", layer: LayerAuthorization, field: "spec.targetRef.namespace",
			objects: linkerdWebServer + `
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {namespace: foo, name: web}
spec: {targetRef: {kind: Server, name: web, namespace: foo}, requiredAuthenticationRefs: []}`,
			req: Request{From: pod("default", "sleep"), To: httpbin}},
		{name: "a MeshTLSAuthentication with an unknown field", layer: LayerAuthorization, field: "spec.identitiez",
			objects: linkerdWebServer + `
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {namespace: foo, name: web}
spec:
  targetRef: {kind: Server, name: web}
  requiredAuthenticationRefs: [{kind: MeshTLSAuthentication, name: sleep}]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {namespace: foo, name: sleep}
spec: {identitiez: ["*"]}`,
			req: Request{From: pod("default", "sleep"), To: httpbin}},
		{name: "an HTTPRoute with an unknown field", layer: LayerAuthorization, field: "spec.rules[0].matches[0].pathz",
			objects: linkerdWebServer + `
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {namespace: foo, name: web}
spec:
  parentRefs: [{kind: Server, name: web}]
  rules: [{matches: [{pathz: {value: /}}]}]`,
			req: Request{From: pod("default", "sleep"), To: httpbin, HTTP: get("/")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Evaluate(objs(t, tc.objects), tc.req, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range res.Layers {
				if l.Layer != tc.layer {
					continue
				}
				if l.Decision != Unknown || !strings.Contains(l.Reason, tc.field) || !strings.Contains(l.Reason, "not understood") {
					t.Fatalf("%s: got %s (%s), want Unknown naming %s", tc.layer, l.Decision, l.Reason, tc.field)
				}
				if res.Decision == Allowed {
					t.Fatalf("overall Allowed with a layer Unknown")
				}
				return
			}
			t.Fatalf("no layer %s in %+v", tc.layer, res.Layers)
		})
	}
}
