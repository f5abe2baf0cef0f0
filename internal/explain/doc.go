// Package explain answers "would this request get through?" for a set of policy objects:
// Kubernetes NetworkPolicies (egress of the source, ingress of the destination), the mesh's
// transport layer (Istio PeerAuthentication; Linkerd's automatic mTLS), request authentication
// (Istio RequestAuthentication) and authorization (Istio AuthorizationPolicy CUSTOM → DENY →
// ALLOW; Linkerd Server, HTTPRoute, AuthorizationPolicy, MeshTLSAuthentication,
// NetworkAuthentication and the default inbound policy).
//
// It is pure: no client, no clock. Evaluate takes the objects (as the API server returns them,
// unstructured) and a Request, and returns a Decision per layer naming the deciding objects and
// rule indexes. What a layer's answer depends on but the package does not model (a CNI that
// ignores NetworkPolicy, an EnvoyFilter, a CUSTOM authorization provider, request headers) makes
// the layer Unknown with the reason, never a guess. Mesh objects are decoded strictly through
// internal/meshapi; one it does not understand (an unknown field) makes its layer Unknown,
// naming the object and the field, instead of being evaluated without the field.
//
// Semantics follow the upstream references, cited next to each decision:
//   - https://kubernetes.io/docs/concepts/services-networking/network-policies/
//   - https://istio.io/latest/docs/reference/config/security/peer_authentication/
//   - https://istio.io/latest/docs/reference/config/security/request_authentication/
//   - https://istio.io/latest/docs/reference/config/security/authorization-policy/
//   - https://istio.io/latest/docs/concepts/security/#authorization
//   - https://linkerd.io/2/reference/authorization-policy/ and https://linkerd.io/2/features/server-policy/
//
// An Istio destination on the ambient data plane (internal/dataplane decides, from Options.DataPlane
// or the Pods, Namespace, Services and Gateways among the objects) is evaluated where ambient
// enforces policy: ztunnel (L4 only) and, when one is in its path, the waypoint (targetRefs, L7),
// after which ztunnel sees the waypoint's identity; each layer names its proxy (ambient.go).
//
// EvaluateExpectation takes an expectation-shaped request ({from, to, want}), the form of a
// profile's spec.expectations[] entries, and answers it for every sender it stands for (with and
// without a mesh proxy, every piece of a CIDR), worst case, without counting the sender's own
// egress policy in another namespace (ReasonDeniedOnlyBySource).
package explain
