package profile

import (
	"context"
	"errors"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/controllers/pipeline"
	"github.com/meshguard/meshguard/internal/merge"
)

// withFloors merges the cluster profiles that select p's namespace into p's spec and records what
// it found in obs. It returns the profile to render and apply: p itself when no floor applies, else
// a copy with the merged spec (same name, namespace and UID, so generated objects stay p's). When
// the profiles cannot be merged it returns nil: nothing new is applied.
func (r *Reconciler) withFloors(ctx context.Context, p *v1alpha1.MeshSecurityProfile, obs *pipeline.Observation) (*v1alpha1.MeshSecurityProfile, error) {
	floors, _, err := r.pipe.FloorsFor(ctx, p.Namespace)
	if err != nil {
		return nil, err
	}
	obs.FloorsChecked = r.pipe.FloorsServed()
	if len(floors) == 0 {
		return p, nil
	}
	obs.Floors = pipeline.Names(floors)
	merged, err := merge.Merge(floors, p)
	var conflict *merge.ConflictError
	if errors.As(err, &conflict) {
		obs.FloorConflict = conflict.Error()
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	obs.Held = merged.Held
	obs.Opened = merged.Opened
	eff := p.DeepCopy()
	eff.Spec = merged.Spec
	obs.Audit = pipeline.Audits(&eff.Spec)
	return eff, nil
}

// baselineEvent raises a Warning on the profile when the set of fields held at a floor changes to
// a non-empty one, so that the team sees it where it looks (kubectl describe msp).
func (r *Reconciler) baselineEvent(before, p *v1alpha1.MeshSecurityProfile) {
	if len(p.Status.HeldAtFloor) == 0 || equality.Semantic.DeepEqual(before.Status.HeldAtFloor, p.Status.HeldAtFloor) {
		return
	}
	_, _, msg := pipeline.ConditionOf(p.Status.Conditions, v1alpha1.ConditionBaseline)
	r.Recorder.Eventf(p, nil, corev1.EventTypeWarning, v1alpha1.ReasonBelowBaseline, "Merge", "%s", msg)
}
