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
	"github.com/meshguard/meshguard/internal/meshapi"
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
		out = append(out, policyScope{Scope: effective.Scope{GroupKind: meshapi.GVKNetworkPolicy.GroupKind(), Namespace: ns}})
	}
	return out
}

// observeExternal finds objects meshguard does not own that weaken the profile; they are only
// reported, never changed. desired are the objects the profile rendered to: effective reads the
// profile's own rules from them. The metadata of foreign objects is watched (foreign.go), so a new
// or changed foreign policy requeues the profiles it can affect at once. Full objects are read
// from the API server only for this profile's scopes, and only when the metadata there changed
// since the last look: a reconcile triggered by the profile's own children reads nothing. A
// profile with expectations needs every live policy object for their evaluation (listPolicies,
// returned as livePolicies); without expectations the second result is nil.
func (r *MeshSecurityProfileReconciler) observeExternal(ctx context.Context, p *v1alpha1.MeshSecurityProfile, desired []*unstructured.Unstructured) ([]v1alpha1.ExternalPolicy, *livePolicies, error) {
	opts := r.RenderOptions
	versions := map[schema.GroupKind]schema.GroupVersionKind{}
	for _, gvk := range render.Kinds() {
		versions[gvk.GroupKind()] = gvk
	}
	if len(p.Spec.Expectations) > 0 {
		return r.listPolicies(ctx, p, desired, opts, versions)
	}
	type scope struct {
		gvk       schema.GroupVersionKind
		namespace string
	}
	// What is there, from the caches: foreign metadata, and meshguard-labelled objects of others.
	var lines []string
	complete := true
	var toRead []scope
	for _, s := range effective.Scopes(p, opts) {
		gvk, ok := versions[s.GroupKind]
		if !ok || !r.installed(gvk) {
			continue
		}
		found, known, err := r.foreign.fingerprint(ctx, gvk, s.Namespace)
		if err != nil {
			return nil, nil, err
		}
		labelled := newUnstructuredList(gvk)
		if err := r.List(ctx, labelled, client.InNamespace(s.Namespace), client.UnsafeDisableDeepCopy); err != nil {
			return nil, nil, fmt.Errorf("list %s in %s: %w", gvk.Kind, s.Namespace, err)
		}
		for i := range labelled.Items {
			if o := &labelled.Items[i]; !ownedBy(o, p) {
				found = append(found, gvk.Kind+"/"+o.GetNamespace()+"/"+o.GetName()+"@"+o.GetResourceVersion())
			}
		}
		complete = complete && known
		if !known || len(found) > 0 {
			toRead = append(toRead, scope{gvk, s.Namespace})
		}
		lines = append(lines, found...)
	}
	key := memoKey(p.Generation, lines)
	if complete {
		if res, ok := r.foreign.remembered(p, key); ok {
			return res, nil, nil
		}
	}
	var foreign []*unstructured.Unstructured
	for _, s := range toRead {
		list := newUnstructuredList(s.gvk)
		if err := r.APIReader.List(ctx, list, client.InNamespace(s.namespace)); err != nil {
			return nil, nil, fmt.Errorf("list %s in %s: %w", s.gvk.Kind, s.namespace, err)
		}
		for i := range list.Items {
			if !ownedBy(&list.Items[i], p) {
				foreign = append(foreign, &list.Items[i])
			}
		}
	}
	res := effective.Find(p, desired, foreign, opts)
	if complete {
		r.foreign.remember(p, key, res)
	}
	return res, nil, nil
}

// listPolicies lists every policy object of the profile's scopes around the cache, for a profile
// with expectations: their evaluation needs the live objects, the profile's own included, so that
// the policies are read once per reconcile. It returns the weakening report too.
func (r *MeshSecurityProfileReconciler) listPolicies(ctx context.Context, p *v1alpha1.MeshSecurityProfile, desired []*unstructured.Unstructured, opts effective.Options, versions map[schema.GroupKind]schema.GroupVersionKind) ([]v1alpha1.ExternalPolicy, *livePolicies, error) {
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
	return r.RenderOptions.RootNamespace()
}
