package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// ClusterMeshSecurityProfileSpec is a security floor for every namespace its selector chooses. The
// profile body (mesh, enforcement, mtls, requestAuthentication, authorization, networkPolicy,
// certificates, trustDomain, adoptExisting) is the MeshSecurityProfile's own, with the same
// validation. What a namespace's MeshSecurityProfile cannot lower: mtls modes, enforcement,
// defaultDeny, requireToken, minValidity, the floor's Deny rules and its ceilings. What it can
// add to: Allow rules and NetworkPolicy rules are unioned with the floor's, so they may open
// what the floor's default deny closes; each such rule is reported (status.openedUnderFloor).
// Limits no namespace can go past are written in ceilings. See docs/cluster-profiles.md.
// +kubebuilder:validation:XValidation:rule="!has(self.expectations) || size(self.expectations) == 0",message="expectations are not supported on a ClusterMeshSecurityProfile: write them in the namespace's MeshSecurityProfile"
type ClusterMeshSecurityProfileSpec struct {
	// namespaceSelector chooses the namespaces this floor applies to by their labels. It is
	// required so that "every namespace" is always a decision: write {} to select all of them.
	// System namespaces are never chosen unless includeSystemNamespaces is true: kube-*
	// (kube-system, kube-public, kube-node-lease), meshguard's own namespace and the mesh
	// control-plane namespaces (status.excludedSystemNamespaces lists those left out).
	// +required
	NamespaceSelector metav1.LabelSelector `json:"namespaceSelector"`

	// includeSystemNamespaces lets namespaceSelector choose kube-* namespaces and meshguard's own
	// namespace too. A default deny there can cut off cluster DNS, the API server's webhooks and
	// meshguard itself: opt in only with rules that keep them working. The mesh control-plane
	// namespaces (Istio's and its root namespace, Linkerd's) are never governed, whatever this says.
	// +optional
	IncludeSystemNamespaces bool `json:"includeSystemNamespaces,omitempty"`

	// ceilings are limits no namespace's MeshSecurityProfile can go past. Unlike the floor's
	// default deny (which a namespace's Allow and NetworkPolicy rules may open), a ceiling is
	// enforced by the mesh where it can deny (Istio: a DENY AuthorizationPolicy, evaluated before
	// every ALLOW) and, where it cannot (NetworkPolicy, Linkerd), by refusing the namespace's rule
	// at the merge: the rule is not generated and is listed in status.heldAtFloor.
	// +optional
	Ceilings *FloorCeilings `json:"ceilings,omitempty"`

	// excludeNamespaces are namespaces this floor never applies to, whatever their labels.
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +listType=set
	// +optional
	ExcludeNamespaces []string `json:"excludeNamespaces,omitempty"`

	// The profile body, shared with MeshSecurityProfile: one type, one set of validation rules.
	MeshSecurityProfileSpec `json:",inline"`
}

// FloorCeilings are limits a namespace's profile cannot go past.
type FloorCeilings struct {
	// deniedIngressFrom are source address ranges no workload of a selected namespace may be
	// reached from, each with the ranges inside it that stay allowed (except). Istio: one DENY
	// AuthorizationPolicy per range (from.source ipBlocks / notIpBlocks), which matches the
	// connection's peer address: list the pod and node networks (and the gateways') under except,
	// or in-cluster traffic is denied too. NetworkPolicy and Linkerd rules of the namespace whose
	// ipBlock (or ipBlocks) reaches into a range are refused and held at the floor. Rules naming
	// namespaces, pods or mesh identities are not address rules and are not refused.
	// Example: {cidr: 0.0.0.0/0, except: [10.0.0.0/8]} means nothing from outside 10.0.0.0/8.
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	DeniedIngressFrom []IPBlock `json:"deniedIngressFrom,omitempty"`
}

// FloorOpening is one rule of a MeshSecurityProfile that allows traffic a cluster profile's
// default deny closes and no rule of the floor allows. It is applied (the floor's default deny is
// a default, not a ceiling); it is listed so that the platform team sees what each namespace opens.
type FloorOpening struct {
	// field is the path of the rule in the MeshSecurityProfile, for example
	// spec.networkPolicy.ingress[name=internet].
	Field string `json:"field"`
	// clusterProfile is the ClusterMeshSecurityProfile whose default deny the rule opens.
	ClusterProfile string `json:"clusterProfile"`
	// opens says what the rule admits, for a user.
	// +optional
	Opens string `json:"opens,omitempty"`
}

// NamespaceFloorState says why a namespace is listed in a cluster profile's status.
// +kubebuilder:validation:Enum=NotReady;Weakened;Conflict
type NamespaceFloorState string

const (
	// NamespaceNotReady means the namespace's objects are not (yet) applied and in sync, or its mesh
	// CA is not healthy.
	NamespaceNotReady NamespaceFloorState = "NotReady"
	// NamespaceWeakened means an object meshguard does not own weakens the namespace's policies.
	NamespaceWeakened NamespaceFloorState = "Weakened"
	// NamespaceConflict means cluster profiles (or the namespace's own profile) that select the
	// namespace cannot be merged; nothing new is applied there.
	NamespaceConflict NamespaceFloorState = "Conflict"
)

// NamespaceFloor is one namespace where the floor is not in force as declared.
type NamespaceFloor struct {
	// name of the namespace.
	Name string `json:"name"`
	// profile is the namespace's MeshSecurityProfile that carries the floor, when it has one.
	// +optional
	Profile string `json:"profile,omitempty"`
	// state is NotReady, Weakened or Conflict.
	State NamespaceFloorState `json:"state"`
	// reason is the reason of the namespace's Ready (or Effective) condition.
	// +optional
	Reason string `json:"reason,omitempty"`
	// message says why, for a user.
	// +optional
	Message string `json:"message,omitempty"`
}

// FloorHold is one field of a MeshSecurityProfile that asks for less than a cluster profile's
// floor, and is held at the floor.
type FloorHold struct {
	// field is the path of the field in the MeshSecurityProfile, for example spec.mtls.mode.
	Field string `json:"field"`
	// asked is what the profile asks for.
	Asked string `json:"asked"`
	// heldAt is what is applied instead: the floor's value.
	HeldAt string `json:"heldAt"`
	// clusterProfile is the ClusterMeshSecurityProfile whose floor holds the field.
	ClusterProfile string `json:"clusterProfile"`
}

// MaxListedNamespaces bounds status.namespaces of a ClusterMeshSecurityProfile: the counts are
// exact, the list names the first namespaces (sorted by name) that need attention.
const MaxListedNamespaces = 50

// ClusterMeshSecurityProfileStatus is what meshguard observed across the selected namespaces.
type ClusterMeshSecurityProfileStatus struct {
	// observedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready (every selected namespace is at the floor), and the kstatus pair
	// Reconciling / Stalled.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// matchedNamespaces is how many namespaces the floor applies to.
	// +optional
	MatchedNamespaces int32 `json:"matchedNamespaces"`

	// readyNamespaces is how many of them are Ready: objects applied and in sync, nothing
	// weakening them, mesh CA healthy.
	// +optional
	ReadyNamespaces int32 `json:"readyNamespaces"`

	// weakenedNamespaces is how many of them hold an object meshguard does not own that weakens
	// their policies.
	// +optional
	WeakenedNamespaces int32 `json:"weakenedNamespaces"`

	// openedNamespaces is how many of them have a MeshSecurityProfile whose rules open something
	// the floor's default deny closes (each such profile lists them in status.openedUnderFloor).
	// +optional
	OpenedNamespaces int32 `json:"openedNamespaces"`

	// excludedSystemNamespaces are namespaces namespaceSelector chooses that the floor is not
	// applied to because they are system namespaces (see includeSystemNamespaces): the first 50
	// by name.
	// +kubebuilder:validation:MaxItems=50
	// +listType=set
	// +optional
	ExcludedSystemNamespaces []string `json:"excludedSystemNamespaces,omitempty"`

	// namespaces lists namespaces not Ready, weakened or in conflict, with why: the first 50 by
	// name (the counts above are exact).
	// +kubebuilder:validation:MaxItems=50
	// +listType=map
	// +listMapKey=name
	// +optional
	Namespaces []NamespaceFloor `json:"namespaces,omitempty"`

	// omittedNamespaces is how many namespaces that need attention are left out of namespaces.
	// +optional
	OmittedNamespaces int32 `json:"omittedNamespaces,omitempty"`
}

// ClusterMeshSecurityProfile is a cluster-wide security floor: the namespaces its selector chooses
// get its policies the moment they exist, merged with their own MeshSecurityProfile, which may
// tighten the floor and never weaken it.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=cmsp,categories=meshguard
// +kubebuilder:printcolumn:name="Namespaces",type=integer,JSONPath=`.status.matchedNamespaces`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.readyNamespaces`
// +kubebuilder:printcolumn:name="Weakened",type=integer,JSONPath=`.status.weakenedNamespaces`
// +kubebuilder:printcolumn:name="Opened",type=integer,priority=1,JSONPath=`.status.openedNamespaces`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Mesh",type=string,priority=1,JSONPath=`.spec.mesh`
// +kubebuilder:printcolumn:name="mTLS",type=string,priority=1,JSONPath=`.spec.mtls.mode`
// +kubebuilder:printcolumn:name="Message",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 63",message="metadata.name must be at most 63 characters (it is used as a label value)"
type ClusterMeshSecurityProfile struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the floor and the namespaces it applies to.
	// +required
	Spec ClusterMeshSecurityProfileSpec `json:"spec"`

	// status is what meshguard observed.
	// +optional
	Status ClusterMeshSecurityProfileStatus `json:"status,omitempty"`
}

// ClusterMeshSecurityProfileList is a list of ClusterMeshSecurityProfiles.
//
// +kubebuilder:object:root=true
type ClusterMeshSecurityProfileList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterMeshSecurityProfile `json:"items"`
}

// addClusterKnownTypes registers ClusterMeshSecurityProfile and its list under GroupVersion.
func addClusterKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &ClusterMeshSecurityProfile{}, &ClusterMeshSecurityProfileList{})
	return nil
}

func init() {
	SchemeBuilder.Register(addClusterKnownTypes)
}
