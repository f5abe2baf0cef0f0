package effective

import (
	"k8s.io/apimachinery/pkg/runtime/schema"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// Scope is one kind and one namespace whose live objects Find judges for a profile.
type Scope struct {
	GroupKind schema.GroupKind
	Namespace string
}

// Scopes returns what the caller lists and hands to Find as foreign objects: NetworkPolicies of
// the profile's namespace (a NetworkPolicy selects pods of its own namespace only) and, for an Istio
// profile, PeerAuthentications, AuthorizationPolicies and RequestAuthentications of the profile's
// namespace and of the Istio root namespace (whose policies apply mesh-wide);
// for a Linkerd profile its namespace's Servers, AuthorizationPolicies, MeshTLSAuthentications,
// NetworkAuthentications and HTTPRoutes. Find ignores whatever else it is handed.
// Besides those, every profile's scopes hold the cluster-scoped AdminNetworkPolicies and
// ClusterNetworkPolicies (Namespace empty: all of them), and a Linkerd profile's the
// ServerAuthorizations of its namespace: kinds meshguard does not generate, which the caller
// lists only where the API server serves them (ExtraKinds).
// The versions of the other kinds are render's: every one is a kind meshguard also generates.
func Scopes(p *v1alpha1.MeshSecurityProfile, opts Options) []Scope {
	if p == nil {
		return nil
	}
	gk := func(group, kind string) schema.GroupKind { return schema.GroupKind{Group: group, Kind: kind} }
	out := []Scope{{gk(groupNetworking, kindNetworkPolicy), p.Namespace},
		{gk(groupNetworkPolicyAPI, kindAdminNetworkPolicy), ""}, {gk(groupNetworkPolicyAPI, kindClusterNetworkPolicy), ""}}
	if p.Spec.GetMesh() != v1alpha1.MeshIstio {
		// Linkerd's policy objects only act in their own namespace.
		for _, k := range []string{kindLinkerdServer, kindAuthorizationPolicy, kindMeshTLSAuthn, kindNetworkAuthn, kindLinkerdHTTPRoute, kindServerAuthorization} {
			out = append(out, Scope{gk(groupLinkerd, k), p.Namespace})
		}
		return out
	}
	root := opts.RootNamespace()
	pa, ap, ra := gk(groupIstioSecurity, kindPeerAuthentication), gk(groupIstioSecurity, kindAuthorizationPolicy), gk(groupIstioSecurity, kindRequestAuthentication)
	return append(out, Scope{pa, p.Namespace}, Scope{ap, p.Namespace}, Scope{ra, p.Namespace},
		Scope{ap, root}, Scope{pa, root}, Scope{ra, root})
}

// ExtraKind is a policy kind meshguard reads but does not generate, in the versions it reads,
// preferred first; the caller lists the first one the API server serves, and only that.
type ExtraKind struct {
	GroupKind schema.GroupKind
	Versions  []string
	// Cluster: the kind is cluster-scoped.
	Cluster bool
}

// ExtraKinds are the policy kinds besides meshguard's own that can decide a request to a
// profile's pods: network-policy-api's admin policies (evaluated before and after
// NetworkPolicies), Linkerd's ServerAuthorization, and the CNI-specific policies of Cilium,
// Calico and Antrea (each enforces its own kinds besides NetworkPolicy:
// docs.cilium.io/en/stable/network/kubernetes/policy/, docs.tigera.io/calico/latest/network-policy/,
// antrea.io/docs/main/docs/antrea-network-policy/); explain.CNIPolicyKinds names the same.
// Find judges the first three; explain reads them all.
func ExtraKinds() []ExtraKind {
	gk := func(group, kind string) schema.GroupKind { return schema.GroupKind{Group: group, Kind: kind} }
	return []ExtraKind{
		{gk(groupNetworkPolicyAPI, kindAdminNetworkPolicy), []string{"v1alpha1"}, true},
		{gk(groupNetworkPolicyAPI, "BaselineAdminNetworkPolicy"), []string{"v1alpha1"}, true},
		{gk(groupNetworkPolicyAPI, kindClusterNetworkPolicy), []string{"v1alpha2", "v1beta1"}, true},
		{gk(groupLinkerd, kindServerAuthorization), []string{"v1beta1"}, false},
		{gk("cilium.io", "CiliumNetworkPolicy"), []string{"v2"}, false},
		{gk("cilium.io", "CiliumClusterwideNetworkPolicy"), []string{"v2"}, true},
		{gk("crd.projectcalico.org", "NetworkPolicy"), []string{"v1"}, false},
		{gk("crd.projectcalico.org", "GlobalNetworkPolicy"), []string{"v1"}, true},
		{gk("projectcalico.org", "NetworkPolicy"), []string{"v3"}, false},
		{gk("projectcalico.org", "GlobalNetworkPolicy"), []string{"v3"}, true},
		{gk("projectcalico.org", "StagedNetworkPolicy"), []string{"v3"}, false},
		{gk("crd.antrea.io", "NetworkPolicy"), []string{"v1beta1"}, false},
		{gk("crd.antrea.io", "ClusterNetworkPolicy"), []string{"v1beta1"}, true},
	}
}
