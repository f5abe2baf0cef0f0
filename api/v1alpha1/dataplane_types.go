package v1alpha1

// EnforcementPoint is the proxy that enforces a part of the profile for some workloads.
// +kubebuilder:validation:Enum=Sidecar;Ztunnel;Waypoint;None
type EnforcementPoint string

// Enforcement points. Istio's ambient data plane splits enforcement: ztunnel enforces L4 rules
// (identities, namespaces, ports, IP blocks) bound by selector; a waypoint enforces L7 rules
// (methods, paths, JWT) bound with targetRefs; a sidecar enforces both.
const (
	EnforcedBySidecar  EnforcementPoint = "Sidecar"
	EnforcedByZtunnel  EnforcementPoint = "Ztunnel"
	EnforcedByWaypoint EnforcementPoint = "Waypoint"
	// EnforcedByNone: nothing enforces this part for these workloads; reason says why.
	EnforcedByNone EnforcementPoint = "None"
)

// RuleEnforcementStatus says where one part of the profile is enforced for some of its workloads.
type RuleEnforcementStatus struct {
	// rule is the part of the profile: authorization.rules[<name>], authorization.defaultDeny,
	// requestAuthentication or mtls.
	// +kubebuilder:validation:MaxLength=128
	Rule string `json:"rule"`
	// enforcedBy is Sidecar, Ztunnel, Waypoint or None.
	EnforcedBy EnforcementPoint `json:"enforcedBy"`
	// pods are the pods concerned (the first ones, sorted); "(no pods)" when none exists yet and the
	// namespace's labels decided.
	// +kubebuilder:validation:MaxItems=8
	// +listType=atomic
	// +optional
	Pods []string `json:"pods,omitempty"`
	// podCount is how many pods this row covers.
	// +optional
	PodCount int32 `json:"podCount,omitempty"`
	// reason says why nothing enforces it (enforcedBy None), or how (the waypoint it is bound to).
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Reason string `json:"reason,omitempty"`
}

// DataPlaneStatus counts the namespace's pods per Istio data plane.
type DataPlaneStatus struct {
	// sidecar pods run an Envoy sidecar (annotation sidecar.istio.io/status).
	// +optional
	Sidecar int32 `json:"sidecar,omitempty"`
	// ambient pods are captured by ztunnel with no waypoint in their path.
	// +optional
	Ambient int32 `json:"ambient,omitempty"`
	// waypoint pods are captured by ztunnel with a waypoint in their path (istio.io/use-waypoint).
	// +optional
	Waypoint int32 `json:"waypoint,omitempty"`
	// unmeshed pods have no proxy: no Istio policy applies to them.
	// +optional
	Unmeshed int32 `json:"unmeshed,omitempty"`
	// waypoints are the waypoints in the path of the namespace's pods, namespace/name.
	// +kubebuilder:validation:MaxItems=16
	// +listType=set
	// +optional
	Waypoints []string `json:"waypoints,omitempty"`
}
