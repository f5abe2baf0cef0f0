package controllers

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	"sigs.k8s.io/controller-runtime/pkg/source"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/merge"
	"github.com/meshguard/meshguard/internal/render"
)

// FloorReconciler gives each namespace without a MeshSecurityProfile the floor of the cluster
// profiles that select it, and removes exactly the floor's objects when none does any more.
// Requests are namespaces (Name only). A namespace with a profile is that profile's: its
// reconciler merges the floors in and takes over (prunes) the floor's objects.
type FloorReconciler struct {
	// pipe is the apply → prune → observe → requeue pipeline the profiles share.
	pipe    *pipeline
	results *floorResults
	// changed tells the cluster profiles' status controller which of them to look at again.
	changed chan event.TypedGenericEvent[*v1alpha1.ClusterMeshSecurityProfile]
}

// Reconcile brings one namespace's floor objects to the merge of the cluster profiles selecting it.
func (r *FloorReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ns := req.Name
	floors, exists, err := r.pipe.floorsFor(ctx, ns)
	if err != nil {
		return ctrl.Result{}, err
	}
	// The namespace's own profile carries the floor, or the namespace is going: nothing here.
	governing, err := governingProfile(ctx, r.pipe, ns)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !exists || governing != nil {
		r.notify(ctx, append(r.forget(ns), names(floors)...))
		return ctrl.Result{}, nil
	}

	// No floor selects the namespace (any more): exactly the floor's objects go.
	if len(floors) == 0 {
		r.notify(ctx, r.forget(ns))
		var pruneErr error
		if err := r.pipe.deleteStale(ctx, ns, nil, floorObject, nil); err != nil {
			pruneErr = fmt.Errorf("prune floor objects: %w", err)
		}
		return ctrl.Result{}, errors.Join(pruneErr, r.releaseAnnotations(ctx, ns))
	}
	defer func() { r.notify(ctx, names(floors)) }()

	// Floors that cannot be merged: nothing new from any of them, each reports the conflict.
	merged, err := merge.Merge(floors, nil)
	var conflict *merge.ConflictError
	if errors.As(err, &conflict) {
		r.results.set(ns, &floorResult{floors: names(floors), conflict: floorConflictMessage(conflict.Error())})
		return ctrl.Result{}, nil
	}
	if err != nil {
		return ctrl.Result{}, err
	}

	// The oldest floor owns the objects. Its rows of the last reconcile tell the apply step a
	// deleted object (drift) from a new one.
	gov := merge.Governor(floors)
	last := r.results.get(ns)
	var previous []v1alpha1.ResourceStatus
	if last != nil && last.governor == gov.Name {
		previous = last.rows
	}
	obs := &observation{audit: audits(&merged.Spec)}
	res, err := render.Floor(gov, ns, merged.Spec, r.pipe.RenderOptions)
	var result ctrl.Result
	switch {
	case err != nil:
		obs.invalid = err
	case len(res.Unsupported) > 0:
		obs.unsupported = res.Unsupported
	case r.pipe.istioRemoteStopped(ctx, render.FloorProfile(gov, ns, merged.Spec), obs):
		result = ctrl.Result{RequeueAfter: pendingRequeue}
	default:
		// Apply → prune → observe → requeue, as for a profile, for the floor's objects.
		result = r.pipe.run(ctx, job{
			owner:  newFloorOwner(gov, ns, previous),
			intent: render.FloorProfile(gov, ns, merged.Spec),
			result: res,
		}, obs)
	}

	// The verdict on the namespace is the status a profile with these observations would have;
	// it is kept here (the namespace has no status of its own) for the cluster profiles' status.
	st := v1alpha1.MeshSecurityProfileStatus{Resources: previous}
	setStatus(&st, gov.Generation, len(merged.Spec.Expectations) > 0, obs)
	ready, reason, msg := conditionOf(st.Conditions, v1alpha1.ConditionReady)
	recordMetrics(ns, gov.Name, merged.Spec.GetMesh(), ready == metav1.ConditionTrue, obs)
	fr := &floorResult{floors: names(floors), governor: gov.Name, ready: ready == metav1.ConditionTrue, reason: reason, message: msg, rows: st.Resources}
	if eff, _, effMsg := conditionOf(st.Conditions, v1alpha1.ConditionEffective); eff == metav1.ConditionFalse {
		fr.weakens = effMsg
	}
	if last != nil && last.governor != gov.Name {
		forgetProfile(ns, last.governor)
	}
	r.results.set(ns, fr)
	if err != nil {
		return ctrl.Result{}, reconcile.TerminalError(err)
	}
	return result, errors.Join(obs.applyErrs...)
}

// floorOwner is the governing ClusterMeshSecurityProfile as the owner of the floor's objects in
// one namespace without a profile of its own.
type floorOwner struct {
	c         *v1alpha1.ClusterMeshSecurityProfile
	namespace string
	rows      []v1alpha1.ResourceStatus
}

func newFloorOwner(c *v1alpha1.ClusterMeshSecurityProfile, namespace string, rows []v1alpha1.ResourceStatus) floorOwner {
	c = c.DeepCopy()
	c.SetGroupVersionKind(gvkClusterProfile)
	return floorOwner{c: c, namespace: namespace, rows: rows}
}

func (o floorOwner) controls(x metav1.Object) bool           { return controlledBy(x, o.c.UID) }
func (o floorOwner) label() string                           { return o.c.Name }
func (o floorOwner) previousRows() []v1alpha1.ResourceStatus { return o.rows }
func (o floorOwner) replaces(metav1.Object) bool             { return false }

// prunable: every floor's objects of the namespace, the governing floor's that it no longer
// wants and those of a floor that governed it before.
func (o floorOwner) prunable(x metav1.Object) bool { return floorObject(x) }

// eventf records the event on the cluster profile, naming the namespace: one cluster profile
// stands for its floor in many namespaces.
func (o floorOwner) eventf(rec recorder.EventRecorder, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	rec.Eventf(o.c, related, eventtype, reason, action, "namespace %s: "+note, append([]any{o.namespace}, args...)...)
}

// forget drops what the floor controller knew of a namespace (its verdict and its metrics) and
// returns the floors that selected it.
func (r *FloorReconciler) forget(ns string) []string {
	if last := r.results.get(ns); last != nil && last.governor != "" {
		forgetProfile(ns, last.governor)
	}
	return r.results.forget(ns)
}

// releaseAnnotations removes the annotations a Linkerd floor set on a namespace that has no profile
// and no floor any more (server-side apply of none, as a profile's deletion does). Without a profile
// in the namespace, meshguard's owner annotation can only name a floor.
func (r *FloorReconciler) releaseAnnotations(ctx context.Context, ns string) error {
	m := namespaceMeta()
	if err := r.pipe.Get(ctx, types.NamespacedName{Name: ns}, m); err != nil {
		return client.IgnoreNotFound(err)
	}
	owner, ok := m.Annotations[AnnotationNamespaceOwner]
	if !ok || !m.DeletionTimestamp.IsZero() {
		return nil
	}
	if err := r.pipe.applyNamespace(ctx, ns, owner, nil); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("remove the floor's annotations from Namespace %s: %w", ns, err)
	}
	return nil
}

// notify asks the status controller to look at these cluster profiles again.
func (r *FloorReconciler) notify(ctx context.Context, floors []string) {
	for _, n := range floors {
		c := &v1alpha1.ClusterMeshSecurityProfile{}
		c.Name = n
		select {
		case r.changed <- event.TypedGenericEvent[*v1alpha1.ClusterMeshSecurityProfile]{Object: c}:
		case <-ctx.Done():
			return
		}
	}
}

func names(floors []*v1alpha1.ClusterMeshSecurityProfile) []string {
	out := make([]string, 0, len(floors))
	for _, f := range floors {
		out = append(out, f.Name)
	}
	return out
}

// SetupFloors registers the two controllers of ClusterMeshSecurityProfiles next to the profiles'
// reconciler profiles, whose settings and pipeline they share (before or after its own setup):
// the floor controller (per namespace) and the status controller (per cluster profile). Without
// the ClusterMeshSecurityProfile CRD it registers nothing.
func SetupFloors(mgr ctrl.Manager, profiles *MeshSecurityProfileReconciler, opts controller.Options) error {
	pipe, err := profiles.sharedPipeline(mgr)
	if err != nil {
		return err
	}
	if !pipe.floorsServed() {
		ctrl.Log.WithName("floors").Info("ClusterMeshSecurityProfile CRD not installed: cluster floors are off")
		return nil
	}
	f := &FloorReconciler{pipe: pipe, results: newFloorResults(),
		changed: make(chan event.TypedGenericEvent[*v1alpha1.ClusterMeshSecurityProfile], 1024)}
	opts = withRetryLimit(opts, profiles.MaxRetryBackoff)

	toNamespace := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: o.GetNamespace()}}}
	})
	allNamespaces := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, _ client.Object) []reconcile.Request {
		list := namespaceMetaList()
		if err := pipe.List(ctx, list); err != nil {
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(list.Items))
		for _, n := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: n.Name}})
		}
		return reqs
	})
	b := ctrl.NewControllerManagedBy(mgr).
		Named("floor").
		// A namespace created, relabelled or deleted: its floor changes at once.
		WatchesMetadata(&corev1.Namespace{}, &handler.EnqueueRequestForObject{}, builder.WithPredicates(predicate.Or[client.Object](
			predicate.LabelChangedPredicate{},
			predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool { return !e.ObjectNew.GetDeletionTimestamp().IsZero() }},
		))).
		// A cluster profile's spec or existence changes which namespaces it selects, and what.
		Watches(&v1alpha1.ClusterMeshSecurityProfile{}, allNamespaces, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		// A namespace profile created or deleted takes the floor over, or hands it back.
		Watches(&v1alpha1.MeshSecurityProfile{}, toNamespace, builder.WithPredicates(predicate.Funcs{
			UpdateFunc:  func(e event.UpdateEvent) bool { return !e.ObjectNew.GetDeletionTimestamp().IsZero() },
			GenericFunc: func(event.GenericEvent) bool { return false },
		})).
		WithOptions(opts)
	// A namespace's istio-ca-root-cert (the only ConfigMaps cached) or a mesh CA changing: the
	// floor's certificate verdict is rechecked at once, as a profile's is.
	b = b.Watches(&corev1.ConfigMap{}, toNamespace)
	floorNamespaces := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return f.results.requests()
	})
	for _, s := range pipe.caSources {
		b = b.WatchesRawSource(source.Kind[client.Object](s.cache, s.obj.DeepCopyObject().(client.Object), floorNamespaces))
	}
	// Drift on the floor's objects: those whose controller is a cluster profile. Kinds installed
	// later are watched from the first reconcile that finds them (pipeline.ensureWatch).
	byFloor := predicate.NewPredicateFuncs(func(o client.Object) bool { return floorObject(o) })
	for _, gvk := range render.Kinds() {
		if pipe.installed(gvk) {
			b = b.Watches(newUnstructured(gvk), toNamespace, builder.WithPredicates(byFloor))
		}
	}
	c, err := b.Build(f)
	if err != nil {
		return fmt.Errorf("floor controller: %w", err)
	}
	pipe.onNewKind(func(gvk schema.GroupVersionKind) error {
		if err := c.Watch(source.Kind[client.Object](pipe.cache, newUnstructured(gvk), toNamespace, byFloor)); err != nil {
			return fmt.Errorf("watch %s: %w", gvk.Kind, err)
		}
		return nil
	})
	s := &ClusterProfileReconciler{Client: pipe.Client, pipe: pipe, results: f.results}
	return s.setupWithManager(mgr, f.changed, opts)
}
