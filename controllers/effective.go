package controllers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/effective"
)

// observeExternal finds objects meshguard does not own that weaken the profile. They are listed
// around the cache (which holds only meshguard's objects) on each reconcile, so they are seen at
// the latest at the next periodic recheck; they are only reported, never changed. desired are the
// objects the profile rendered to: effective reads the profile's own rules from them.
func (r *MeshSecurityProfileReconciler) observeExternal(ctx context.Context, p *v1alpha1.MeshSecurityProfile, desired []*unstructured.Unstructured) ([]v1alpha1.ExternalPolicy, error) {
	type scope struct {
		gvk       schema.GroupVersionKind
		namespace string
	}
	scopes := []scope{{gvkNetworkPolicy, p.Namespace}}
	root := r.istioRootNamespace()
	if p.Spec.Mesh != v1alpha1.MeshLinkerd {
		scopes = append(scopes,
			scope{gvkPeerAuthentication, p.Namespace}, scope{gvkIstioAuthzPolicy, p.Namespace},
			scope{gvkRequestAuthentication, p.Namespace},
			scope{gvkIstioAuthzPolicy, root}, scope{gvkPeerAuthentication, root}, scope{gvkRequestAuthentication, root})
	} else {
		// Linkerd's policy objects only act in their own namespace.
		scopes = append(scopes,
			scope{gvkLinkerdServer, p.Namespace}, scope{gvkLinkerdAuthzPolicy, p.Namespace},
			scope{gvkLinkerdMeshTLSAuthn, p.Namespace}, scope{gvkLinkerdNetworkAuthn, p.Namespace},
			scope{gvkLinkerdHTTPRoute, p.Namespace})
	}
	var foreign []*unstructured.Unstructured
	for _, s := range scopes {
		if !r.installed(s.gvk) {
			continue
		}
		list := newUnstructuredList(s.gvk)
		if err := r.APIReader.List(ctx, list, client.InNamespace(s.namespace)); err != nil {
			return nil, fmt.Errorf("list %s in %s: %w", s.gvk.Kind, s.namespace, err)
		}
		for i := range list.Items {
			if !ownedBy(&list.Items[i], p) {
				foreign = append(foreign, &list.Items[i])
			}
		}
	}
	return effective.Find(p, desired, foreign, effective.Options{IstioRootNamespace: root}), nil
}

// istioRootNamespace is Istio's meshConfig.rootNamespace: --istio-root-namespace, else the Istio
// namespace.
func (r *MeshSecurityProfileReconciler) istioRootNamespace() string {
	if r.RenderOptions.IstioRootNamespace != "" {
		return r.RenderOptions.IstioRootNamespace
	}
	return r.RenderOptions.IstioNamespace
}
