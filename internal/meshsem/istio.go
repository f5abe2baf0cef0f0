package meshsem

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Older says whether a comes before b in Istio's order among policies of one level: the older
// creationTimestamp, then the name. Of several PeerAuthentications at one level (workload,
// namespace or mesh) Istio applies the first in this order ("If there are more than one ... the
// oldest one is used", PeerAuthentication reference; pilot/pkg/security/authn
// getMostSpecificConfig, which sorts by creation time then name). Gateway API breaks ties
// between equally specific HTTPRoute matches the same way, among routes of one namespace ("the
// oldest Route based on creation timestamp", then by name; gateway-api HTTPRouteRule), which
// Linkerd's policy controller follows.
func Older(a, b metav1.Object) bool {
	ta, tb := a.GetCreationTimestamp(), b.GetCreationTimestamp()
	if !ta.Equal(&tb) {
		return ta.Before(&tb)
	}
	return a.GetName() < b.GetName()
}

// IstioMeshDefaultMTLS is the mode of a workload no PeerAuthentication sets, and what a
// namespace-wide one that leaves mtls UNSET falls back to when the mesh sets none ("If not set,
// the mode is inherited from its parent; the mesh default is PERMISSIVE", PeerAuthentication
// reference, MutualTLS.Mode UNSET).
const IstioMeshDefaultMTLS = "PERMISSIVE"
