package controllers

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/effective"
	"github.com/meshguard/meshguard/internal/expectations"
	"github.com/meshguard/meshguard/internal/render"
)

// policyScope is a kind in a namespace whose live objects a reconcile reads: for the weakening
// report (effective) and, with expectations, for their evaluation.
type policyScope struct {
	effective.Scope
	// judged: the weakening report judges this scope's foreign objects.
	judged bool
}

// policyScopes are the scopes one reconcile of p reads, each once: those the weakening report
// judges (which hold every policy kind of the profile's mesh in its namespace and Istio's root
// namespace) and, when p has expectations, the NetworkPolicies of their sources' namespaces (the
// egress side of each request), which their evaluation also needs.
func policyScopes(p *v1alpha1.MeshSecurityProfile, opts effective.Options) []policyScope {
	var out []policyScope
	for _, s := range effective.Scopes(p, opts) {
		out = append(out, policyScope{Scope: s, judged: true})
	}
	for _, ns := range expectations.SourceNamespaces(p) {
		out = append(out, policyScope{Scope: effective.Scope{GroupKind: schema.GroupKind{Group: "networking.k8s.io", Kind: "NetworkPolicy"}, Namespace: ns}})
	}
	return out
}

// observeExternal finds objects meshguard does not own that weaken the profile. They are listed
// around the cache (which holds only meshguard's objects) on each reconcile, so they are seen at
// the latest at the next periodic recheck; they are only reported, never changed. desired are the
// objects the profile rendered to: effective reads the profile's own rules from them. It also
// returns every object it listed, the profile's own included, for the evaluation of
// expectations, so that the policies are read once per reconcile.
func (r *MeshSecurityProfileReconciler) observeExternal(ctx context.Context, p *v1alpha1.MeshSecurityProfile, desired []*unstructured.Unstructured) ([]v1alpha1.ExternalPolicy, *livePolicies, error) {
	opts := effective.Options{IstioRootNamespace: r.istioRootNamespace()}
	versions := map[schema.GroupKind]schema.GroupVersionKind{}
	for _, gvk := range render.Kinds() {
		versions[gvk.GroupKind()] = gvk
	}
	var foreign []*unstructured.Unstructured
	live := &livePolicies{origin: map[string]string{}}
	for _, s := range policyScopes(p, opts) {
		gvk, ok := versions[s.GroupKind]
		if !ok || !r.installed(gvk) {
			continue
		}
		list := newUnstructuredList(gvk)
		if err := r.APIReader.List(ctx, list, client.InNamespace(s.Namespace)); err != nil {
			if apierrors.IsNotFound(err) {
				// The kind is no longer served (its CRD was removed): nobody's policies of it.
				continue
			}
			return nil, nil, fmt.Errorf("list %s in %s: %w", gvk.Kind, s.Namespace, err)
		}
		for i := range list.Items {
			o := &list.Items[i]
			live.objects = append(live.objects, o)
			live.origin[refKey(o.GetKind(), o.GetNamespace(), o.GetName())] = origin(o, p)
			if s.judged && !ownedBy(o, p) {
				foreign = append(foreign, o)
			}
		}
	}
	return effective.Find(p, desired, foreign, opts), live, nil
}

// livePolicies are the policy objects one reconcile listed, and where each comes from.
type livePolicies struct {
	objects []*unstructured.Unstructured
	// origin is "" for the profile's own objects, else their mark in status.expectations.
	origin map[string]string
}

// origin is "" for an object the profile controls, the profile's name for one another
// MeshSecurityProfile controls, and the foreign mark otherwise.
func origin(o *unstructured.Unstructured, p *v1alpha1.MeshSecurityProfile) string {
	if ownedBy(o, p) {
		return ""
	}
	if c := metav1.GetControllerOf(o); c != nil && c.Kind == "MeshSecurityProfile" && strings.HasPrefix(c.APIVersion, v1alpha1.GroupVersion.Group+"/") {
		return expectations.ProfileMark(o.GetNamespace(), c.Name)
	}
	return expectations.ForeignMark
}

func refKey(kind, namespace, name string) string { return kind + " " + namespace + "/" + name }

// istioRootNamespace is Istio's meshConfig.rootNamespace: --istio-root-namespace, else the Istio
// namespace.
func (r *MeshSecurityProfileReconciler) istioRootNamespace() string {
	if r.RenderOptions.IstioRootNamespace != "" {
		return r.RenderOptions.IstioRootNamespace
	}
	return r.RenderOptions.IstioNamespace
}
