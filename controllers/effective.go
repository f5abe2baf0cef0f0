package controllers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/effective"
	"github.com/meshguard/meshguard/internal/render"
)

// observeExternal finds objects meshguard does not own that weaken the profile. They are listed
// around the cache (which holds only meshguard's objects) on each reconcile, so they are seen at
// the latest at the next periodic recheck; they are only reported, never changed. desired are the
// objects the profile rendered to: effective reads the profile's own rules from them.
func (r *MeshSecurityProfileReconciler) observeExternal(ctx context.Context, p *v1alpha1.MeshSecurityProfile, desired []*unstructured.Unstructured) ([]v1alpha1.ExternalPolicy, error) {
	opts := effective.Options{IstioRootNamespace: r.istioRootNamespace()}
	versions := map[schema.GroupKind]schema.GroupVersionKind{}
	for _, gvk := range render.Kinds() {
		versions[gvk.GroupKind()] = gvk
	}
	var foreign []*unstructured.Unstructured
	for _, s := range effective.Scopes(p, opts) {
		gvk, ok := versions[s.GroupKind]
		if !ok || !r.installed(gvk) {
			continue
		}
		list := newUnstructuredList(gvk)
		if err := r.APIReader.List(ctx, list, client.InNamespace(s.Namespace)); err != nil {
			return nil, fmt.Errorf("list %s in %s: %w", gvk.Kind, s.Namespace, err)
		}
		for i := range list.Items {
			if !ownedBy(&list.Items[i], p) {
				foreign = append(foreign, &list.Items[i])
			}
		}
	}
	return effective.Find(p, desired, foreign, opts), nil
}

// istioRootNamespace is Istio's meshConfig.rootNamespace: --istio-root-namespace, else the Istio
// namespace.
func (r *MeshSecurityProfileReconciler) istioRootNamespace() string {
	if r.RenderOptions.IstioRootNamespace != "" {
		return r.RenderOptions.IstioRootNamespace
	}
	return r.RenderOptions.IstioNamespace
}
