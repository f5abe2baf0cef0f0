package effective

import (
	"testing"

	. "github.com/onsi/gomega"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// linkerdAPIOn8080 is a Linkerd profile whose rule renders a Server for port 8080 of app=api.
func linkerdAPIOn8080() *v1alpha1.MeshSecurityProfile {
	rule := webReadsAPI
	rule.To = &v1alpha1.RuleTarget{Ports: []int32{8080}}
	return profile(withMesh(v1alpha1.MeshLinkerd), withMTLS(v1alpha1.MTLSStrict), withAuthorization(false, rule))
}

func TestLinkerdServers(t *testing.T) {
	tests := []struct {
		name    string
		profile *v1alpha1.MeshSecurityProfile
		server  string // the foreign Server's spec
		want    string // a substring of what it weakens; "" when it is not reported
	}{
		{name: "a Server on the same pods and port competes with the profile's, whatever its accessPolicy",
			profile: linkerdAPIOn8080(), server: `{podSelector: {matchLabels: {app: api}}, port: 8080, accessPolicy: all-unauthenticated}`,
			want: "(port 8080 of pods app=api): Linkerd applies one Server per pod port, and this one (port 8080, accessPolicy all-unauthenticated) may select the same"},
		{name: "a stricter one competes as well: the policies targeting it would apply instead",
			profile: linkerdAPIOn8080(), server: `{podSelector: {matchLabels: {app: api}}, port: 8080}`, want: "accessPolicy deny"},
		{name: "a Server on every pod selects the profile's pods too",
			profile: linkerdAPIOn8080(), server: `{podSelector: {}, port: 8080, accessPolicy: all-authenticated}`, want: "port 8080 of pods app=api"},
		{name: "a narrower selector selects some of the same pods",
			profile: linkerdAPIOn8080(), server: `{podSelector: {matchLabels: {app: api, tier: canary}}, port: 8080}`, want: "port 8080 of pods app=api"},
		{name: "a named port may be the same port (fail closed)",
			profile: linkerdAPIOn8080(), server: `{podSelector: {matchLabels: {app: api}}, port: http}`, want: "(port http, accessPolicy deny)"},
		{name: "match expressions may select the same pods (fail closed)",
			profile: linkerdAPIOn8080(), server: `{podSelector: {matchExpressions: [{key: app, operator: In, values: [web]}]}, port: 8080}`, want: "port 8080 of pods app=api"},
		// Not competing; with the namespace default's accessPolicy (Strict: all-authenticated), a
		// looser one there is reported against the namespace default (linkerdpolicy.go).
		{name: "another port does not compete",
			profile: linkerdAPIOn8080(), server: `{podSelector: {matchLabels: {app: api}}, port: 9090, accessPolicy: all-authenticated}`},
		{name: "other pods do not compete",
			profile: linkerdAPIOn8080(), server: `{podSelector: {matchLabels: {app: web}}, port: 8080, accessPolicy: all-authenticated}`},
		{name: "a Server of ExternalWorkloads selects no pod",
			profile: linkerdAPIOn8080(), server: `{externalWorkloadSelector: {matchLabels: {app: api}}, port: 8080, accessPolicy: all-unauthenticated}`},
		{name: "an Istio profile ignores Linkerd Servers",
			profile: profile(withMTLS(v1alpha1.MTLSStrict), withAuthorization(false, webReadsAPI)),
			server:  `{podSelector: {matchLabels: {app: api}}, port: 8080, accessPolicy: all-unauthenticated}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got := findRendered(t, tt.profile, objects(t, "apiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata: {name: legacy}\nspec: "+tt.server+"\n"), Options{})
			if tt.want == "" {
				g.Expect(got).To(BeEmpty())
				return
			}
			g.Expect(got).To(HaveLen(1))
			g.Expect(got[0].Kind).To(Equal("Server"))
			g.Expect(got[0].Name).To(Equal("legacy"))
			g.Expect(got[0].Weakens).To(HavePrefix("Server baseline-8080-wl-"))
			g.Expect(got[0].Weakens).To(ContainSubstring(tt.want))
		})
	}
}

// The namespace default a foreign Server is judged against is the one render wrote on the
// Namespace (Desired.NamespaceAnnotations), never derived again from the spec: in Shadow render
// writes audit where defaultDeny would deny, as it does for the profile's own Servers, and a
// Server admitting what audit admits weakens nothing that is enforced. Without render's decision
// (the profile did not render) the default is taken as deny (fail closed).
func TestLinkerdNamespaceDefaultIsRenders(t *testing.T) {
	g := NewWithT(t)
	server := objects(t, "apiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata: {name: open}\nspec: {podSelector: {matchLabels: {app: web}}, port: 9090, accessPolicy: all-unauthenticated}\n")
	p := profile(withMesh(v1alpha1.MeshLinkerd), withMTLS(v1alpha1.MTLSPermissive), withAuthorization(true))

	got := findRendered(t, p, server, Options{})
	g.Expect(got).To(HaveLen(1))
	g.Expect(got[0].Weakens).To(Equal("authorization.defaultDeny: accessPolicy all-unauthenticated on port 9090 of pods app=web, where the namespace default is deny"))

	p.Spec.Authorization.Enforcement = v1alpha1.RuleEnforcementShadow
	g.Expect(findRendered(t, p, server, Options{})).To(BeEmpty(), "in Shadow the namespace default is audit")

	got = Find(p, Desired{}, server, Options{})
	g.Expect(got).To(HaveLen(1), "without render's decision the default is taken as deny")
	g.Expect(got[0].Weakens).To(ContainSubstring("where the namespace default is deny"))
}
