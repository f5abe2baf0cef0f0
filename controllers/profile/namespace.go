package profile

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/controllers/pipeline"
)

// syncFinalizer makes the finalizer match whether the profile sets namespace annotations: it is
// added before the first annotation is written, and removed right after meshguard's annotations
// are. Audit profiles write nothing, so they keep what they have. audit is the enforcement that
// applies, the merged profile's (a profile in Audit under an Enforce floor writes annotations,
// so it needs the finalizer). changed says whether the profile was patched.
func (r *Reconciler) syncFinalizer(ctx context.Context, p *v1alpha1.MeshSecurityProfile, audit, wantAnnotations bool) (changed bool, err error) {
	has := controllerutil.ContainsFinalizer(p, pipeline.FinalizerNamespaceAnnotations)
	switch {
	case audit || has == wantAnnotations:
		return false, nil
	case wantAnnotations:
		return true, r.patchFinalizer(ctx, p, true)
	}
	// Nothing to own any more: the annotations go, then the finalizer.
	if err := r.pipe.ApplyNamespace(ctx, p.Namespace, p.Name, nil); err != nil {
		return false, fmt.Errorf("remove annotations from Namespace %s: %w", p.Namespace, err)
	}
	return true, r.patchFinalizer(ctx, p, false)
}

// cleanupNamespace removes meshguard's namespace annotations of a deleted profile, then its finalizer.
func (r *Reconciler) cleanupNamespace(ctx context.Context, p *v1alpha1.MeshSecurityProfile) error {
	if !controllerutil.ContainsFinalizer(p, pipeline.FinalizerNamespaceAnnotations) {
		return nil
	}
	// An apply to a Namespace that is gone would create it: look first.
	err := r.APIReader.Get(ctx, types.NamespacedName{Name: p.Namespace}, &corev1.Namespace{})
	if client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("get Namespace %s: %w", p.Namespace, err)
	}
	// Removed whatever the enforcement: what meshguard set must not outlive the profile.
	if err == nil {
		if err := r.pipe.ApplyNamespace(ctx, p.Namespace, p.Name, nil); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("remove annotations from Namespace %s: %w", p.Namespace, err)
		}
	}
	return r.patchFinalizer(ctx, p, false)
}

func (r *Reconciler) patchFinalizer(ctx context.Context, p *v1alpha1.MeshSecurityProfile, add bool) error {
	orig := p.DeepCopy()
	changed := false
	if add {
		changed = controllerutil.AddFinalizer(p, pipeline.FinalizerNamespaceAnnotations)
	} else {
		changed = controllerutil.RemoveFinalizer(p, pipeline.FinalizerNamespaceAnnotations)
	}
	if !changed {
		return nil
	}
	if err := r.Patch(ctx, p, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		if add {
			// A profile deleted meanwhile must not get annotations written after it: nothing
			// would remove them.
			return fmt.Errorf("add finalizer: %w", err)
		}
		return client.IgnoreNotFound(fmt.Errorf("update finalizers: %w", err))
	}
	return nil
}
