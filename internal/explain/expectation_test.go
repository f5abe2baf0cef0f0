package explain

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/render"
)

// seedProfile is the issue's example: frontend → backend on 8080 allowed, anything else to the
// backend denied, requests without a JWT to app: my-service denied.
const seedProfile = `
metadata: {name: shop, namespace: shop}
spec:
  mesh: Istio
  mtls: {mode: Strict}
  requestAuthentication:
    selector: {matchLabels: {app: my-service}}
    requireToken: true
    issuers: [{issuer: "https://auth.example.com", jwksUri: "https://auth.example.com/jwks.json"}]
  authorization:
    defaultDeny: true
    rules:
    - name: frontend-to-backend
      selector: {matchLabels: {app: backend}}
      from: {serviceAccounts: [frontend/web]}
      to: {ports: [8080]}
    - name: anyone-to-my-service
      selector: {matchLabels: {app: my-service}}
      from: {namespaces: [shop, frontend]}
  networkPolicy:
    defaultDeny: [Ingress]
    ingress:
    - name: frontend-to-backend
      selector: {matchLabels: {app: backend}}
      from: [{namespaces: [frontend], podSelector: {matchLabels: {app: web}}}]
      ports: [{port: 8080}]
    - name: to-my-service
      selector: {matchLabels: {app: my-service}}
      from: [{namespaces: [shop, frontend]}]
`

func renderSeed(t testing.TB) []*unstructured.Unstructured {
	t.Helper()
	p := &v1alpha1.MeshSecurityProfile{}
	if err := yaml.Unmarshal([]byte(seedProfile), p); err != nil {
		t.Fatal(err)
	}
	res, err := render.Render(p, render.DefaultOptions())
	if err != nil || len(res.Unsupported) > 0 {
		t.Fatalf("render: %v %v", err, res.Unsupported)
	}
	return res.Objects
}

func TestExpectationsOfTheIssueAgainstTheRenderedProfile(t *testing.T) {
	objs := renderSeed(t)
	web := map[string]string{"app": "web"}
	cases := []struct {
		name     string
		x        Expectation
		decision Decision
		met      bool
	}{
		{"frontend's web pods reach the backend on 8080",
			Expectation{Name: "frontend-to-backend", From: ExpectationFrom{ServiceAccount: "frontend/web", PodLabels: web},
				To: ExpectationTo{PodLabels: map[string]string{"app": "backend"}, Port: 8080}, Want: Allowed}, Allowed, true},
		{"the same service account on another port is denied",
			Expectation{Name: "backend-9090", From: ExpectationFrom{ServiceAccount: "frontend/web", PodLabels: web},
				To: ExpectationTo{PodLabels: map[string]string{"app": "backend"}, Port: 9090}, Want: Denied}, Denied, true},
		{"another namespace's pods do not reach the backend",
			Expectation{Name: "others-to-backend", From: ExpectationFrom{Namespace: "other", PodLabels: web},
				To: ExpectationTo{PodLabels: map[string]string{"app": "backend"}, Port: 8080}, Want: Denied}, Denied, true},
		{"an outside address does not reach the backend",
			Expectation{Name: "outside-to-backend", From: ExpectationFrom{IPBlock: "203.0.113.0/24"},
				To: ExpectationTo{PodLabels: map[string]string{"app": "backend"}, Port: 8080}, Want: Denied}, Denied, true},
		{"a request without a JWT to my-service is denied",
			Expectation{Name: "no-jwt", From: ExpectationFrom{ServiceAccount: "frontend/web", PodLabels: web},
				To: ExpectationTo{PodLabels: map[string]string{"app": "my-service"}, Port: 8080, Method: "GET", Path: "/"}, Want: Denied}, Denied, true},
		{"an expectation that is wrong is reported as not met",
			Expectation{Name: "wrong", From: ExpectationFrom{Namespace: "other", PodLabels: web},
				To: ExpectationTo{PodLabels: map[string]string{"app": "backend"}, Port: 8080}, Want: Allowed}, Denied, false},
		{"a service account without labels is undetermined when a NetworkPolicy peer selects pods by label, so never met",
			Expectation{Name: "no-labels", From: ExpectationFrom{ServiceAccount: "frontend/web"},
				To: ExpectationTo{PodLabels: map[string]string{"app": "backend"}, Port: 8080}, Want: Allowed}, Unknown, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := EvaluateExpectation(objs, "shop", tc.x, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got.Result.Decision != tc.decision || got.Met != tc.met || got.Name != tc.x.Name {
				t.Fatalf("got %s met=%v, want %s met=%v: %+v", got.Result.Decision, got.Met, tc.decision, tc.met, got.Result.Layers)
			}
		})
	}
}

func TestMalformedExpectationsAreErrorsNamingTheField(t *testing.T) {
	cases := map[string]struct {
		x     Expectation
		field string
	}{
		"two sources":          {Expectation{From: ExpectationFrom{ServiceAccount: "a/b", IPBlock: "1.2.3.4"}, To: ExpectationTo{Port: 80}, Want: Allowed}, "from"},
		"no source":            {Expectation{To: ExpectationTo{Port: 80}, Want: Allowed}, "from"},
		"service account form": {Expectation{From: ExpectationFrom{ServiceAccount: "web"}, To: ExpectationTo{Port: 80}, Want: Allowed}, "from.serviceAccount"},
		"bad ipBlock":          {Expectation{From: ExpectationFrom{IPBlock: "10.0.0.0/99"}, To: ExpectationTo{Port: 80}, Want: Allowed}, "from.ipBlock"},
		"bad want":             {Expectation{From: ExpectationFrom{Namespace: "a"}, To: ExpectationTo{Port: 80}, Want: "Maybe"}, "want"},
		"no port":              {Expectation{From: ExpectationFrom{Namespace: "a"}, Want: Denied}, "to.port"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := EvaluateExpectation(nil, "shop", tc.x, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.field+":") {
				t.Fatalf("got %v, want an error naming %s", err, tc.field)
			}
		})
	}
}
