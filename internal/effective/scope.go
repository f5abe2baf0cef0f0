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
// The versions are render's: every kind here is one meshguard also generates.
func Scopes(p *v1alpha1.MeshSecurityProfile, opts Options) []Scope {
	if p == nil {
		return nil
	}
	gk := func(group, kind string) schema.GroupKind { return schema.GroupKind{Group: group, Kind: kind} }
	out := []Scope{{gk(groupNetworking, kindNetworkPolicy), p.Namespace}}
	if p.Spec.GetMesh() != v1alpha1.MeshIstio {
		// Linkerd's policy objects only act in their own namespace.
		for _, k := range []string{kindLinkerdServer, kindAuthorizationPolicy, kindMeshTLSAuthn, kindNetworkAuthn, kindLinkerdHTTPRoute} {
			out = append(out, Scope{gk(groupLinkerd, k), p.Namespace})
		}
		return out
	}
	root := opts.RootNamespace()
	pa, ap, ra := gk(groupIstioSecurity, kindPeerAuthentication), gk(groupIstioSecurity, kindAuthorizationPolicy), gk(groupIstioSecurity, kindRequestAuthentication)
	return append(out, Scope{pa, p.Namespace}, Scope{ap, p.Namespace}, Scope{ra, p.Namespace},
		Scope{ap, root}, Scope{pa, root}, Scope{ra, root})
}
