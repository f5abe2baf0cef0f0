package meshapi

import (
	"encoding/json"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// ServerSpec is the spec of a policy.linkerd.io Server (v1beta3; v1beta1 and v1beta2 have a
// subset of its fields).
type ServerSpec struct {
	// PodSelector selects the pods; nil when the Server selects ExternalWorkloads.
	PodSelector              *metav1.LabelSelector `json:"podSelector,omitempty"`
	ExternalWorkloadSelector *metav1.LabelSelector `json:"externalWorkloadSelector,omitempty"`
	// Port is a port number or a container port's name.
	Port          intstr.IntOrString `json:"port"`
	ProxyProtocol string             `json:"proxyProtocol,omitempty"`
	// AccessPolicy applies to traffic no AuthorizationPolicy authorizes; "" means deny.
	AccessPolicy string `json:"accessPolicy,omitempty"`
}

// LocalRef is a reference to an object of the policy's namespace (AuthorizationPolicy's
// targetRef).
type LocalRef struct {
	Group string `json:"group,omitempty"`
	Kind  string `json:"kind"`
	Name  string `json:"name"`
}

// NamespacedRef is a reference that may name another namespace (requiredAuthenticationRefs,
// identityRefs); "" is the referring object's namespace.
type NamespacedRef struct {
	Group     string `json:"group,omitempty"`
	Kind      string `json:"kind"`
	Name      string `json:"name,omitempty"`
	Namespace string `json:"namespace,omitempty"`
}

// AuthorizationPolicySpec is the spec of a policy.linkerd.io AuthorizationPolicy (v1alpha1).
type AuthorizationPolicySpec struct {
	TargetRef                  LocalRef        `json:"targetRef"`
	RequiredAuthenticationRefs []NamespacedRef `json:"requiredAuthenticationRefs"`
}

// MeshTLSAuthenticationSpec is the spec of a policy.linkerd.io MeshTLSAuthentication (v1alpha1).
type MeshTLSAuthenticationSpec struct {
	Identities   []string        `json:"identities,omitempty"`
	IdentityRefs []NamespacedRef `json:"identityRefs,omitempty"`
}

// NetworkAuthenticationSpec is the spec of a policy.linkerd.io NetworkAuthentication (v1alpha1).
type NetworkAuthenticationSpec struct {
	Networks []Network `json:"networks"`
}

// Network is a CIDR without its exceptions.
type Network struct {
	CIDR   string   `json:"cidr"`
	Except []string `json:"except,omitempty"`
}

// HTTPRouteSpec is the spec of a policy.linkerd.io HTTPRoute (v1beta3) or a
// gateway.networking.k8s.io HTTPRoute (v1), as far as they are the same.
type HTTPRouteSpec struct {
	ParentRefs []ParentRef     `json:"parentRefs,omitempty"`
	Hostnames  []string        `json:"hostnames,omitempty"`
	Rules      []HTTPRouteRule `json:"rules,omitempty"`
}

// ParentRef is what a route attaches to (for Linkerd, a Server or a Service).
type ParentRef struct {
	Group       string `json:"group,omitempty"`
	Kind        string `json:"kind,omitempty"`
	Namespace   string `json:"namespace,omitempty"`
	Name        string `json:"name"`
	SectionName string `json:"sectionName,omitempty"`
	Port        *int32 `json:"port,omitempty"`
}

// HTTPRouteRule is one rule; only its matches are evaluated here.
type HTTPRouteRule struct {
	Matches            []HTTPRouteMatch `json:"matches,omitempty"`
	Filters            json.RawMessage  `json:"filters,omitempty"`
	BackendRefs        json.RawMessage  `json:"backendRefs,omitempty"`
	Timeouts           json.RawMessage  `json:"timeouts,omitempty"`
	SessionPersistence json.RawMessage  `json:"sessionPersistence,omitempty"`
}

// HTTPRouteMatch matches requests; all its conditions must hold.
type HTTPRouteMatch struct {
	Path        *HTTPPathMatch  `json:"path,omitempty"`
	Headers     []HTTPNameMatch `json:"headers,omitempty"`
	QueryParams []HTTPNameMatch `json:"queryParams,omitempty"`
	Method      string          `json:"method,omitempty"`
}

// HTTPPathMatch matches the path (Exact, PathPrefix, RegularExpression).
type HTTPPathMatch struct {
	Type  string `json:"type,omitempty"`
	Value string `json:"value,omitempty"`
}

// HTTPNameMatch matches a header or a query parameter.
type HTTPNameMatch struct {
	Type  string `json:"type,omitempty"`
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Server decodes the spec of a policy.linkerd.io Server.
func Server(u *unstructured.Unstructured) (*ServerSpec, error) {
	out := &ServerSpec{}
	return out, decodeStrict(u, out)
}

// LinkerdAuthorizationPolicy decodes the spec of a policy.linkerd.io AuthorizationPolicy.
func LinkerdAuthorizationPolicy(u *unstructured.Unstructured) (*AuthorizationPolicySpec, error) {
	out := &AuthorizationPolicySpec{}
	return out, decodeStrict(u, out)
}

// MeshTLSAuthentication decodes the spec of a policy.linkerd.io MeshTLSAuthentication.
func MeshTLSAuthentication(u *unstructured.Unstructured) (*MeshTLSAuthenticationSpec, error) {
	out := &MeshTLSAuthenticationSpec{}
	return out, decodeStrict(u, out)
}

// NetworkAuthentication decodes the spec of a policy.linkerd.io NetworkAuthentication.
func NetworkAuthentication(u *unstructured.Unstructured) (*NetworkAuthenticationSpec, error) {
	out := &NetworkAuthenticationSpec{}
	return out, decodeStrict(u, out)
}

// HTTPRoute decodes the spec of a policy.linkerd.io or gateway.networking.k8s.io HTTPRoute.
func HTTPRoute(u *unstructured.Unstructured) (*HTTPRouteSpec, error) {
	out := &HTTPRouteSpec{}
	return out, decodeStrict(u, out)
}
