package meshapi

import "k8s.io/apimachinery/pkg/runtime/schema"

// API groups of the objects meshguard renders and reads: the one place their names are written.
const (
	// GroupNetworking is Kubernetes' NetworkPolicy group.
	GroupNetworking = "networking.k8s.io"
	// GroupIstioSecurity is Istio's security group (PeerAuthentication, RequestAuthentication,
	// AuthorizationPolicy).
	GroupIstioSecurity = "security.istio.io"
	// GroupIstioNetworking is Istio's traffic group (Sidecar, ...).
	GroupIstioNetworking = "networking.istio.io"
	// GroupLinkerdPolicy is Linkerd's policy group.
	GroupLinkerdPolicy = "policy.linkerd.io"
	// GroupGatewayAPI is the Gateway API group (Linkerd also routes its HTTPRoute).
	GroupGatewayAPI = "gateway.networking.k8s.io"
)

// Kinds and the versions meshguard writes them in: the stored versions of the CRDs meshguard is
// tested against (Istio's from the istio.io/api module, Linkerd's from charts/linkerd-crds, see
// the package comment).
var (
	GVKNetworkPolicy         = schema.GroupVersionKind{Group: GroupNetworking, Version: "v1", Kind: "NetworkPolicy"}
	GVKPeerAuthentication    = schema.GroupVersionKind{Group: GroupIstioSecurity, Version: "v1", Kind: "PeerAuthentication"}
	GVKRequestAuthentication = schema.GroupVersionKind{Group: GroupIstioSecurity, Version: "v1", Kind: "RequestAuthentication"}
	GVKAuthorizationPolicy   = schema.GroupVersionKind{Group: GroupIstioSecurity, Version: "v1", Kind: "AuthorizationPolicy"}

	GVKLinkerdServer                = schema.GroupVersionKind{Group: GroupLinkerdPolicy, Version: "v1beta3", Kind: "Server"}
	GVKLinkerdHTTPRoute             = schema.GroupVersionKind{Group: GroupLinkerdPolicy, Version: "v1beta3", Kind: "HTTPRoute"}
	GVKLinkerdAuthorizationPolicy   = schema.GroupVersionKind{Group: GroupLinkerdPolicy, Version: "v1alpha1", Kind: "AuthorizationPolicy"}
	GVKLinkerdMeshTLSAuthentication = schema.GroupVersionKind{Group: GroupLinkerdPolicy, Version: "v1alpha1", Kind: "MeshTLSAuthentication"}
	GVKLinkerdNetworkAuthentication = schema.GroupVersionKind{Group: GroupLinkerdPolicy, Version: "v1alpha1", Kind: "NetworkAuthentication"}
)

// Mesh names the product a group belongs to ("Istio", "Linkerd"), empty for Kubernetes' own.
func Mesh(group string) string {
	switch group {
	case GroupIstioSecurity, GroupIstioNetworking:
		return "Istio"
	case GroupLinkerdPolicy:
		return "Linkerd"
	}
	return ""
}
