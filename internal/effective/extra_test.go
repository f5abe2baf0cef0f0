package effective

import (
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/render"
)

func renderObjects(t *testing.T, p *v1alpha1.MeshSecurityProfile) []*unstructured.Unstructured {
	t.Helper()
	res, err := render.Render(p, render.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	return res.Objects
}

// clusterScoped clears the namespace the fixture helper gives every object.
func clusterScoped(t *testing.T, doc string) []*unstructured.Unstructured {
	objs := objects(t, doc)
	for _, o := range objs {
		o.SetNamespace("")
	}
	return objs
}

func TestAdminNetworkPolicies(t *testing.T) {
	ingressDeny := withNetworkPolicy(`{defaultDeny: [Ingress]}`)
	bothDeny := withNetworkPolicy(`{defaultDeny: [Ingress, Egress]}`)
	shopLabels := map[string]string{"kubernetes.io/metadata.name": testNamespace, "team": "shop"}
	tests := []struct {
		name     string
		profile  *v1alpha1.MeshSecurityProfile
		doc      string
		nsLabels map[string]string
		want     []string // substrings of each row's weakens, in order; nil: not reported
	}{
		{name: "an AdminNetworkPolicy Allow on every namespace opens the profile's ingress default deny",
			profile: profile(ingressDeny),
			doc: `{apiVersion: policy.networking.k8s.io/v1alpha1, kind: AdminNetworkPolicy, metadata: {name: allow-lb-health},
  spec: {priority: 10, subject: {namespaces: {}}, ingress: [{name: all, action: Allow, from: [{namespaces: {}}]}]}}`,
			want: []string{"networkPolicy.defaultDeny Ingress: Ingress rule all (priority 10) admits traffic before any NetworkPolicy is evaluated"}},
		{name: "Deny and Pass rules open nothing",
			profile: profile(bothDeny),
			doc: `{apiVersion: policy.networking.k8s.io/v1alpha1, kind: AdminNetworkPolicy, metadata: {name: strict},
  spec: {priority: 10, subject: {namespaces: {}}, ingress: [{action: Deny, from: [{namespaces: {}}]}], egress: [{action: Pass, to: [{namespaces: {}}]}]}}`},
		{name: "an Allow in a direction the profile does not deny by default widens nothing it declared",
			profile: profile(ingressDeny),
			doc: `{apiVersion: policy.networking.k8s.io/v1alpha1, kind: AdminNetworkPolicy, metadata: {name: egress-open},
  spec: {priority: 10, subject: {namespaces: {}}, egress: [{name: out, action: Allow, to: [{namespaces: {}}]}]}}`},
		{name: "a subject on other namespaces (by the name label, labels unknown) is not reported",
			profile: profile(ingressDeny),
			doc: `{apiVersion: policy.networking.k8s.io/v1alpha1, kind: AdminNetworkPolicy, metadata: {name: other},
  spec: {priority: 10, subject: {namespaces: {matchLabels: {kubernetes.io/metadata.name: billing}}}, ingress: [{action: Allow, from: [{namespaces: {}}]}]}}`},
		{name: "a subject on other labels, labels unknown, may select the namespace (fail closed)",
			profile: profile(ingressDeny),
			doc: `{apiVersion: policy.networking.k8s.io/v1alpha1, kind: AdminNetworkPolicy, metadata: {name: by-team},
  spec: {priority: 3, subject: {pods: {namespaceSelector: {matchLabels: {team: billing}}, podSelector: {}}}, ingress: [{action: Allow, from: [{namespaces: {}}]}]}}`,
			want: []string{"Ingress rule #0 (priority 3)"}},
		{name: "with the namespace's labels known, a subject on other labels is not reported",
			profile: profile(ingressDeny), nsLabels: shopLabels,
			doc: `{apiVersion: policy.networking.k8s.io/v1alpha1, kind: AdminNetworkPolicy, metadata: {name: by-team},
  spec: {priority: 3, subject: {namespaces: {matchLabels: {team: billing}}}, ingress: [{action: Allow, from: [{namespaces: {}}]}]}}`},
		{name: "with the namespace's labels known, a subject on its labels is reported",
			profile: profile(ingressDeny), nsLabels: shopLabels,
			doc: `{apiVersion: policy.networking.k8s.io/v1alpha1, kind: AdminNetworkPolicy, metadata: {name: by-team},
  spec: {priority: 3, subject: {namespaces: {matchLabels: {team: shop}}}, ingress: [{action: Allow, from: [{namespaces: {}}]}]}}`,
			want: []string{"Ingress rule #0"}},
		{name: "a ClusterNetworkPolicy Accept of the Admin tier opens the default deny",
			profile: profile(bothDeny),
			doc: `{apiVersion: policy.networking.k8s.io/v1alpha2, kind: ClusterNetworkPolicy, metadata: {name: cnp},
  spec: {tier: Admin, priority: 5, subject: {namespaces: {}}, egress: [{name: internet, action: Accept, to: [{networks: [0.0.0.0/0]}]}]}}`,
			want: []string{"networkPolicy.defaultDeny Egress: Egress rule internet (priority 5)"}},
		{name: "the Baseline tier comes after NetworkPolicies: not reported",
			profile: profile(bothDeny),
			doc: `{apiVersion: policy.networking.k8s.io/v1alpha2, kind: ClusterNetworkPolicy, metadata: {name: cnp},
  spec: {tier: Baseline, priority: 5, subject: {namespaces: {}}, ingress: [{action: Accept, from: [{namespaces: {}}]}]}}`},
		{name: "a BaselineAdminNetworkPolicy comes after NetworkPolicies: not reported",
			profile: profile(bothDeny),
			doc: `{apiVersion: policy.networking.k8s.io/v1alpha1, kind: BaselineAdminNetworkPolicy, metadata: {name: default},
  spec: {subject: {namespaces: {}}, ingress: [{action: Allow, from: [{namespaces: {}}]}]}}`},
		{name: "a profile without a network default deny has nothing an admin policy could open",
			profile: profile(withMTLS(v1alpha1.MTLSStrict)),
			doc: `{apiVersion: policy.networking.k8s.io/v1alpha1, kind: AdminNetworkPolicy, metadata: {name: allow-lb-health},
  spec: {priority: 10, subject: {namespaces: {}}, ingress: [{action: Allow, from: [{namespaces: {}}]}]}}`},
		{name: "an admin policy meshguard cannot read is reported (fail closed)",
			profile: profile(ingressDeny),
			doc: `{apiVersion: policy.networking.k8s.io/v1alpha1, kind: AdminNetworkPolicy, metadata: {name: odd},
  spec: {priority: ten, subject: {namespaces: {}}}}`,
			want: []string{"may weaken the profile"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got := findRendered(t, tt.profile, clusterScoped(t, tt.doc), Options{NamespaceLabels: tt.nsLabels})
			g.Expect(got).To(HaveLen(len(tt.want)))
			for i, w := range tt.want {
				g.Expect(got[i].Name).NotTo(ContainSubstring("/"), "cluster-scoped: named without a namespace")
				g.Expect(got[i].Weakens).To(ContainSubstring(w))
			}
		})
	}
}

func TestServerAuthorizations(t *testing.T) {
	doc := func(server string) string {
		return "apiVersion: policy.linkerd.io/v1beta1\nkind: ServerAuthorization\nmetadata: {name: legacy-open}\nspec: {server: " + server +
			", client: {meshTLS: {identities: ['*']}}}\n"
	}
	tests := []struct {
		name    string
		profile *v1alpha1.MeshSecurityProfile
		server  string
		want    string
	}{
		{name: "a selector {} selects every Server of the namespace, the profile's among them",
			profile: linkerdAPIOn8080(), server: `{selector: {}}`,
			want: "this ServerAuthorization (deprecated, still enforced by Linkerd) authorizes identities * on it"},
		{name: "a selector on the profile's Server labels selects them",
			profile: linkerdAPIOn8080(), server: `{selector: {matchLabels: {security.meshguard.dev/profile: baseline}}}`, want: "authorizes identities *"},
		{name: "a selector on other labels selects none of them",
			profile: linkerdAPIOn8080(), server: `{selector: {matchLabels: {app: legacy}}}`},
		{name: "a name of another Server selects none of them",
			profile: linkerdAPIOn8080(), server: `{name: legacy}`},
		{name: "an Istio profile ignores ServerAuthorizations",
			profile: profile(withMTLS(v1alpha1.MTLSStrict), withAuthorization(false, webReadsAPI)), server: `{selector: {}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got := findRendered(t, tt.profile, objects(t, doc(tt.server)), Options{})
			if tt.want == "" {
				g.Expect(got).To(BeEmpty())
				return
			}
			g.Expect(got).To(HaveLen(1))
			g.Expect(got[0].Kind).To(Equal("ServerAuthorization"))
			g.Expect(got[0].Weakens).To(HavePrefix("Server baseline-8080-wl-"))
			g.Expect(got[0].Weakens).To(ContainSubstring(tt.want))
		})
	}
	t.Run("a ServerAuthorization naming the profile's Server selects it", func(t *testing.T) {
		g := NewWithT(t)
		var name string
		res := findRendered(t, linkerdAPIOn8080(), nil, Options{})
		g.Expect(res).To(BeEmpty())
		for _, s := range linkerdServerMeta(renderObjects(t, linkerdAPIOn8080())) {
			name = s.name
		}
		g.Expect(name).NotTo(BeEmpty())
		got := findRendered(t, linkerdAPIOn8080(), objects(t, doc("{name: "+name+"}")), Options{})
		g.Expect(got).To(HaveLen(1))
		g.Expect(got[0].Weakens).To(HavePrefix("Server " + name + ":"))
	})
}
