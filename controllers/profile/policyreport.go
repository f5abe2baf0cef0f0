package profile

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/controllers/pipeline"
	"github.com/meshguard/meshguard/internal/policyreport"
)

// +kubebuilder:rbac:groups=wgpolicyk8s.io,resources=policyreports,verbs=get;list;watch;create;patch;delete

// syncPolicyReport writes the profile's PolicyReport (internal/policyreport) when the API server
// serves the kind (Kyverno, Policy Reporter or the wg-policy CRDs installed it): only when it
// differs from the one there, so an unchanged status writes nothing; deleted when the profile no
// longer governs its namespace. Without the CRD it does nothing at all. The report is written in
// Audit mode too: like the status, it reports and changes nothing the mesh enforces.
func (r *Reconciler) syncPolicyReport(ctx context.Context, p *v1alpha1.MeshSecurityProfile) error {
	if r.pipe == nil || r.pipe.ServedKinds == nil || !p.DeletionTimestamp.IsZero() {
		return nil
	}
	gvk := policyreport.GroupVersionKind
	served, err := r.pipe.ServedKinds.Served(gvk, r.pipe.Now())
	if err != nil || !served {
		// Discovery failing is not the profile's problem: the next reconcile asks again.
		return nil
	}
	want := policyreport.Build(p)
	live := pipeline.NewUnstructured(gvk)
	// Read from the cache, which holds only objects labelled as meshguard's.
	err = r.Get(ctx, types.NamespacedName{Namespace: p.Namespace, Name: policyreport.Name(p.Name)}, live)
	found := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("get PolicyReport %s/%s: %w", p.Namespace, policyreport.Name(p.Name), err)
	}
	if want == nil {
		if found && pipeline.ControlledBy(live, p.UID) {
			if err := r.Delete(ctx, live); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("delete PolicyReport %s/%s: %w", p.Namespace, live.GetName(), err)
			}
		}
		return nil
	}
	if found && pipeline.SameReport(live.Object, want) {
		return nil
	}
	u := &unstructured.Unstructured{Object: want}
	if err := r.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(v1alpha1.FieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply PolicyReport %s/%s: %w", p.Namespace, u.GetName(), err)
	}
	return nil
}
