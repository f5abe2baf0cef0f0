package meshapi

import (
	"errors"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func obj(t *testing.T, y string) *unstructured.Unstructured {
	t.Helper()
	m := map[string]any{}
	if err := yaml.Unmarshal([]byte(y), &m); err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: m}
}

// Every field of the CRD schemas the Linkerd types follow (charts/linkerd-crds at linkerd2
// eadc1ac) decodes; a field they do not have is an error naming its path.
func TestDecodeIsStrict(t *testing.T) {
	cases := []struct {
		name   string
		decode func(*unstructured.Unstructured) error
		spec   string
		field  string // "" when it decodes
	}{
		{"a Server with every v1beta3 field decodes", func(u *unstructured.Unstructured) error { _, err := Server(u); return err },
			`{podSelector: {matchLabels: {a: b}, matchExpressions: [{key: k, operator: In, values: [v]}]}, port: http, proxyProtocol: HTTP/2, accessPolicy: deny}`, ""},
		{"a Server selecting ExternalWorkloads decodes", func(u *unstructured.Unstructured) error { _, err := Server(u); return err },
			`{externalWorkloadSelector: {matchLabels: {a: b}}, port: 80}`, ""},
		{"an AuthorizationPolicy with every v1alpha1 field decodes", func(u *unstructured.Unstructured) error { _, err := LinkerdAuthorizationPolicy(u); return err },
			`{targetRef: {group: policy.linkerd.io, kind: Server, name: s}, requiredAuthenticationRefs: [{group: policy.linkerd.io, kind: MeshTLSAuthentication, name: m, namespace: ns}]}`, ""},
		{"a targetRef has no namespace", func(u *unstructured.Unstructured) error { _, err := LinkerdAuthorizationPolicy(u); return err },
			`{targetRef: {kind: Server, name: s, namespace: ns}, requiredAuthenticationRefs: []}`, "spec.targetRef.namespace"},
		{"a MeshTLSAuthentication decodes", func(u *unstructured.Unstructured) error { _, err := MeshTLSAuthentication(u); return err },
			`{identities: ["*"], identityRefs: [{kind: ServiceAccount, name: a, namespace: b}]}`, ""},
		{"a NetworkAuthentication with an unknown field in a network", func(u *unstructured.Unstructured) error { _, err := NetworkAuthentication(u); return err },
			`{networks: [{cidr: 10.0.0.0/8, exceptions: [10.1.0.0/16]}]}`, "spec.networks[0].exceptions"},
		{"an HTTPRoute with every v1beta3 field decodes", func(u *unstructured.Unstructured) error { _, err := HTTPRoute(u); return err },
			`{parentRefs: [{group: policy.linkerd.io, kind: Server, name: s, namespace: ns, port: 80, sectionName: x}], hostnames: [a.example],
			  rules: [{matches: [{path: {type: PathPrefix, value: /}, method: GET, headers: [{type: Exact, name: h, value: v}], queryParams: [{name: q, value: v}]}],
			           filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: a, value: b}]}}], backendRefs: [{name: b, port: 80}], timeouts: {request: 1s}}]}`, ""},
		{"an Istio AuthorizationPolicy with serviceAccounts and trustDomains decodes", func(u *unstructured.Unstructured) error {
			ap, err := AuthorizationPolicy(u)
			if err == nil && (len(ap.GetRules()[0].GetFrom()[0].GetSource().GetServiceAccounts()) != 1 || len(ap.GetRules()[0].GetFrom()[0].GetSource().GetTrustDomains()) != 1) {
				return errors.New("serviceAccounts or trustDomains dropped")
			}
			return err
		}, `{action: DENY, rules: [{from: [{source: {serviceAccounts: [a/b], trustDomains: [td]}}]}]}`, ""},
		{"an Istio AuthorizationPolicy with an unknown operation field", func(u *unstructured.Unstructured) error { _, err := AuthorizationPolicy(u); return err },
			`{rules: [{to: [{operation: {paths: [/], schemes: [https]}}]}]}`, "spec.rules[0].to[0].operation.schemes"},
		{"an Istio PeerAuthentication with a port-level mode decodes", func(u *unstructured.Unstructured) error {
			p, err := PeerAuthentication(u)
			if err == nil && p.GetPortLevelMtls()[8080].GetMode().String() != "DISABLE" {
				return errors.New("portLevelMtls 8080 not read")
			}
			return err
		}, `{selector: {matchLabels: {a: b}}, mtls: {mode: STRICT}, portLevelMtls: {"8080": {mode: DISABLE}}}`, ""},
		{"an Istio RequestAuthentication with an unknown jwtRule field", func(u *unstructured.Unstructured) error { _, err := RequestAuthentication(u); return err },
			`{jwtRules: [{issuer: x, jwksUrl: y}]}`, "spec.jwtRules[0].jwksUrl"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.decode(obj(t, "spec: "+tc.spec))
			var nu *NotUnderstoodError
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("want it decoded, got %v", err)
			case tc.field != "" && !errors.As(err, &nu):
				t.Fatalf("want a NotUnderstoodError naming %s, got %v", tc.field, err)
			case tc.field != "" && nu.Field != tc.field:
				t.Fatalf("field: got %s, want %s (%v)", nu.Field, tc.field, err)
			}
		})
	}
}
