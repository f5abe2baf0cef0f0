package floor

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	"sigs.k8s.io/controller-runtime/pkg/source"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/controllers/clusterprofile"
	"github.com/meshguard/meshguard/controllers/pipeline"
	"github.com/meshguard/meshguard/internal/merge"
	"github.com/meshguard/meshguard/internal/render"
)

// Reconciler gives each namespace without a MeshSecurityProfile the floor of the cluster
// profiles that select it, and removes exactly the floor's objects when none does any more.
// Requests are namespaces (Name only). A namespace with a profile is that profile's: its
// reconciler merges the floors in and takes over (prunes) the floor's objects.
type Reconciler struct {
	// pipe is the apply → prune → observe → requeue pipeline the profiles share.
	pipe    *pipeline.Pipeline
	results *pipeline.FloorResults
	// changed tells the cluster profiles' status controller which of them to look at again.
	changed chan event.TypedGenericEvent[*v1alpha1.ClusterMeshSecurityProfile]
}

// Reconcile brings one namespace's floor objects to the merge of the cluster profiles selecting it.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ns := req.Name
	floors, exists, err := r.pipe.FloorsFor(ctx, ns)
	if err != nil {
		return ctrl.Result{}, err
	}
	// The namespace's own profile carries the floor, or the namespace is going: nothing here.
	governing, err := pipeline.GoverningProfile(ctx, r.pipe, ns)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !exists || governing != nil {
		r.notify(ctx, append(r.forget(ns), pipeline.Names(floors)...))
		return ctrl.Result{}, nil
	}

	// No floor selects the namespace (any more): exactly the floor's objects go.
	if len(floors) == 0 {
		r.notify(ctx, r.forget(ns))
		var pruneErr error
		if err := r.pipe.DeleteStale(ctx, ns, nil, pipeline.FloorObject, nil); err != nil {
			pruneErr = fmt.Errorf("prune floor objects: %w", err)
		}
		return ctrl.Result{}, errors.Join(pruneErr, r.releaseAnnotations(ctx, ns))
	}
	defer func() { r.notify(ctx, pipeline.Names(floors)) }()

	// Floors that cannot be merged: nothing new from any of them, each reports the conflict.
	merged, err := merge.Merge(floors, nil)
	var conflict *merge.ConflictError
	if errors.As(err, &conflict) {
		r.results.Set(ns, &pipeline.FloorResult{Floors: pipeline.Names(floors), Conflict: pipeline.FloorConflictMessage(conflict.Error())})
		return ctrl.Result{}, nil
	}
	if err != nil {
		return ctrl.Result{}, err
	}

	// The oldest floor owns the objects. Its rows of the last reconcile tell the apply step a
	// deleted object (drift) from a new one.
	gov := merge.Governor(floors)
	last := r.results.Get(ns)
	var previous []v1alpha1.ResourceStatus
	if last != nil && last.Governor == gov.Name {
		previous = last.Rows
	}
	obs := &pipeline.Observation{Audit: pipeline.Audits(&merged.Spec)}
	res, err := render.Floor(gov, ns, merged.Spec, r.pipe.RenderOptions)
	var result ctrl.Result
	switch {
	case err != nil:
		obs.Invalid = err
	case len(res.Unsupported) > 0:
		obs.Unsupported = res.Unsupported
	case r.pipe.IstioRemoteStopped(ctx, render.FloorProfile(gov, ns, merged.Spec), obs):
		result = ctrl.Result{RequeueAfter: pipeline.PendingRequeue}
	default:
		// Apply → prune → observe → requeue, as for a profile, for the floor's objects.
		result = r.pipe.Run(ctx, pipeline.Job{
			Owner:  pipeline.NewFloorOwner(gov, ns, previous),
			Intent: render.FloorProfile(gov, ns, merged.Spec),
			Result: res,
		}, obs)
	}

	// The verdict on the namespace is the status a profile with these observations would have;
	// it is kept here (the namespace has no status of its own) for the cluster profiles' status.
	st := v1alpha1.MeshSecurityProfileStatus{Resources: previous}
	pipeline.SetStatus(&st, gov.Generation, len(merged.Spec.Expectations) > 0, obs)
	ready, reason, msg := pipeline.ConditionOf(st.Conditions, v1alpha1.ConditionReady)
	pipeline.RecordMetrics(ns, gov.Name, merged.Spec.GetMesh(), ready == metav1.ConditionTrue, obs)
	fr := &pipeline.FloorResult{Floors: pipeline.Names(floors), Governor: gov.Name, Ready: ready == metav1.ConditionTrue, Reason: reason, Message: msg, Rows: st.Resources}
	if eff, _, effMsg := pipeline.ConditionOf(st.Conditions, v1alpha1.ConditionEffective); eff == metav1.ConditionFalse {
		fr.Weakens = effMsg
	}
	if last != nil && last.Governor != gov.Name {
		pipeline.ForgetProfile(ns, last.Governor)
	}
	r.results.Set(ns, fr)
	if err != nil {
		return ctrl.Result{}, reconcile.TerminalError(err)
	}
	return result, errors.Join(obs.ApplyErrs...)
}

// forget drops what the floor controller knew of a namespace (its verdict and its metrics) and
// returns the floors that selected it.
func (r *Reconciler) forget(ns string) []string {
	if last := r.results.Get(ns); last != nil && last.Governor != "" {
		pipeline.ForgetProfile(ns, last.Governor)
	}
	return r.results.Forget(ns)
}

// releaseAnnotations removes the annotations a Linkerd floor set on a namespace that has no profile
// and no floor any more (server-side apply of none, as a profile's deletion does). Without a profile
// in the namespace, meshguard's owner annotation can only name a floor.
func (r *Reconciler) releaseAnnotations(ctx context.Context, ns string) error {
	m := pipeline.NamespaceMeta()
	if err := r.pipe.Get(ctx, types.NamespacedName{Name: ns}, m); err != nil {
		return client.IgnoreNotFound(err)
	}
	owner, ok := m.Annotations[pipeline.AnnotationNamespaceOwner]
	if !ok || !m.DeletionTimestamp.IsZero() {
		return nil
	}
	if err := r.pipe.ApplyNamespace(ctx, ns, owner, nil); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("remove the floor's annotations from Namespace %s: %w", ns, err)
	}
	return nil
}

// notify asks the status controller to look at these cluster profiles again.
func (r *Reconciler) notify(ctx context.Context, floors []string) {
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

// Setup registers the two controllers of ClusterMeshSecurityProfiles on the pipeline the
// profiles' reconciler shares (controllers.SetupFloors): the floor controller (per namespace) and
// the status controller (per cluster profile). Without the ClusterMeshSecurityProfile CRD it
// registers nothing.
func Setup(mgr ctrl.Manager, pipe *pipeline.Pipeline, maxRetryBackoff time.Duration, opts controller.Options) error {
	if !pipe.FloorsServed() {
		ctrl.Log.WithName("floors").Info("ClusterMeshSecurityProfile CRD not installed: cluster floors are off")
		return nil
	}
	f := &Reconciler{pipe: pipe, results: pipeline.NewFloorResults(),
		changed: make(chan event.TypedGenericEvent[*v1alpha1.ClusterMeshSecurityProfile], 1024)}
	opts = pipeline.WithRetryLimit(opts, maxRetryBackoff)

	toNamespace := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: o.GetNamespace()}}}
	})
	allNamespaces := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, _ client.Object) []reconcile.Request {
		list := pipeline.NamespaceMetaList()
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
		return f.results.Requests()
	})
	for _, s := range pipe.CaSources {
		b = b.WatchesRawSource(source.Kind[client.Object](s.Cache, s.Obj.DeepCopyObject().(client.Object), floorNamespaces))
	}
	// Drift on the floor's objects: those whose controller is a cluster profile. Kinds installed
	// later are watched from the first reconcile that finds them (pipeline.ensureWatch).
	byFloor := predicate.NewPredicateFuncs(func(o client.Object) bool { return pipeline.FloorObject(o) })
	for _, gvk := range render.Kinds() {
		if pipe.Installed(gvk) {
			b = b.Watches(pipeline.NewUnstructured(gvk), toNamespace, builder.WithPredicates(byFloor))
		}
	}
	c, err := b.Build(f)
	if err != nil {
		return fmt.Errorf("floor controller: %w", err)
	}
	pipe.OnNewKind(func(gvk schema.GroupVersionKind) error {
		if err := c.Watch(source.Kind[client.Object](pipe.Cache, pipeline.NewUnstructured(gvk), toNamespace, byFloor)); err != nil {
			return fmt.Errorf("watch %s: %w", gvk.Kind, err)
		}
		return nil
	})
	s := clusterprofile.New(pipe, f.results)
	return s.SetupWithManager(mgr, f.changed, opts)
}
