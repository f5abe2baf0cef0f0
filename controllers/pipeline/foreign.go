package pipeline

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/source"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// foreignObjects knows, from metadata alone, every object of the generated kinds that is not
// labelled as meshguard's: the objects that can weaken a profile (a PeerAuthentication lowering
// mTLS, an ALLOW AuthorizationPolicy, a NetworkPolicy allowing more, a Linkerd Server or
// authorization of someone else) and the same-named objects meshguard must not overwrite. Its informers hold PartialObjectMetadata (name, namespace, labels,
// owners, resourceVersion; no spec, no annotations, no managed fields), so a cluster with
// thousands of foreign policies costs little memory, and no full foreign object is ever cached:
// full objects are read only for the namespaces of profiles, and only when their metadata changed.
type foreignObjects struct {
	cache cache.Cache
	// kinds are the kinds whose metadata is watched: those installed at start, and those found
	// served later (WatchLater).
	kindsMu sync.RWMutex
	kinds   map[schema.GroupVersionKind]bool

	// applied are the objects this process has applied. When neither cache holds one of them, the
	// caches may merely lag behind the apply, so the API server is asked; only an object meshguard
	// never wrote is created on the caches' word alone.
	applied sync.Map

	mu sync.Mutex
	// external remembers, per profile, what the last look at foreign policies found and on what
	// it was based, so that a reconcile whose inputs did not change reads nothing.
	external map[types.NamespacedName]externalMemo
}

// externalMemo is one profile's last foreign-policy verdict and the state it was computed from.
type externalMemo struct {
	uid    types.UID
	key    string
	result []v1alpha1.ExternalPolicy
}

// foreignSelector selects objects that are not labelled as meshguard's: exactly those that the
// manager's own cache (which selects meshguard's label) does not hold.
func foreignSelector() labels.Selector {
	req, err := labels.NewRequirement(v1alpha1.LabelManagedBy, selection.NotEquals, []string{v1alpha1.ManagedByValue})
	if err != nil {
		panic(err) // a constant requirement
	}
	return labels.NewSelector().Add(*req)
}

// stripToIdentity keeps only what telling objects apart needs.
func stripToIdentity(in any) (any, error) {
	if o, ok := in.(metav1.Object); ok {
		o.SetManagedFields(nil)
		o.SetAnnotations(nil)
	}
	return in, nil
}

// newForeignObjects creates the metadata cache for the installed kinds and adds it to the manager,
// which starts it and waits for it before any reconcile.
func newForeignObjects(mgr ctrl.Manager, kinds []schema.GroupVersionKind) (*foreignObjects, error) {
	c, err := cache.New(mgr.GetConfig(), cache.Options{
		Scheme:               mgr.GetScheme(),
		Mapper:               mgr.GetRESTMapper(),
		DefaultLabelSelector: foreignSelector(),
		DefaultTransform:     stripToIdentity,
	})
	if err != nil {
		return nil, fmt.Errorf("cache for foreign policies: %w", err)
	}
	if err := mgr.Add(c); err != nil {
		return nil, err
	}
	f := &foreignObjects{cache: c, kinds: map[schema.GroupVersionKind]bool{}, external: map[types.NamespacedName]externalMemo{}}
	for _, gvk := range kinds {
		if _, err := mgr.GetRESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version); err == nil {
			f.kinds[gvk] = true
		}
	}
	return f, nil
}

func partialObject(gvk schema.GroupVersionKind) *metav1.PartialObjectMetadata {
	o := &metav1.PartialObjectMetadata{}
	o.SetGroupVersionKind(gvk)
	return o
}

// Sources watch the metadata of every watched kind; mapFn says which profiles a change concerns.
func (f *foreignObjects) Sources(mapFn handler.MapFunc) []source.Source {
	var out []source.Source
	f.kindsMu.RLock()
	defer f.kindsMu.RUnlock()
	for _, gvk := range sortedKinds(f.kinds) {
		out = append(out, source.Kind[client.Object](f.cache, partialObject(gvk), Weakening(handler.EnqueueRequestsFromMapFunc(mapFn))))
	}
	return out
}

// exists says whether a foreign object of that name exists; known is false for a kind whose
// metadata is not watched and for an object meshguard applied before (the caller must ask the
// API server).
func (f *foreignObjects) exists(ctx context.Context, gvk schema.GroupVersionKind, key client.ObjectKey) (found, known bool, err error) {
	if !f.Watches(gvk) {
		return false, false, nil
	}
	if _, ok := f.applied.Load(appliedKey(gvk, key)); ok {
		return false, false, nil
	}
	err = f.cache.Get(ctx, key, partialObject(gvk))
	switch {
	case apierrors.IsNotFound(err):
		return false, true, nil
	case err != nil:
		return false, false, err
	}
	return true, true, nil
}

// Watches says whether the metadata of a kind is watched.
func (f *foreignObjects) Watches(gvk schema.GroupVersionKind) bool {
	if f == nil {
		return false
	}
	f.kindsMu.RLock()
	defer f.kindsMu.RUnlock()
	return f.kinds[gvk]
}

// WatchLater starts watching the metadata of a kind found served after the start; the source
// feeds mapFn's profiles to the controller. It is a no-op for a kind already watched.
func (f *foreignObjects) WatchLater(c controller.Controller, gvk schema.GroupVersionKind, mapFn handler.MapFunc) error {
	f.kindsMu.Lock()
	defer f.kindsMu.Unlock()
	if f.kinds[gvk] {
		return nil
	}
	if err := c.Watch(source.Kind[client.Object](f.cache, partialObject(gvk), handler.EnqueueRequestsFromMapFunc(mapFn))); err != nil {
		return fmt.Errorf("watch %s: %w", gvk.Kind, err)
	}
	f.kinds[gvk] = true
	return nil
}

// wrote records that meshguard applied the object.
func (f *foreignObjects) wrote(gvk schema.GroupVersionKind, key client.ObjectKey) {
	if f != nil {
		f.applied.Store(appliedKey(gvk, key), struct{}{})
	}
}

func appliedKey(gvk schema.GroupVersionKind, key client.ObjectKey) string {
	return gvk.GroupKind().String() + "/" + key.String()
}

// fingerprint lists, from the metadata cache, the foreign objects of a kind in a namespace as
// "kind/namespace/name@resourceVersion" lines; known is false for a kind that is not watched.
func (f *foreignObjects) fingerprint(ctx context.Context, gvk schema.GroupVersionKind, namespace string) (lines []string, known bool, err error) {
	if !f.Watches(gvk) {
		return nil, false, nil
	}
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	if err := f.cache.List(ctx, list, client.InNamespace(namespace)); err != nil {
		if meta.IsNoMatchError(err) {
			return nil, false, nil
		}
		return nil, false, err
	}
	for _, o := range list.Items {
		lines = append(lines, gvk.Kind+"/"+o.Namespace+"/"+o.Name+"@"+o.ResourceVersion)
	}
	return lines, true, nil
}

// remembered returns the last verdict for the profile when it was computed from the same key.
func (f *foreignObjects) remembered(p *v1alpha1.MeshSecurityProfile, key string) ([]v1alpha1.ExternalPolicy, bool) {
	if f == nil {
		return nil, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.external[client.ObjectKeyFromObject(p)]
	if !ok || m.uid != p.UID || m.key != key {
		return nil, false
	}
	return m.result, true
}

func (f *foreignObjects) remember(p *v1alpha1.MeshSecurityProfile, key string, result []v1alpha1.ExternalPolicy) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.external[client.ObjectKeyFromObject(p)] = externalMemo{uid: p.UID, key: key, result: result}
}

func (f *foreignObjects) Forget(key types.NamespacedName) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.external, key)
}

func sortedKinds(m map[schema.GroupVersionKind]bool) []schema.GroupVersionKind {
	out := make([]schema.GroupVersionKind, 0, len(m))
	for gvk := range m {
		out = append(out, gvk)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// memoKey joins what a verdict depends on.
func memoKey(generation int64, lines []string) string {
	sort.Strings(lines)
	return fmt.Sprintf("%d\n%s", generation, strings.Join(lines, "\n"))
}
