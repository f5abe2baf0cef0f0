package pipeline

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// FloorOwner is the governing ClusterMeshSecurityProfile as the owner of the floor's objects in
// one namespace without a profile of its own.
type FloorOwner struct {
	c         *v1alpha1.ClusterMeshSecurityProfile
	namespace string
	rows      []v1alpha1.ResourceStatus
}

// NewFloorOwner is c as the owner of the floor's objects in namespace, whose last rows are rows.
func NewFloorOwner(c *v1alpha1.ClusterMeshSecurityProfile, namespace string, rows []v1alpha1.ResourceStatus) FloorOwner {
	c = c.DeepCopy()
	c.SetGroupVersionKind(gvkClusterProfile)
	return FloorOwner{c: c, namespace: namespace, rows: rows}
}

func (o FloorOwner) controls(x metav1.Object) bool           { return ControlledBy(x, o.c.UID) }
func (o FloorOwner) label() string                           { return o.c.Name }
func (o FloorOwner) previousRows() []v1alpha1.ResourceStatus { return o.rows }
func (o FloorOwner) replaces(metav1.Object) bool             { return false }

// prunable: every floor's objects of the namespace, the governing floor's that it no longer
// wants and those of a floor that governed it before.
func (o FloorOwner) prunable(x metav1.Object) bool { return FloorObject(x) }

// eventf records the event on the cluster profile, naming the namespace: one cluster profile
// stands for its floor in many namespaces.
func (o FloorOwner) eventf(rec recorder.EventRecorder, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	rec.Eventf(o.c, related, eventtype, reason, action, "namespace %s: "+note, append([]any{o.namespace}, args...)...)
}

// Names are the names of floors, in their order.
func Names(floors []*v1alpha1.ClusterMeshSecurityProfile) []string {
	out := make([]string, 0, len(floors))
	for _, f := range floors {
		out = append(out, f.Name)
	}
	return out
}
