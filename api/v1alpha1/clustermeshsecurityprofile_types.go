package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// ClusterMeshSecurityProfileSpec is a security floor for every namespace its selector chooses. The
// profile body (mesh, enforcement, mtls, requestAuthentication, authorization, networkPolicy,
// certificates, trustDomain, adoptExisting) is the MeshSecurityProfile's own, with the same
// validation; a namespace's MeshSecurityProfile may tighten it and never weaken it (see
// docs/cluster-profiles.md for the merge rule).
// +kubebuilder:validation:XValidation:rule="!has(self.expectations) || size(self.expectations) == 0",message="expectations are not supported on a ClusterMeshSecurityProfile: write them in the namespace's MeshSecurityProfile"
type ClusterMeshSecurityProfileSpec struct {
	// namespaceSelector chooses the namespaces this floor applies to by their labels. It is
	// required so that "every namespace" is always a decision: write {} to select all of them
	// (then exclude kube-system and the mesh's own namespaces with excludeNamespaces).
	// +required
	NamespaceSelector metav1.LabelSelector `json:"namespaceSelector"`

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
