// Package v1alpha1 contains the MeshSecurityProfile API of the security.meshguard.dev group.
//
// A MeshSecurityProfile is the one object a platform team commits per namespace:
// meshguard turns it into the mesh's own security objects and reports in its
// status whether the namespace is really protected.
//
// +kubebuilder:object:generate=true
// +groupName=security.meshguard.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of this API.
	GroupVersion = schema.GroupVersion{Group: "security.meshguard.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the API's types with a runtime.Scheme. It is apimachinery's (the
	// controller-runtime helper would make every importer of the API depend on controller-runtime).
	SchemeBuilder = &runtime.SchemeBuilder{}

	// AddToScheme adds the API's types to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// addKnownTypes registers MeshSecurityProfile and its list under GroupVersion.
func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &MeshSecurityProfile{}, &MeshSecurityProfileList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
