package profile

import (
	"context"
	"slices"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/expectations"
)

// profilesForForeign enqueues the profiles a foreign object can weaken: those of its namespace,
// and every Istio profile when it is in Istio's root namespace (whose policies apply mesh-wide).
func (r *Reconciler) profilesForForeign(ctx context.Context, o client.Object) []reconcile.Request {
	var list v1alpha1.MeshSecurityProfileList
	opts := []client.ListOption{}
	root := o.GetNamespace() == r.RenderOptions.RootNamespace()
	if !root {
		opts = append(opts, client.InNamespace(o.GetNamespace()))
	}
	if err := r.List(ctx, &list, opts...); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for _, p := range list.Items {
		if root && p.Namespace != o.GetNamespace() && p.Spec.GetMesh() == v1alpha1.MeshLinkerd {
			continue
		}
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: p.Namespace, Name: p.Name}})
	}
	if root || o.GetNamespace() == "" {
		return reqs
	}
	// The sender's side of an expectation: a policy of a source namespace (its egress) can decide it.
	var all v1alpha1.MeshSecurityProfileList
	if err := r.List(ctx, &all); err != nil {
		return reqs
	}
	for i := range all.Items {
		p := &all.Items[i]
		if p.Namespace != o.GetNamespace() && slices.Contains(expectations.SourceNamespaces(p), o.GetNamespace()) {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: p.Namespace, Name: p.Name}})
		}
	}
	return reqs
}
