package expectations

import (
	"regexp"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/render"
)

// seed is the example, with its expectations: frontend → backend on 8080 allowed,
// anything else to the backend denied, a request without a JWT to app: my-service denied.
const seed = `
metadata: {name: shop, namespace: shop}
spec:
  mesh: Istio
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
  expectations:
  - name: frontend-to-backend
    from: {serviceAccount: frontend/web, podLabels: {app: web}}
    to: {podLabels: {app: backend}, port: 8080}
    want: Allowed
  - name: frontend-to-backend-9090
    from: {serviceAccount: frontend/web, podLabels: {app: web}}
    to: {podLabels: {app: backend}, port: 9090}
    want: Denied
  - name: others-to-backend
    from: {namespace: other, podLabels: {app: web}}
    to: {podLabels: {app: backend}, port: 8080}
    want: Denied
  - name: outside-to-backend
    from: {ipBlock: 203.0.113.0/24}
    to: {podLabels: {app: backend}, port: 8080}
    want: Denied
  - name: my-service-without-jwt
    from: {serviceAccount: frontend/web, podLabels: {app: web}}
    to: {podLabels: {app: my-service}, port: 8080, method: GET, path: /}
    want: Denied
`

func seedProfile(t *testing.T) *v1alpha1.MeshSecurityProfile {
	t.Helper()
	p := &v1alpha1.MeshSecurityProfile{}
	if err := yaml.UnmarshalStrict([]byte(seed), p); err != nil {
		t.Fatal(err)
	}
	return p
}

// rendered returns the profile's render and an Origin function that knows its objects.
func rendered(t *testing.T, p *v1alpha1.MeshSecurityProfile) ([]*unstructured.Unstructured, func(kind, ns, name string) string) {
	t.Helper()
	res, err := render.Render(p, render.DefaultOptions())
	if err != nil || len(res.Unsupported) > 0 {
		t.Fatalf("render: %v %v", err, res.Unsupported)
	}
	ours := map[string]bool{}
	for _, o := range res.Objects {
		ours[o.GetKind()+" "+o.GetNamespace()+"/"+o.GetName()] = true
	}
	return res.Objects, func(kind, ns, name string) string {
		if ours[kind+" "+ns+"/"+name] {
			return ""
		}
		return ForeignMark
	}
}

func object(t *testing.T, manifest string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(manifest), &u.Object); err != nil {
		t.Fatal(err)
	}
	return u
}

// openBackendAP is someone else's ALLOW policy letting namespace other reach the backend.
const openBackendAP = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: open-backend, namespace: shop}
spec:
  selector: {matchLabels: {app: backend}}
  rules: [{from: [{source: {namespaces: [other]}}]}]
`

// openBackendNP is someone else's NetworkPolicy letting every pod reach the backend.
const openBackendNP = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: open-backend, namespace: shop}
spec:
  podSelector: {matchLabels: {app: backend}}
  policyTypes: [Ingress]
  ingress: [{}]
`

func byName(results []v1alpha1.ExpectationStatus) map[string]v1alpha1.ExpectationStatus {
	m := map[string]v1alpha1.ExpectationStatus{}
	for _, r := range results {
		m[r.Name] = r
	}
	return m
}

func TestTheSeedExpectationsAreAllMetByTheProfilesOwnRender(t *testing.T) {
	g := NewWithT(t)
	p := seedProfile(t)
	objs, ours := rendered(t, p)
	results := Evaluate(p, objs, Options{Origin: ours})
	g.Expect(results).To(HaveLen(5))
	for i, r := range results {
		g.Expect(r.Name).To(Equal(p.Spec.Expectations[i].Name), "spec order")
		g.Expect(r.Met).To(BeTrue(), "%s: %+v", r.Name, r)
		g.Expect(r.DecidedBy).NotTo(ContainElement(HaveSuffix(ForeignMark)), r.Name)
	}
	got := byName(results)
	g.Expect(got["others-to-backend"].Layer).To(Equal("ingress NetworkPolicy"))
	g.Expect(got["others-to-backend"].DecidedBy).To(ConsistOf("NetworkPolicy shop/shop-default-deny", "NetworkPolicy shop/shop-ingress-frontend-to-backend"))
	g.Expect(got["others-to-backend"].Message).To(ContainSubstring("isolate the pod for ingress"))
	g.Expect(got["my-service-without-jwt"].Got).To(Equal(v1alpha1.DecisionDenied))
	g.Expect(got["my-service-without-jwt"].Layer).To(Equal("authorization"))
	g.Expect(got["my-service-without-jwt"].DecidedBy).To(ContainElement(HavePrefix("AuthorizationPolicy shop/shop-require-jwt")))

	status, reason, msg := Condition(results)
	g.Expect(status).To(Equal(metav1.ConditionTrue))
	g.Expect(reason).To(Equal(v1alpha1.ReasonExpectationsAllMet))
	g.Expect(msg).To(Equal("5 of 5 expectations met"))
}

func TestAForeignPolicyThatOpensAFlowExpectedDeniedIsNamedFirst(t *testing.T) {
	cases := []struct {
		name string
		// profile changes the seed; foreign are the other writers' objects.
		profile   func(*v1alpha1.MeshSecurityProfile)
		foreign   []string
		layer     string
		decidedBy string
	}{
		{"an AuthorizationPolicy allowing namespace other opens it when no NetworkPolicy stands in the way",
			func(p *v1alpha1.MeshSecurityProfile) { p.Spec.NetworkPolicy = nil },
			[]string{openBackendAP}, "authorization", "AuthorizationPolicy shop/open-backend[0] (foreign)"},
		{"a NetworkPolicy allowing every pod opens it when the mesh does not deny",
			func(p *v1alpha1.MeshSecurityProfile) { p.Spec.Authorization = nil },
			[]string{openBackendNP}, "ingress NetworkPolicy", "NetworkPolicy shop/open-backend[0] (foreign)"},
		{"both together open it through every layer of the full profile; the first layer with a foreign object is named",
			func(*v1alpha1.MeshSecurityProfile) {},
			[]string{openBackendAP, openBackendNP}, "ingress NetworkPolicy", "NetworkPolicy shop/open-backend[0] (foreign)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			p := seedProfile(t)
			tc.profile(p)
			objs, ours := rendered(t, p)
			for _, f := range tc.foreign {
				objs = append(objs, object(t, f))
			}
			r := byName(Evaluate(p, objs, Options{Origin: ours}))["others-to-backend"]
			g.Expect(r.Met).To(BeFalse())
			g.Expect(r.Got).To(Equal(v1alpha1.DecisionAllowed))
			g.Expect(r.Layer).To(Equal(tc.layer))
			g.Expect(r.DecidedBy).NotTo(BeEmpty())
			g.Expect(r.DecidedBy[0]).To(Equal(tc.decidedBy))

			status, reason, msg := Condition(Evaluate(p, objs, Options{Origin: ours}))
			g.Expect(status).To(Equal(metav1.ConditionFalse))
			g.Expect(reason).To(Equal(v1alpha1.ReasonExpectationNotMet))
			// The seed's first expectation expected Denied that the foreign object opens is named.
			g.Expect(msg).To(MatchRegexp(`^expectation [a-z0-9-]+ wants Denied, got Allowed \(decided by ` + regexp.QuoteMeta(tc.decidedBy)))
			g.Expect(msg).To(ContainSubstring("at the " + tc.layer + " layer"))
		})
	}
}

func TestAnUndeterminedAnswerNeverMeetsAnExpectation(t *testing.T) {
	g := NewWithT(t)
	p := seedProfile(t)
	// Without its pod labels the source may or may not be selected by the ingress rule's
	// podSelector: the engine does not guess.
	p.Spec.Expectations = []v1alpha1.Expectation{{Name: "web-without-labels",
		From: v1alpha1.ExpectationSource{ServiceAccount: "frontend/web"},
		To:   v1alpha1.ExpectationTarget{PodLabels: map[string]string{"app": "backend"}, Port: 8080}, Want: v1alpha1.ExpectAllowed}}
	objs, ours := rendered(t, p)
	results := Evaluate(p, objs, Options{Origin: ours})
	g.Expect(results).To(HaveLen(1))
	g.Expect(results[0].Got).To(Equal(v1alpha1.DecisionUnknown))
	g.Expect(results[0].Met).To(BeFalse())
	g.Expect(results[0].Layer).To(Equal("ingress NetworkPolicy"))
	status, reason, msg := Condition(results)
	g.Expect(status).To(Equal(metav1.ConditionUnknown))
	g.Expect(reason).To(Equal(v1alpha1.ReasonExpectationUndetermined))
	g.Expect(msg).To(ContainSubstring("expectation web-without-labels wants Allowed, but the answer is undetermined"))
}

func TestAnExpectationThatSlippedPastAdmissionIsUnknownAndSaysWhy(t *testing.T) {
	g := NewWithT(t)
	p := seedProfile(t)
	p.Spec.Expectations = []v1alpha1.Expectation{{Name: "two-sources",
		From: v1alpha1.ExpectationSource{Namespace: "a", IPBlock: "10.0.0.1"},
		To:   v1alpha1.ExpectationTarget{Port: 80}, Want: v1alpha1.ExpectDenied}}
	r := Evaluate(p, nil, Options{})
	g.Expect(r).To(HaveLen(1))
	g.Expect(r[0].Got).To(Equal(v1alpha1.DecisionUnknown))
	g.Expect(r[0].Met).To(BeFalse())
	g.Expect(r[0].Message).To(ContainSubstring("from: exactly one of"))
}

func TestConditionPicksTheFirstContradictedExpectationOverAnUndeterminedOne(t *testing.T) {
	met := v1alpha1.ExpectationStatus{Name: "a", Want: "Denied", Got: "Denied", Met: true}
	unknown := v1alpha1.ExpectationStatus{Name: "b", Want: "Denied", Got: "Unknown", Message: "egress NetworkPolicy: labels not given"}
	wrong1 := v1alpha1.ExpectationStatus{Name: "c", Want: "Denied", Got: "Allowed", Layer: "authorization", DecidedBy: []string{"AuthorizationPolicy shop/x[0] (foreign)"}, Message: "authorization: an ALLOW policy matches"}
	wrong2 := v1alpha1.ExpectationStatus{Name: "d", Want: "Allowed", Got: "Denied"}
	cases := []struct {
		name    string
		results []v1alpha1.ExpectationStatus
		status  metav1.ConditionStatus
		reason  string
		msg     string
	}{
		{"every expectation met is True", []v1alpha1.ExpectationStatus{met, met}, metav1.ConditionTrue, v1alpha1.ReasonExpectationsAllMet, "2 of 2 expectations met"},
		{"an undetermined answer alone is Unknown", []v1alpha1.ExpectationStatus{met, unknown}, metav1.ConditionUnknown, v1alpha1.ReasonExpectationUndetermined,
			"expectation b wants Denied, but the answer is undetermined (egress NetworkPolicy: labels not given); 1 of 2 expectations met"},
		{"a contradicted expectation is False even after an undetermined one", []v1alpha1.ExpectationStatus{unknown, wrong1, wrong2}, metav1.ConditionFalse, v1alpha1.ReasonExpectationNotMet,
			"expectation c wants Denied, got Allowed (decided by AuthorizationPolicy shop/x[0] (foreign) at the authorization layer: an ALLOW policy matches); 0 of 3 expectations met"},
		{"the first contradicted expectation is named", []v1alpha1.ExpectationStatus{wrong2, wrong1}, metav1.ConditionFalse, v1alpha1.ReasonExpectationNotMet,
			"expectation d wants Allowed, got Denied; 0 of 2 expectations met"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			s, r, m := Condition(tc.results)
			g.Expect([]string{string(s), r, m}).To(Equal([]string{string(tc.status), tc.reason, tc.msg}))
		})
	}
}

func TestSourceNamespacesAreTheOtherNamespacesExpectationsSendFrom(t *testing.T) {
	g := NewWithT(t)
	p := seedProfile(t)
	p.Spec.Expectations = append(p.Spec.Expectations, v1alpha1.Expectation{Name: "own",
		From: v1alpha1.ExpectationSource{Namespace: "shop"}, To: v1alpha1.ExpectationTarget{Port: 1}, Want: "Denied"})
	g.Expect(SourceNamespaces(p)).To(Equal([]string{"frontend", "other"}))
	g.Expect(strings.Join(SourceNamespaces(&v1alpha1.MeshSecurityProfile{}), ",")).To(BeEmpty())
}

// linkerdProfile admits frontend/web to app=api on 8080 (a Server, an AuthorizationPolicy and a
// MeshTLSAuthentication) under the all-authenticated default policy.
const linkerdProfile = `
metadata: {name: pay, namespace: payments}
spec:
  mesh: Linkerd
  mtls: {mode: Strict}
  authorization:
    defaultDeny: true
    rules:
    - name: web-to-api
      selector: {matchLabels: {app: api}}
      from: {serviceAccounts: [frontend/web]}
      to: {ports: [8080]}
  expectations:
  - name: web-to-api
    from: {serviceAccount: frontend/web}
    to: {podLabels: {app: api}, port: 8080}
    want: Allowed
  - name: other-to-api
    from: {serviceAccount: other/web}
    to: {podLabels: {app: api}, port: 8080}
    want: Denied
  - name: outside-to-api
    from: {ipBlock: 203.0.113.10}
    to: {podLabels: {app: api}, port: 8080}
    want: Denied
`

func TestALinkerdProfilesExpectationsAreAnsweredByLinkerdsLayers(t *testing.T) {
	g := NewWithT(t)
	p := &v1alpha1.MeshSecurityProfile{}
	g.Expect(yaml.UnmarshalStrict([]byte(linkerdProfile), p)).To(Succeed())
	res, err := render.Render(p, render.DefaultOptions())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Unsupported).To(BeEmpty())
	// The default inbound policy render sets goes on the Namespace, as the controller applies it.
	ns := &unstructured.Unstructured{}
	ns.SetAPIVersion("v1")
	ns.SetKind("Namespace")
	ns.SetName("payments")
	ns.SetAnnotations(res.NamespaceAnnotations)
	objs := append(res.Objects, ns)
	results := Evaluate(p, objs, Options{Origin: func(string, string, string) string { return "" }})
	g.Expect(results).To(HaveLen(3))
	for _, r := range results {
		g.Expect(r.Met).To(BeTrue(), "%+v", r)
	}
	got := byName(results)
	g.Expect(got["other-to-api"].Layer).To(Equal("authorization"))
	g.Expect(got["other-to-api"].DecidedBy).To(ContainElement(HavePrefix("Server payments/")))
}
