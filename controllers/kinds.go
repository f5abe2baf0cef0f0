package controllers

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Generated kinds. Every kind meshguard may generate is listed here, so that pruning finds
// objects of a mesh the profile no longer uses (for example after switching from Istio to Linkerd).
var (
	gvkNetworkPolicy         = schema.GroupVersionKind{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicy"}
	gvkPeerAuthentication    = schema.GroupVersionKind{Group: "security.istio.io", Version: "v1", Kind: "PeerAuthentication"}
	gvkRequestAuthentication = schema.GroupVersionKind{Group: "security.istio.io", Version: "v1", Kind: "RequestAuthentication"}
	gvkIstioAuthzPolicy      = schema.GroupVersionKind{Group: "security.istio.io", Version: "v1", Kind: "AuthorizationPolicy"}
	gvkLinkerdServer         = schema.GroupVersionKind{Group: "policy.linkerd.io", Version: "v1beta3", Kind: "Server"}
	gvkLinkerdAuthzPolicy    = schema.GroupVersionKind{Group: "policy.linkerd.io", Version: "v1alpha1", Kind: "AuthorizationPolicy"}
	gvkLinkerdMeshTLSAuthn   = schema.GroupVersionKind{Group: "policy.linkerd.io", Version: "v1alpha1", Kind: "MeshTLSAuthentication"}
	gvkLinkerdNetworkAuthn   = schema.GroupVersionKind{Group: "policy.linkerd.io", Version: "v1alpha1", Kind: "NetworkAuthentication"}
	gvkLinkerdHTTPRoute      = schema.GroupVersionKind{Group: "policy.linkerd.io", Version: "v1beta3", Kind: "HTTPRoute"}
)

// generatedKinds are all kinds meshguard generates, in a stable order.
var generatedKinds = []schema.GroupVersionKind{
	gvkNetworkPolicy,
	gvkPeerAuthentication, gvkRequestAuthentication, gvkIstioAuthzPolicy,
	gvkLinkerdServer, gvkLinkerdAuthzPolicy, gvkLinkerdMeshTLSAuthn, gvkLinkerdNetworkAuthn, gvkLinkerdHTTPRoute,
}

// meshOf names the product a generated kind belongs to, for the "not installed" reasons.
func meshOf(gvk schema.GroupVersionKind) string {
	switch gvk.Group {
	case "security.istio.io":
		return "Istio"
	case "policy.linkerd.io":
		return "Linkerd"
	}
	return ""
}

func newUnstructured(gvk schema.GroupVersionKind) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	return u
}

func newUnstructuredList(gvk schema.GroupVersionKind) *unstructured.UnstructuredList {
	l := &unstructured.UnstructuredList{}
	l.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	return l
}
