package effective

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"
	"testing"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

func ra(name, weakens string) v1alpha1.ExternalPolicy {
	return v1alpha1.ExternalPolicy{APIVersion: "security.istio.io/v1", Kind: "RequestAuthentication", Name: name, Weakens: weakens}
}

func withRequestPrincipalsRule(name string, principals ...string) profileOption {
	return func(p *v1alpha1.MeshSecurityProfile) {
		if p.Spec.Authorization == nil {
			p.Spec.Authorization = &v1alpha1.AuthorizationSpec{}
		}
		p.Spec.Authorization.Rules = append(p.Spec.Authorization.Rules, v1alpha1.AuthorizationRule{
			Name: name, Action: v1alpha1.ActionAllow,
			Selector: &v1alpha1.WorkloadSelector{MatchLabels: map[string]string{"app": "api"}},
			From:     &v1alpha1.RuleSource{RequestPrincipals: principals},
		})
	}
}

// Istio merges the jwtRules of every RequestAuthentication that applies to a workload, so a
// foreign issuer's tokens satisfy requireToken and matching requestPrincipals (issue 9, point 6).
func TestRequestAuthentication(t *testing.T) {
	runFindCases(t, []findCase{
		{
			name:    "a foreign issuer in the namespace satisfies requireToken and is reported",
			profile: profile(withRequireToken()),
			objects: `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: partner}
spec: {jwtRules: [{issuer: "https://partner.example.org"}]}`,
			want: []v1alpha1.ExternalPolicy{ra("partner", "requestAuthentication.requireToken: trusts tokens of https://partner.example.org")},
		},
		{
			name:    "a foreign issuer in the root namespace applies to every namespace and is reported",
			profile: profile(withRequireToken()),
			objects: `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: mesh-jwt, namespace: istio-system}
spec: {jwtRules: [{issuer: "https://idp.example.net"}]}`,
			want: []v1alpha1.ExternalPolicy{ra("istio-system/mesh-jwt", "requestAuthentication.requireToken: trusts tokens of https://idp.example.net")},
		},
		{
			name:    "the profile's own issuer with the same keys is not reported",
			profile: profile(withRequireToken()),
			objects: `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: same}
spec: {jwtRules: [{issuer: "https://auth.example.com"}]}`,
		},
		{
			name:    "the profile's own issuer with other keys is reported",
			profile: profile(withRequireToken()),
			objects: `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: spoof}
spec: {jwtRules: [{issuer: "https://auth.example.com", jwks: "{\"keys\":[]}"}]}`,
			want: []v1alpha1.ExternalPolicy{ra("spoof", "requestAuthentication.requireToken: trusts tokens of https://auth.example.com (other keys)")},
		},
		{
			name: "a foreign issuer for workloads requireToken does not cover is not reported",
			profile: profile(withRequireToken(), func(p *v1alpha1.MeshSecurityProfile) {
				p.Spec.RequestAuthentication.Selector = &v1alpha1.WorkloadSelector{MatchLabels: map[string]string{"app": "api"}}
			}),
			objects: `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: web}
spec: {selector: {matchLabels: {app: web}}, jwtRules: [{issuer: "https://partner.example.org"}]}`,
		},
		{
			name:    "a foreign issuer satisfies a rule admitting any token",
			profile: profile(withRequestPrincipalsRule("any-token", "*")),
			objects: `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: partner}
spec: {jwtRules: [{issuer: "https://partner.example.org"}]}`,
			want: []v1alpha1.ExternalPolicy{ra("partner", "authorization.rules[any-token].from.requestPrincipals: trusts tokens of https://partner.example.org")},
		},
		{
			name:    "a foreign issuer whose principals no rule pattern matches is not reported",
			profile: profile(withRequestPrincipalsRule("auth-only", "https://auth.example.com/*")),
			objects: `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: partner}
spec: {jwtRules: [{issuer: "https://partner.example.org"}]}`,
		},
		{
			name:    "a RequestAuthentication of a Linkerd profile is ignored",
			profile: profile(withMesh(v1alpha1.MeshLinkerd), withRequireToken()),
			objects: `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: partner}
spec: {jwtRules: [{issuer: "https://partner.example.org"}]}`,
		},
	})
}

func lk(kind, name, weakens string) v1alpha1.ExternalPolicy {
	v := "v1alpha1"
	if kind == "Server" {
		v = "v1beta3"
	}
	return v1alpha1.ExternalPolicy{APIVersion: "policy.linkerd.io/" + v, Kind: kind, Name: name, Weakens: weakens}
}

// linkerdWebReadsAPI lets frontend/web reach port 8080 of the pods app=api: the profile renders
// Server baseline-8080-wl-<hash> with accessPolicy deny.
func linkerdWebReadsAPI(defaultDeny bool) *v1alpha1.MeshSecurityProfile {
	rule := webReadsAPI
	rule.To = &v1alpha1.RuleTarget{Ports: []int32{8080}}
	return profile(withMesh(v1alpha1.MeshLinkerd), withAuthorization(defaultDeny, rule))
}

// Linkerd's foreign policy objects are judged like Istio's (issue 9, point 8).
func TestLinkerd(t *testing.T) {
	server := "baseline-8080-wl-" + labelsHashForTest(map[string]string{"app": "api"})
	runFindCases(t, []findCase{
		{
			name:    "an AuthorizationPolicy targeting the Namespace authorizes on the profile's Servers",
			profile: linkerdWebReadsAPI(false),
			objects: `
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: everyone}
spec:
  targetRef: {kind: Namespace, name: shop}
  requiredAuthenticationRefs: [{group: policy.linkerd.io, kind: MeshTLSAuthentication, name: any-meshed}]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {name: any-meshed}
spec: {identities: ["*"]}`,
			want: []v1alpha1.ExternalPolicy{
				lk("AuthorizationPolicy", "everyone", "authorization: authorizes MeshTLSAuthentication any-meshed (identities *) on every Server of the namespace"),
				lk("MeshTLSAuthentication", "any-meshed", "authorization: admits identities * through AuthorizationPolicy everyone on every Server of the namespace"),
			},
		},
		{
			name:    "an AuthorizationPolicy targeting one of the profile's Servers is reported",
			profile: linkerdWebReadsAPI(false),
			objects: `
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: office}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: ` + server + `}
  requiredAuthenticationRefs: [{group: policy.linkerd.io, kind: NetworkAuthentication, name: office}]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: NetworkAuthentication
metadata: {name: office}
spec: {networks: [{cidr: 0.0.0.0/0}]}`,
			want: []v1alpha1.ExternalPolicy{
				lk("AuthorizationPolicy", "office", "authorization: authorizes NetworkAuthentication office (networks 0.0.0.0/0) on the profile's Server "+server),
				lk("NetworkAuthentication", "office", "authorization: admits networks 0.0.0.0/0 through AuthorizationPolicy office on the profile's Server "+server),
			},
		},
		{
			name:    "an AuthorizationPolicy on a foreign HTTPRoute attached to one of the profile's Servers is reported",
			profile: linkerdWebReadsAPI(false),
			objects: `
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: side-door}
spec: {parentRefs: [{group: policy.linkerd.io, kind: Server, name: ` + server + `}]}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: side-door}
spec:
  targetRef: {group: policy.linkerd.io, kind: HTTPRoute, name: side-door}`,
			want: []v1alpha1.ExternalPolicy{lk("AuthorizationPolicy", "side-door", "authorization: authorizes any client on HTTPRoute side-door of the profile's Server "+server)},
		},
		{
			name:    "an AuthorizationPolicy on a Server of its own is reported under defaultDeny only",
			profile: linkerdWebReadsAPI(true),
			objects: `
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: metrics}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: metrics}
  requiredAuthenticationRefs: []`,
			want: []v1alpha1.ExternalPolicy{lk("AuthorizationPolicy", "metrics", "authorization.defaultDeny: authorizes any client on Server metrics")},
		},
		{
			name:    "an AuthorizationPolicy on a Server of its own is not reported without defaultDeny",
			profile: linkerdWebReadsAPI(false),
			objects: `
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: metrics}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: metrics}`,
		},
		{
			// Competing Servers are reported by linkerdServer (linkerd_test.go); this one covers
			// only the profile's pods and port, so the namespace default is not its concern.
			name:    "a foreign Server that covers only a profile Server's pod port is not judged against the namespace default",
			profile: linkerdWebReadsAPI(true),
			objects: `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: api-canary}
spec: {podSelector: {matchLabels: {app: api, track: canary}}, port: 8080, accessPolicy: all-authenticated}`,
			want: []v1alpha1.ExternalPolicy{lk("Server", "api-canary", "Server "+server+" (port 8080 of pods app=api): Linkerd applies one Server per pod port, and this one (port 8080, accessPolicy all-authenticated) may select the same; its policies would apply instead of the profile's")},
		},
		{
			name:    "a Server of ExternalWorkloads selects no pod",
			profile: linkerdWebReadsAPI(true),
			objects: `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: vm}
spec: {externalWorkloadSelector: {matchLabels: {app: vm}}, port: 9990, accessPolicy: all-unauthenticated}`,
		},
		{
			name:    "a foreign Server on other pods of the same port is not competing",
			profile: linkerdWebReadsAPI(false),
			objects: `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: web}
spec: {podSelector: {matchLabels: {app: web}}, port: 8080, accessPolicy: all-authenticated}`,
		},
		{
			name:    "a foreign Server that opens a port the namespace default denies is reported",
			profile: linkerdWebReadsAPI(true),
			objects: `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: admin}
spec: {podSelector: {matchLabels: {app: admin}}, port: 9990, accessPolicy: all-authenticated}`,
			want: []v1alpha1.ExternalPolicy{lk("Server", "admin", "authorization.defaultDeny: accessPolicy all-authenticated on port 9990 of pods app=admin, where the namespace default is deny")},
		},
		{
			name:    "a foreign Server that is as strict as the namespace default is not reported",
			profile: profile(withMesh(v1alpha1.MeshLinkerd)),
			objects: `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: admin}
spec: {podSelector: {matchLabels: {app: admin}}, port: 9990, accessPolicy: cluster-authenticated}`,
		},
		{
			name:    "a foreign Server with plaintext access under Strict mTLS is reported",
			profile: profile(withMesh(v1alpha1.MeshLinkerd)),
			objects: `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: admin}
spec: {podSelector: {}, port: 9990, accessPolicy: all-unauthenticated}`,
			want: []v1alpha1.ExternalPolicy{lk("Server", "admin", "mtls.mode Strict: accessPolicy all-unauthenticated on port 9990 of pods (all), where the namespace default is all-authenticated")},
		},
		{
			name:    "Linkerd objects are ignored for an Istio profile",
			profile: profile(withAuthorization(true)),
			objects: `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: admin}
spec: {podSelector: {}, port: 9990, accessPolicy: all-unauthenticated}`,
		},
	})
}

// labelsHashForTest is render's selector hash in Server names.
func labelsHashForTest(l map[string]string) string {
	pairs := make([]string, 0, len(l))
	for k, v := range l {
		pairs = append(pairs, k+"="+v)
	}
	sort.Strings(pairs)
	sum := sha256.Sum256([]byte(strings.Join(pairs, ",")))
	return hex.EncodeToString(sum[:])[:8]
}
