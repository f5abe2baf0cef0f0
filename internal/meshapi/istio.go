package meshapi

import (
	securityv1beta1 "istio.io/api/security/v1beta1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// AuthorizationPolicy decodes the spec of a security.istio.io AuthorizationPolicy (v1 and
// v1beta1 share the message).
func AuthorizationPolicy(u *unstructured.Unstructured) (*securityv1beta1.AuthorizationPolicy, error) {
	out := &securityv1beta1.AuthorizationPolicy{}
	return out, decodeProto(u, out)
}

// PeerAuthentication decodes the spec of a security.istio.io PeerAuthentication.
func PeerAuthentication(u *unstructured.Unstructured) (*securityv1beta1.PeerAuthentication, error) {
	out := &securityv1beta1.PeerAuthentication{}
	return out, decodeProto(u, out)
}

// RequestAuthentication decodes the spec of a security.istio.io RequestAuthentication.
func RequestAuthentication(u *unstructured.Unstructured) (*securityv1beta1.RequestAuthentication, error) {
	out := &securityv1beta1.RequestAuthentication{}
	return out, decodeProto(u, out)
}
