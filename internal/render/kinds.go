package render

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// kinds is every kind Render can emit, whatever the mesh, in a stable order. A kind added to a
// mesh file must be added here too (TestKindsListsEveryRenderedKind fails otherwise): the
// reconciler watches and prunes exactly these kinds, so an object of a kind missing here would be
// neither restored on drift nor deleted when the profile stops generating it.
var kinds = []metav1.GroupVersionKind{
	gvkNetworkPolicy,
	gvkPeerAuthentication, gvkRequestAuthentication, gvkAuthorizationPolicy,
	gvkLinkerdServer, gvkLinkerdAuthorizationPolicy, gvkLinkerdMeshTLSAuthentication,
	gvkLinkerdNetworkAuthentication, gvkLinkerdHTTPRoute,
}

// Kinds returns every kind Render can emit, for any mesh, in a stable order: what the reconciler
// watches (Owns) and prunes, what meshguard's RBAC must allow writing, and what a profile that
// switches mesh leaves behind to prune. The caller owns the returned slice.
func Kinds() []schema.GroupVersionKind {
	out := make([]schema.GroupVersionKind, len(kinds))
	for i, k := range kinds {
		out[i] = schema.GroupVersionKind{Group: k.Group, Version: k.Version, Kind: k.Kind}
	}
	return out
}
