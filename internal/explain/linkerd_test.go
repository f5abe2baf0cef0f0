package explain

import (
	"strings"
	"testing"
)

// Examples of https://linkerd.io/2/tasks/restricting-access/ (emojivoto) and
// https://linkerd.io/2/tasks/configuring-per-route-policy/ (booksapp), and the reference
// https://linkerd.io/2/reference/authorization-policy/.

const linkerdEmojivoto = `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {namespace: emojivoto, name: voting-grpc}
spec:
  podSelector: {matchLabels: {app: voting-svc}}
  port: grpc
  proxyProtocol: gRPC
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {namespace: emojivoto, name: voting-policy}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: voting-grpc}
  requiredAuthenticationRefs:
  - {name: voting-grpc-authn, kind: MeshTLSAuthentication, group: policy.linkerd.io}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {namespace: emojivoto, name: voting-grpc-authn}
spec:
  identities: ["web.emojivoto.serviceaccount.identity.linkerd.cluster.local"]`

const linkerdBooksapp = `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {namespace: booksapp, name: authors-server}
spec:
  podSelector: {matchLabels: {app: authors, project: booksapp}}
  port: service
---
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {namespace: booksapp, name: authors-get-route}
spec:
  parentRefs: [{name: authors-server, kind: Server, group: policy.linkerd.io}]
  rules:
  - matches:
    - {path: {value: "/authors.json"}, method: GET}
    - {path: {value: "/authors/", type: PathPrefix}, method: GET}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {namespace: booksapp, name: authors-get-policy}
spec:
  targetRef: {group: policy.linkerd.io, kind: HTTPRoute, name: authors-get-route}
  requiredAuthenticationRefs:
  - {name: authors-get-authn, kind: MeshTLSAuthentication, group: policy.linkerd.io}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {namespace: booksapp, name: authors-get-authn}
spec:
  identities:
  - "books.booksapp.serviceaccount.identity.linkerd.cluster.local"
  - "webapp.booksapp.serviceaccount.identity.linkerd.cluster.local"`

func TestLinkerdAuthorizationDocExamples(t *testing.T) {
	voting := Destination{Namespace: "emojivoto", PodLabels: lbls("app", "voting-svc"), Port: 8080, PortName: "grpc"}
	authors := Destination{Namespace: "booksapp", PodLabels: lbls("app", "authors", "project", "booksapp"), Port: 7001, PortName: "service"}
	runLayerCases(t, []layerCase{
		{name: "restricting access: web may call the voting Server", objects: linkerdEmojivoto,
			req:   Request{From: pod("emojivoto", "web"), To: voting, HTTP: &HTTP{Method: "POST", Path: "/emojivoto.v1.VotingService/VoteDoughnut"}},
			layer: LayerAuthorization, want: Allowed, deciding: []string{"AuthorizationPolicy emojivoto/voting-policy"}, overall: Allowed},
		{name: "restricting access: vote-bot is refused by the Server's default deny", objects: linkerdEmojivoto,
			req: Request{From: pod("emojivoto", "default"), To: voting}, layer: LayerAuthorization, want: Denied,
			deciding: []string{"Server emojivoto/voting-grpc"}, overall: Denied},
		{name: "restricting access: an unmeshed client has no identity and is refused", objects: linkerdEmojivoto,
			req: Request{From: Source{Namespace: "emojivoto", ServiceAccount: "web", Unmeshed: true}, To: voting}, layer: LayerAuthorization, want: Denied},
		{name: "restricting access: without the port's name the named Server port is unknown", objects: linkerdEmojivoto,
			req:   Request{From: pod("emojivoto", "web"), To: Destination{Namespace: "emojivoto", PodLabels: lbls("app", "voting-svc"), Port: 8080}},
			layer: LayerAuthorization, want: Unknown},
		{name: "per-route policy: webapp may GET /authors.json", objects: linkerdBooksapp,
			req:   Request{From: pod("booksapp", "webapp"), To: authors, HTTP: get("/authors.json")},
			layer: LayerAuthorization, want: Allowed, deciding: []string{"AuthorizationPolicy booksapp/authors-get-policy"}},
		{name: "per-route policy: books may GET /authors/1", objects: linkerdBooksapp,
			req: Request{From: pod("booksapp", "books"), To: authors, HTTP: get("/authors/1")}, layer: LayerAuthorization, want: Allowed},
		{name: "per-route policy: traffic may not GET /authors/1 (only webapp and books)", objects: linkerdBooksapp,
			req: Request{From: pod("booksapp", "traffic"), To: authors, HTTP: get("/authors/1")}, layer: LayerAuthorization, want: Denied},
		{name: "per-route policy: DELETE matches no route and is refused (404)", objects: linkerdBooksapp,
			req:   Request{From: pod("booksapp", "webapp"), To: authors, HTTP: &HTTP{Method: "DELETE", Path: "/authors/1.json"}},
			layer: LayerAuthorization, want: Denied, deciding: []string{"Server booksapp/authors-server", "HTTPRoute booksapp/authors-get-route"}},
		{name: "per-route policy: a plain TCP question on a Server with routes is unknown (the route decides)", objects: linkerdBooksapp,
			req: Request{From: pod("booksapp", "webapp"), To: authors}, layer: LayerAuthorization, want: Unknown},
		{name: "default policy deny on the namespace refuses a pod without Server", objects: `
apiVersion: v1
kind: Namespace
metadata: {name: shop, annotations: {config.linkerd.io/default-inbound-policy: deny}}`,
			req: Request{From: pod("web", "web"), To: to("shop", 80)}, layer: LayerAuthorization, want: Denied},
		{name: "default policy all-authenticated refuses an unmeshed client", objects: `
apiVersion: v1
kind: Namespace
metadata: {name: shop, annotations: {config.linkerd.io/default-inbound-policy: all-authenticated}}`,
			req: Request{From: Source{Namespace: "web", Unmeshed: true}, To: to("shop", 80)}, layer: LayerAuthorization, want: Denied},
		{name: "default policy all-authenticated accepts any meshed client", objects: `
apiVersion: v1
kind: Namespace
metadata: {name: shop, annotations: {config.linkerd.io/default-inbound-policy: all-authenticated}}`,
			req: Request{From: pod("web", ""), To: to("shop", 80)}, layer: LayerAuthorization, want: Allowed},
		{name: "reference: a Namespace-targeted policy with a ServiceAccount authentication authorizes webapp on every Server",
			objects: `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {namespace: booksapp, name: authors}
spec: {podSelector: {matchLabels: {app: authors}}, port: 7001}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: authors-policy, namespace: booksapp}
spec:
  targetRef: {kind: Namespace, name: booksapp}
  requiredAuthenticationRefs: [{name: webapp, kind: ServiceAccount}]`,
			req: Request{From: pod("booksapp", "webapp"), To: to("booksapp", 7001, "app", "authors")}, layer: LayerAuthorization, want: Allowed},
		{name: "reference: NetworkAuthentication cluster-network needs the source IP, and then decides by CIDR",
			objects: `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {namespace: booksapp, name: authors}
spec: {podSelector: {matchLabels: {app: authors}}, port: 7001}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: net, namespace: booksapp}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: authors}
  requiredAuthenticationRefs: [{name: cluster-network, kind: NetworkAuthentication, group: policy.linkerd.io}]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: NetworkAuthentication
metadata: {name: cluster-network, namespace: booksapp}
spec:
  networks: [{cidr: 10.0.0.0/8}, {cidr: 100.64.0.0/10}, {cidr: 172.16.0.0/12}, {cidr: 192.168.0.0/16}]`,
			req: Request{From: Source{IP: "203.0.113.9", Unmeshed: true}, To: to("booksapp", 7001, "app", "authors")}, layer: LayerAuthorization, want: Denied},
	})
}

// meshguard renders an Istio-style /api/* as a whole-path RegularExpression (Linkerd's PathPrefix
// /api/ would also match /api).
const linkerdRegexRoute = `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {namespace: shop, name: api}
spec: {podSelector: {matchLabels: {app: api}}, port: 8080}
---
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {namespace: shop, name: api-route}
spec:
  parentRefs: [{name: api, kind: Server, group: policy.linkerd.io}]
  rules:
  - matches:
    - {path: {type: RegularExpression, value: "/api/.*"}, method: GET}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {namespace: shop, name: api-policy}
spec:
  targetRef: {group: policy.linkerd.io, kind: HTTPRoute, name: api-route}
  requiredAuthenticationRefs:
  - {name: web, kind: MeshTLSAuthentication, group: policy.linkerd.io}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {namespace: shop, name: web}
spec:
  identities: ["web.frontend.serviceaccount.identity.linkerd.cluster.local"]`

func TestLinkerdRegularExpressionRoutesMatchTheWholePath(t *testing.T) {
	api := to("shop", 8080, "app", "api")
	runLayerCases(t, []layerCase{
		{name: "GET /api/v1 matches /api/.*", objects: linkerdRegexRoute,
			req: Request{From: pod("frontend", "web"), To: api, HTTP: get("/api/v1")}, layer: LayerAuthorization, want: Allowed},
		{name: "GET /api/ matches /api/.*", objects: linkerdRegexRoute,
			req: Request{From: pod("frontend", "web"), To: api, HTTP: get("/api/")}, layer: LayerAuthorization, want: Allowed},
		{name: "GET /api does not: the regex spans the whole path", objects: linkerdRegexRoute,
			req: Request{From: pod("frontend", "web"), To: api, HTTP: get("/api")}, layer: LayerAuthorization, want: Denied},
		{name: "GET /x/api/v1 does not: the regex is anchored at the start", objects: linkerdRegexRoute,
			req: Request{From: pod("frontend", "web"), To: api, HTTP: get("/x/api/v1")}, layer: LayerAuthorization, want: Denied},
	})
}

// Linkerd's audit default policy (what meshguard renders for authorization.enforcement: Shadow
// on Permissive ports) admits the request and says it would be denied: "audit … allows all
// traffic but logs/metrics it as if it were denied" (https://linkerd.io/2.18/features/server-policy/).
func TestLinkerdAuditSaysWouldDeny(t *testing.T) {
	res, err := Evaluate(objs(t, `
apiVersion: v1
kind: Namespace
metadata: {name: shop, annotations: {config.linkerd.io/default-inbound-policy: audit}}`), Request{From: pod("web", "web"), To: to("shop", 80)}, Options{Mesh: MeshLinkerd})
	if err != nil {
		t.Fatal(err)
	}
	az := res.Layers[len(res.Layers)-1]
	if az.Layer != LayerAuthorization || az.Decision != Allowed {
		t.Fatalf("authorization: got %s %s (%s), want Allowed", az.Layer, az.Decision, az.Reason)
	}
	if !strings.Contains(az.Reason, "would deny (shadow)") {
		t.Fatalf("the audit policy's answer does not say what deny would do: %s", az.Reason)
	}
}
