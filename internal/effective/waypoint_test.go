package effective

import (
	"testing"

	. "github.com/onsi/gomega"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/dataplane"
	"github.com/meshguard/meshguard/internal/render"
)

// waypointFacts: shop is ambient; the Service api (pods app=api) is served by the waypoint
// "waypoint"; the Service batch (pods app=batch) has none.
func waypointFacts() *dataplane.Facts {
	enabled := map[string]string{dataplane.AnnotationRedirection: dataplane.RedirectionEnabled}
	return &dataplane.Facts{
		Namespace:       testNamespace,
		NamespaceLabels: map[string]string{dataplane.LabelDataplaneMode: dataplane.DataplaneModeAmbient},
		Pods: []dataplane.Pod{
			{Name: "api-0", Labels: map[string]string{"app": "api"}, Annotations: enabled},
			{Name: "batch-0", Labels: map[string]string{"app": "batch"}, Annotations: enabled},
		},
		Services: []dataplane.Service{
			{Name: "api", Labels: map[string]string{dataplane.LabelUseWaypoint: "waypoint"}, Selector: map[string]string{"app": "api"}},
			{Name: "batch", Selector: map[string]string{"app": "batch"}},
		},
		Gateways: []dataplane.Gateway{{Namespace: testNamespace, Name: "waypoint", ClassName: dataplane.WaypointGatewayClass}},
	}
}

// findAmbient calls Find as the reconciler does for an ambient namespace: the profile rendered
// with the namespace's data plane facts, and the same facts in the options.
func findAmbient(t *testing.T, p *v1alpha1.MeshSecurityProfile, docs string, facts *dataplane.Facts) []v1alpha1.ExternalPolicy {
	t.Helper()
	ro := render.DefaultOptions()
	ro.DataPlane, ro.IstioSourceServiceAccounts = facts, true
	res, err := render.Render(p, ro)
	if err != nil {
		t.Fatal(err)
	}
	return Find(p, Desired{Objects: res.Objects, NamespaceAnnotations: res.NamespaceAnnotations}, objects(t, docs), Options{DataPlane: facts})
}

// webCallsAPI lets frontend/web call the pods app=api on 8080 (L4: ztunnel and the waypoint).
var webCallsAPI = v1alpha1.AuthorizationRule{
	Name:     "web-calls-api",
	Action:   v1alpha1.ActionAllow,
	Selector: &v1alpha1.WorkloadSelector{MatchLabels: map[string]string{"app": "api"}},
	From:     &v1alpha1.RuleSource{ServiceAccounts: []v1alpha1.ServiceAccountRef{"frontend/web"}},
	To:       &v1alpha1.RuleTarget{Ports: []int32{8080}},
}

// TestWaypointTargetRefs: a foreign policy bound with targetRefs is judged against the pods behind
// the waypoint it binds to (istio.io docs/ambient/usage/l4-policy; research §1.3), as a selector
// policy is against the pods it selects.
func TestWaypointTargetRefs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		profile *v1alpha1.MeshSecurityProfile
		docs    string
		facts   *dataplane.Facts
		want    []v1alpha1.ExternalPolicy
	}{
		{
			name:    "an ALLOW bound to the Service a waypoint serves widens the Allow rule of its pods, without default-deny",
			profile: profile(withAuthorization(false, webCallsAPI)),
			docs: `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: open-api}
spec: {targetRefs: [{kind: Service, name: api}], rules: [{from: [{source: {namespaces: [intruder]}}]}]}`,
			facts: waypointFacts(),
			want:  []v1alpha1.ExternalPolicy{ap("open-api", "authorization.rules[web-calls-api]: allows namespaces intruder on Service api (through the waypoint)")},
		},
		{
			name:    "an ALLOW bound to the waypoint Gateway widens the rules of every pod behind it",
			profile: profile(withAuthorization(false, webCallsAPI)),
			docs: `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: open-gw}
spec: {targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: waypoint}], rules: [{}]}`,
			facts: waypointFacts(),
			want:  []v1alpha1.ExternalPolicy{ap("open-gw", "authorization.rules[web-calls-api]: allows any source on Gateway waypoint (through the waypoint)")},
		},
		{
			name:    "an ALLOW bound to a Service no waypoint serves binds nothing",
			profile: profile(withAuthorization(false, webCallsAPI)),
			docs: `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: open-batch}
spec: {targetRefs: [{kind: Service, name: batch}], rules: [{}]}`,
			facts: waypointFacts(),
		},
		{
			name:    "an ALLOW bound to the waypoint of pods no Allow rule selects widens nothing",
			profile: profile(withAuthorization(false, v1alpha1.AuthorizationRule{Name: "batch-only", Action: v1alpha1.ActionAllow, Selector: &v1alpha1.WorkloadSelector{MatchLabels: map[string]string{"app": "batch"}}, From: &v1alpha1.RuleSource{Namespaces: []string{"cron"}}})),
			docs: `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: open-api}
spec: {targetRefs: [{kind: Service, name: api}], rules: [{}]}`,
			facts: waypointFacts(),
		},
		{
			name:    "a foreign copy of the waypoint policy the profile renders is not reported",
			profile: profile(withAuthorization(false, webCallsAPI)),
			docs: `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: copy}
spec:
  targetRefs: [{kind: Service, name: api}]
  rules: [{from: [{source: {serviceAccounts: [frontend/web]}}], to: [{operation: {ports: ["8080"]}}]}]`,
			facts: waypointFacts(),
		},
		{
			name:    "with default-deny any targetRefs ALLOW is reported, as before",
			profile: profile(withAuthorization(true, webCallsAPI)),
			docs: `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: open-batch}
spec: {targetRefs: [{kind: Service, name: batch}], rules: [{}]}`,
			facts: waypointFacts(),
			want:  []v1alpha1.ExternalPolicy{ap("open-batch", "authorization.defaultDeny: allows any source on Service batch")},
		},
		{
			name:    "a RequestAuthentication bound to the waypoint's Service trusting another issuer weakens requireToken",
			profile: profile(withRequireToken(), withRequireTokenSelector("app=api")),
			docs: `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: other-idp}
spec: {targetRefs: [{kind: Service, name: api}], jwtRules: [{issuer: https://other.example.com}]}`,
			facts: waypointFacts(),
			want:  []v1alpha1.ExternalPolicy{ra("other-idp", "requestAuthentication.requireToken: trusts tokens of https://other.example.com")},
		},
		{
			name:    "a RequestAuthentication bound to a Service no waypoint serves weakens nothing",
			profile: profile(withRequireToken(), withRequireTokenSelector("app=api")),
			docs: `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: other-idp}
spec: {targetRefs: [{kind: Service, name: batch}], jwtRules: [{issuer: https://other.example.com}]}`,
			facts: waypointFacts(),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(findAmbient(t, tc.profile, tc.docs, tc.facts)).To(Equal(tc.want))
		})
	}
}

// TestWaypointTargetRefsWithoutFacts: without data plane facts a targetRefs RequestAuthentication is
// still reported (fail closed), and a targetRefs ALLOW without default-deny is not (as before).
func TestWaypointTargetRefsWithoutFacts(t *testing.T) {
	g := NewWithT(t)
	p := profile(withRequireToken(), withRequireTokenSelector("app=api"))
	got := findRendered(t, p, objects(t, `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: other-idp}
spec: {targetRefs: [{kind: Service, name: batch}], jwtRules: [{issuer: https://other.example.com}]}`), Options{})
	g.Expect(got).To(Equal([]v1alpha1.ExternalPolicy{ra("other-idp", "requestAuthentication.requireToken: trusts tokens of https://other.example.com")}))

	p = profile(withAuthorization(false, webCallsAPI))
	g.Expect(findRendered(t, p, objects(t, `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: open-api}
spec: {targetRefs: [{kind: Service, name: api}], rules: [{}]}`), Options{})).To(BeEmpty())
}

func withRequireTokenSelector(labels string) profileOption {
	return func(p *v1alpha1.MeshSecurityProfile) {
		p.Spec.RequestAuthentication.Selector = &v1alpha1.WorkloadSelector{MatchLabels: labelMap(labels)}
	}
}
