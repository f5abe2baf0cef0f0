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
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of this API.
	GroupVersion = schema.GroupVersion{Group: "security.meshguard.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the API's types with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the API's types to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
