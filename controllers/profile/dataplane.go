package profile

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/types"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/controllers/pipeline"
	"github.com/meshguard/meshguard/internal/render"
)

// dataPlaneOptions adds the namespace's data plane facts to the render options of an Istio profile.
func (r *Reconciler) dataPlaneOptions(ctx context.Context, p *v1alpha1.MeshSecurityProfile) (render.Options, error) {
	opts := r.RenderOptions
	if r.dataPlane == nil || p.Spec.GetMesh() != v1alpha1.MeshIstio {
		return opts, nil
	}
	ns := pipeline.NamespaceMeta()
	if err := r.Get(ctx, types.NamespacedName{Name: p.Namespace}, ns); err != nil {
		return opts, fmt.Errorf("get Namespace %s: %w", p.Namespace, err)
	}
	facts, err := r.dataPlane.Gather(ctx, ns.Labels, p.Namespace)
	if err != nil {
		return opts, err
	}
	opts.DataPlane = facts
	opts.IstioSourceServiceAccounts = r.dataPlane.SourceServiceAccounts(ctx, r.APIReader)
	return opts, nil
}
