package pipeline

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// PendingRequeue is how often a profile waiting for a mesh's CRDs looks again.
const PendingRequeue = 30 * time.Second

// ProfileOwner is a MeshSecurityProfile as the owner of the objects generated for it.
type ProfileOwner struct{ p *v1alpha1.MeshSecurityProfile }

// NewProfileOwner is p as the owner of its generated objects.
func NewProfileOwner(p *v1alpha1.MeshSecurityProfile) ProfileOwner { return ProfileOwner{p} }

func (o ProfileOwner) controls(x metav1.Object) bool { return ControlledBy(x, o.p.UID) }
func (o ProfileOwner) label() string                 { return o.p.Name }
func (o ProfileOwner) previousRows() []v1alpha1.ResourceStatus {
	return o.p.Status.Resources
}

func (o ProfileOwner) eventf(rec recorder.EventRecorder, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	rec.Eventf(o.p, related, eventtype, reason, action, note, args...)
}

// prunable: the profile's own objects (its label and its controller reference).
func (o ProfileOwner) prunable(x metav1.Object) bool {
	return o.controls(x) && x.GetLabels()[v1alpha1.LabelProfile] == o.p.Name
}

// replaces: a profile carries the floors of its namespace (merged in), so it takes the floor's
// own objects over.
func (o ProfileOwner) replaces(x metav1.Object) bool { return FloorObject(x) }
