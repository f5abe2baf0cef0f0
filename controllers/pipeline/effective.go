package pipeline

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/dataplane"
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
// namespace, and the admin network policies) and, when p has expectations, the NetworkPolicies of
// their sources' namespaces (the egress side of each request) and every other extra policy kind
// (effective.ExtraKinds: cluster-wide, or in the profile's and the sources' namespaces), which
// their evaluation also needs.
func policyScopes(p *v1alpha1.MeshSecurityProfile, opts effective.Options) []policyScope {
	var out []policyScope
	seen := map[effective.Scope]bool{}
	add := func(s effective.Scope, judged bool) {
		if !seen[s] {
			seen[s] = true
			out = append(out, policyScope{Scope: s, judged: judged})
		}
	}
	for _, s := range effective.Scopes(p, opts) {
		add(s, true)
	}
	sources := expectations.SourceNamespaces(p)
	for _, ns := range sources {
		add(effective.Scope{GroupKind: meshapi.GVKNetworkPolicy.GroupKind(), Namespace: ns}, false)
	}
	if len(p.Spec.Expectations) == 0 {
		return out
	}
	for _, k := range effective.ExtraKinds() {
		switch {
		case k.Cluster:
			add(effective.Scope{GroupKind: k.GroupKind, Namespace: ""}, false)
		case k.GroupKind.Group == "policy.linkerd.io":
			// Linkerd's authorizations act on Servers of their own namespace only.
			add(effective.Scope{GroupKind: k.GroupKind, Namespace: p.Namespace}, false)
		default:
			for _, ns := range append([]string{p.Namespace}, sources...) {
				add(effective.Scope{GroupKind: k.GroupKind, Namespace: ns}, false)
			}
		}
	}
	return out
}

// observeExternal finds objects meshguard does not own that weaken the profile; they are only
// reported, never changed. rendered is what the profile rendered to: effective reads the profile's own
// rules and its namespace default from it. The metadata of foreign objects is watched (foreign.go), so a new
// or changed foreign policy requeues the profiles it can affect at once. Full objects are read
// from the API server only for this profile's scopes, and only when the metadata there changed
// since the last look: a reconcile triggered by the profile's own children reads nothing. A
// profile with expectations needs every live policy object for their evaluation (listPolicies,
// returned as livePolicies); without expectations the second result is nil.
func (r *Pipeline) observeExternal(ctx context.Context, own owner, p *v1alpha1.MeshSecurityProfile, rendered *render.Result, waypoints *dataplane.Facts) ([]v1alpha1.ExternalPolicy, *livePolicies, error) {
	desired := effective.Desired{Objects: rendered.Objects, NamespaceAnnotations: rendered.NamespaceAnnotations}
	opts := effective.Options{Facts: r.RenderOptions.Facts}
	nsMeta, err := r.namespaceMetadata(ctx, p.Namespace)
	if err != nil {
		return nil, nil, err
	}
	if nsMeta != nil {
		opts.NamespaceLabels = nsMeta.Labels
		// Foreign targetRefs policies are judged against the pods behind their waypoint; when no
		// waypoint can be known (no Gateway CRD watched), waypoints is nil and they are judged as
		// before (no facts).
		opts.DataPlane = waypoints
	}
	// Pods the mesh does not cover are reported with the foreign objects (audit E9).
	pods, err := r.uncoveredPods(ctx, p, nsMeta)
	if err != nil {
		return nil, nil, err
	}
	if len(p.Spec.Expectations) > 0 {
		ext, live, err := r.listPolicies(ctx, own, p, desired, opts)
		return append(ext, pods...), live, err
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
		gvk, ok := r.versionOf(s.GroupKind)
		if !ok {
			continue
		}
		found, known, err := r.Foreign.fingerprint(ctx, gvk, s.Namespace)
		if err != nil {
			return nil, nil, err
		}
		labelled := newUnstructuredList(gvk)
		if err := r.List(ctx, labelled, client.InNamespace(s.Namespace), client.UnsafeDisableDeepCopy); err != nil {
			return nil, nil, fmt.Errorf("list %s in %s: %w", gvk.Kind, s.Namespace, err)
		}
		for i := range labelled.Items {
			if o := &labelled.Items[i]; !own.controls(o) {
				found = append(found, gvk.Kind+"/"+o.GetNamespace()+"/"+o.GetName()+"@"+o.GetResourceVersion())
			}
		}
		complete = complete && known
		if !known || len(found) > 0 {
			toRead = append(toRead, scope{gvk, s.Namespace})
		}
		lines = append(lines, found...)
	}
	if opts.DataPlane != nil && len(opts.DataPlane.Gateways) > 0 {
		lines = append(lines, "data plane "+fmt.Sprint(*opts.DataPlane))
	}
	key := memoKey(p.Generation, append(lines, "namespace labels "+fmt.Sprint(opts.NamespaceLabels)))
	if complete {
		if res, ok := r.Foreign.remembered(p, key); ok {
			return append(res, pods...), nil, nil
		}
	}
	var foreign []*unstructured.Unstructured
	for _, s := range toRead {
		list := newUnstructuredList(s.gvk)
		if err := r.APIReader.List(ctx, list, client.InNamespace(s.namespace)); err != nil {
			if apierrors.IsNotFound(err) {
				// The kind is no longer served (its CRD was removed): nobody's policies of it.
				continue
			}
			return nil, nil, fmt.Errorf("list %s in %s: %w", s.gvk.Kind, s.namespace, err)
		}
		for i := range list.Items {
			if !own.controls(&list.Items[i]) {
				foreign = append(foreign, &list.Items[i])
			}
		}
	}
	res := effective.Find(p, desired, foreign, opts)
	if complete {
		r.Foreign.remember(p, key, res)
	}
	return append(res, pods...), nil, nil
}

// listPolicies lists every policy object of the profile's scopes around the cache, for a profile
// with expectations: their evaluation needs the live objects, the profile's own included, so that
// the policies are read once per reconcile. It returns the weakening report too.
func (r *Pipeline) listPolicies(ctx context.Context, own owner, p *v1alpha1.MeshSecurityProfile, desired effective.Desired, opts effective.Options) ([]v1alpha1.ExternalPolicy, *livePolicies, error) {
	var foreign []*unstructured.Unstructured
	live := &livePolicies{origin: map[string]string{}}
	for _, s := range policyScopes(p, opts) {
		gvk, ok := r.versionOf(s.GroupKind)
		if !ok {
			continue
		}
		list := newUnstructuredList(gvk)
		if err := r.APIReader.List(ctx, list, client.InNamespace(s.Namespace)); err != nil {
			if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
				// The kind is no longer served (its CRD was removed): nobody's policies of it.
				continue
			}
			return nil, nil, fmt.Errorf("list %s in %s: %w", gvk.Kind, s.Namespace, err)
		}
		for i := range list.Items {
			o := &list.Items[i]
			live.objects = append(live.objects, o)
			live.origin[refKey(o.GetKind(), o.GetNamespace(), o.GetName())] = origin(o, own)
			if s.judged && !own.controls(o) {
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

// origin is "" for an object the owner controls, the profile's name for one another
// MeshSecurityProfile controls, and the foreign mark otherwise.
func origin(o *unstructured.Unstructured, own owner) string {
	if own.controls(o) {
		return ""
	}
	if c := metav1.GetControllerOf(o); c != nil && c.Kind == "MeshSecurityProfile" && strings.HasPrefix(c.APIVersion, v1alpha1.GroupVersion.Group+"/") {
		return expectations.ProfileMark(o.GetNamespace(), c.Name)
	}
	return expectations.ForeignMark
}

func refKey(kind, namespace, name string) string { return kind + " " + namespace + "/" + name }

// namespaceMetadata reads the profile's Namespace (labels, annotations) from the metadata cache;
// nil when it is gone.
func (r *Pipeline) namespaceMetadata(ctx context.Context, name string) (*metav1.PartialObjectMetadata, error) {
	ns := NamespaceMeta()
	if err := r.Get(ctx, types.NamespacedName{Name: name}, ns); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("get Namespace %s: %w", name, err)
	}
	return ns, nil
}

// uncoveredPods lists the pods of a namespace that asks its mesh to inject every pod, and reports
// those the mesh does not cover (effective.UncoveredPods). Other namespaces are not listed: their
// pods are meshed one by one, if at all, and listing every namespace's pods on every reconcile
// would cost more than it tells.
func (r *Pipeline) uncoveredPods(ctx context.Context, p *v1alpha1.MeshSecurityProfile, ns *metav1.PartialObjectMetadata) ([]v1alpha1.ExternalPolicy, error) {
	if ns == nil || !effective.NamespaceMeshed(p.Spec.GetMesh(), ns.Labels, ns.Annotations) {
		return nil, nil
	}
	var pods corev1.PodList
	if err := r.APIReader.List(ctx, &pods, client.InNamespace(p.Namespace)); err != nil {
		return nil, fmt.Errorf("list Pods in %s: %w", p.Namespace, err)
	}
	return effective.UncoveredPods(p, pods.Items, true), nil
}
