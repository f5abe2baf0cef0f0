package render

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// ClusterOwnerReference is the controller reference from an object generated for a namespace
// without a profile of its own to the ClusterMeshSecurityProfile whose floor it carries. A
// cluster-scoped owner of namespaced dependents is allowed
// (https://kubernetes.io/docs/concepts/overview/working-with-objects/owners-dependents/), so the
// garbage collector removes the floor's objects with the cluster profile.
func ClusterOwnerReference(c *v1alpha1.ClusterMeshSecurityProfile) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion:         v1alpha1.GroupVersion.String(),
		Kind:               "ClusterMeshSecurityProfile",
		Name:               c.Name,
		UID:                c.UID,
		Controller:         ptr.To(true),
		BlockOwnerDeletion: ptr.To(true),
	}
}

// FloorProfile is the profile render is given for a namespace without a profile of its own: the
// merged spec under the governing cluster profile's name (generated names and the profile label
// are <cluster profile>-…), in the namespace.
func FloorProfile(c *v1alpha1.ClusterMeshSecurityProfile, namespace string, spec v1alpha1.MeshSecurityProfileSpec) *v1alpha1.MeshSecurityProfile {
	return &v1alpha1.MeshSecurityProfile{
		ObjectMeta: metav1.ObjectMeta{Name: c.Name, Namespace: namespace, UID: c.UID, Generation: c.Generation, CreationTimestamp: c.CreationTimestamp},
		Spec:       *spec.DeepCopy(),
	}
}

// Floor renders the merged spec of a namespace without a profile of its own, owned by the
// cluster profile c.
func Floor(c *v1alpha1.ClusterMeshSecurityProfile, namespace string, spec v1alpha1.MeshSecurityProfileSpec, opts Options) (*Result, error) {
	res, err := Render(FloorProfile(c, namespace, spec), opts)
	if err != nil {
		return nil, err
	}
	ref := ClusterOwnerReference(c)
	for _, o := range res.Objects {
		o.SetOwnerReferences([]metav1.OwnerReference{ref})
	}
	return res, nil
}
