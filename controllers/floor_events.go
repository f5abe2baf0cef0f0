package controllers

import (
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// annotationFloorOf marks the in-memory profile the floor controller renders for a namespace
// without a profile of its own (render.FloorProfile). It never reaches the API server: events
// about such a profile are recorded on the cluster profile it stands for.
const annotationFloorOf = "security.meshguard.dev/floor-of"

// floorEvents records events as the wrapped recorder does, except that an event about a floor's
// in-memory profile goes to its ClusterMeshSecurityProfile, with the namespace in the note. The
// apply, drift and prune steps are shared with MeshSecurityProfiles and record events on "their
// profile"; this keeps them unaware of floors.
type floorEvents struct {
	recorder.EventRecorder
}

func (f floorEvents) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	regarding, note, args = f.redirect(regarding, note, args)
	f.EventRecorder.Eventf(regarding, related, eventtype, reason, action, note, args...)
}

func (f floorEvents) AnnotatedEventf(regarding, related runtime.Object, annotations map[string]string, eventtype, reason, action, note string, args ...any) {
	regarding, note, args = f.redirect(regarding, note, args)
	f.EventRecorder.AnnotatedEventf(regarding, related, annotations, eventtype, reason, action, note, args...)
}

func (floorEvents) redirect(regarding runtime.Object, note string, args []any) (runtime.Object, string, []any) {
	p, ok := regarding.(*v1alpha1.MeshSecurityProfile)
	if !ok || p.Annotations[annotationFloorOf] == "" {
		return regarding, note, args
	}
	c := &v1alpha1.ClusterMeshSecurityProfile{}
	c.Name, c.UID = p.Annotations[annotationFloorOf], p.UID
	c.SetGroupVersionKind(gvkClusterProfile)
	return c, "namespace %s: " + note, append([]any{p.Namespace}, args...)
}
