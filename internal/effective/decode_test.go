package effective

import (
	"testing"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// Source fields of Istio's AuthorizationPolicy reference
// (https://istio.io/latest/docs/reference/config/security/authorization-policy/#Source) that a
// hand-written decoding can drop: a foreign ALLOW with only serviceAccounts or only trustDomains
// admits those peers, and is described by them.
func TestAuthorizationPolicySourceFields(t *testing.T) {
	runFindCases(t, []findCase{
		{
			name:    "a foreign ALLOW with only serviceAccounts is reported with its service accounts",
			profile: profile(withAuthorization(true)),
			objects: `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: sa-only}
spec: {rules: [{from: [{source: {serviceAccounts: [frontend/web]}}]}]}`,
			want: []v1alpha1.ExternalPolicy{ap("sa-only", "authorization.defaultDeny: allows service accounts frontend/web on all workloads")},
		},
		{
			name:    "a foreign ALLOW with only trustDomains is reported with its trust domains",
			profile: profile(withAuthorization(true)),
			objects: `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: td-only}
spec: {rules: [{from: [{source: {trustDomains: [partner.example]}}]}]}`,
			want: []v1alpha1.ExternalPolicy{ap("td-only", "authorization.defaultDeny: allows trust domains partner.example on all workloads")},
		},
		{
			name:    "a foreign ALLOW with only serviceAccounts on the workloads of a profile Allow rule widens that rule",
			profile: profile(withAuthorization(false, webReadsAPI)),
			objects: `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: sa-only}
spec:
  selector: {matchLabels: {app: api}}
  rules: [{from: [{source: {serviceAccounts: [ops/bot]}}]}]`,
			want: []v1alpha1.ExternalPolicy{ap("sa-only", "authorization.rules[web-reads-api]: allows service accounts ops/bot on pods app=api")},
		},
	})
}

// A foreign object with a field meshguard does not know (a newer mesh version's) may weaken the
// profile in a way meshguard cannot judge: it is reported, with the field, never ignored.
func TestNotUnderstoodObjectsAreReported(t *testing.T) {
	runFindCases(t, []findCase{
		{
			name:    "an AuthorizationPolicy with an unknown source field",
			profile: profile(withAuthorization(false)),
			objects: `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: future}
spec: {rules: [{from: [{source: {serviceIdentities: [x]}}]}]}`,
			want: []v1alpha1.ExternalPolicy{ap("future", `authorization: may weaken the profile: field spec.rules[0].from[0].source.serviceIdentities is not understood: unknown field "serviceIdentities"`)},
		},
		{
			name:    "a PeerAuthentication with an unknown field",
			profile: profile(),
			objects: `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: future}
spec: {mtls: {mode: STRICT, minVersion: TLS1_3}}`,
			want: []v1alpha1.ExternalPolicy{pa("future", `mtls: may weaken the profile: field spec.mtls.minVersion is not understood: unknown field "minVersion"`)},
		},
		{
			name:    "a PeerAuthentication with a mode Istio does not have",
			profile: profile(),
			objects: `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: lax}
spec: {mtls: {mode: OPTIONAL}}`,
			want: []v1alpha1.ExternalPolicy{pa("lax", `mtls: may weaken the profile: field spec.mtls.mode is not understood: invalid value for enum field mode: "OPTIONAL"`)},
		},
		{
			name:    "a RequestAuthentication with an unknown field, under requireToken",
			profile: profile(withRequireToken()),
			objects: `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: future}
spec: {jwtRules: [{issuer: https://auth.example.com, audience: x}]}`,
			want: []v1alpha1.ExternalPolicy{ra("future", `requestAuthentication: may weaken the profile: field spec.jwtRules[0].audience is not understood: unknown field "audience"`)},
		},
		{
			name:    "a Linkerd AuthorizationPolicy with an unknown field",
			profile: linkerdWebReadsAPI(false),
			objects: `
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: future}
spec:
  targetRef: {kind: Namespace, name: shop}
  requiredAuthenticationRefs: []
  requiredAuthorizationRefs: []`,
			want: []v1alpha1.ExternalPolicy{lk("AuthorizationPolicy", "future", `authorization: may weaken the profile: field spec.requiredAuthorizationRefs is not understood: unknown field "requiredAuthorizationRefs"`)},
		},
		{
			name:    "a Linkerd Server with an unknown field",
			profile: linkerdWebReadsAPI(false),
			objects: `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: future}
spec: {podSelector: {matchLabels: {app: api}}, port: 8080, accessPolicyV2: all-unauthenticated}`,
			want: []v1alpha1.ExternalPolicy{lk("Server", "future", `Servers of the profile: may weaken the profile: field spec.accessPolicyV2 is not understood: unknown field "accessPolicyV2"`)},
		},
	})
}
