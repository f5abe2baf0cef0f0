// Package meshapi holds typed views of the mesh objects meshguard reads but does not render:
// Istio's PeerAuthentication, RequestAuthentication and AuthorizationPolicy (security.istio.io)
// and Linkerd's Server, AuthorizationPolicy, MeshTLSAuthentication, NetworkAuthentication and
// HTTPRoute (policy.linkerd.io, and gateway.networking.k8s.io HTTPRoute). Both the explain
// engine and the weakening-policy report decode through it, so they read the same fields.
//
// Decoding is strict: a field the type does not have (a newer mesh version's, or a typo the
// API server kept) is an error naming the field, never silently dropped. A security tool that
// drops a field it does not know answers for a different policy than the cluster enforces
// (an AuthorizationPolicy source with only serviceAccounts would read as "any source"), so the
// callers treat an object that does not decode as not understood and fail closed.
//
// Istio's specs decode into the upstream protobuf messages (istio.io/api/security/v1beta1,
// which security.istio.io/v1 aliases) with protojson, which rejects unknown fields; their
// generated UnmarshalJSON allows them, so it is not used. Compare these messages with
// proto.Equal, not reflect.DeepEqual.
//
// Linkerd's types are written here by hand: the Go module proxy this project builds from
// refuses github.com/linkerd/linkerd2, so its Go types cannot be imported. They follow the CRD
// schemas of charts/linkerd-crds at linkerd2 commit eadc1acf79ad2e766afbdceadb77f1594296fd77
// (the copy in ../shared/linkerd-crds, see its SOURCE.md; the stored versions Server v1beta3,
// AuthorizationPolicy / MeshTLSAuthentication / NetworkAuthentication v1alpha1, HTTPRoute
// v1beta3, and gateway.networking.k8s.io HTTPRoute v1 of the same chart). Every field of those
// schemas is declared, so a valid object of that version always decodes; HTTPRoute filters,
// backendRefs, timeouts and sessionPersistence are kept raw because nothing here evaluates them.
package meshapi
