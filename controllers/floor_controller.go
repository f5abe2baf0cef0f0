package controllers

import (
	"context"
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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

	corev1 "k8s.io/api/core/v1"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/merge"
	"github.com/meshguard/meshguard/internal/render"
)

// FloorReconciler gives each namespace without a MeshSecurityProfile the floor of the cluster
// profiles that select it, and removes exactly the floor's objects when none does any more.
// Requests are namespaces (Name only). A namespace with a profile is that profile's: its
// reconciler merges the floors in and takes over (prunes) the floor's objects.
type FloorReconciler struct {
	// Profiles is the MeshSecurityProfile reconciler whose apply, drift, prune and observe steps
	// the floor shares.
	Profiles *MeshSecurityProfileReconciler

	results *floorResults
	// changed tells the cluster profiles' status controller which of them to look at again.
	changed chan event.TypedGenericEvent[*v1alpha1.ClusterMeshSecurityProfile]
}

// Reconcile brings one namespace's floor objects to the merge of the cluster profiles selecting it.
func (r *FloorReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	ns := req.Name
	pr := r.Profiles
	floors, exists, err := pr.floorsFor(ctx, ns)
	if err != nil {
		return ctrl.Result{}, err
	}
	// The namespace's own profile carries the floor, or the namespace is going: nothing here.
	governing, err := pr.governingProfile(ctx, ns)
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
		_, err := pr.pruneFloorObjects(ctx, ns, nil)
		return ctrl.Result{}, errors.Join(err, r.releaseAnnotations(ctx, ns))
	}
	defer func() { r.notify(ctx, names(floors)) }()

	// Floors that cannot be merged: nothing new from any of them, each reports the conflict.
	merged, err := merge.Merge(floors, nil)
	var conflict *merge.ConflictError
	if errors.As(err, &conflict) {
		r.results.set(ns, &floorResult{floors: names(floors), conflict: conflict.Error()})
		return ctrl.Result{}, nil
	}
	if err != nil {
		return ctrl.Result{}, err
	}

	// The oldest floor owns the objects; render them as that floor's in-memory profile.
	gov := merge.Governor(floors)
	p := render.FloorProfile(gov, ns, merged.Spec)
	p.Annotations = map[string]string{annotationFloorOf: gov.Name}
	if last := r.results.get(ns); last != nil && last.governor == gov.Name {
		// Lets the apply step tell a deleted object (drift) from a new one.
		p.Status.Resources = last.rows
	}
	res, err := render.Floor(gov, ns, merged.Spec, pr.RenderOptions)
	obs := &observation{audit: p.Spec.Enforcement == v1alpha1.EnforcementAudit}
	switch {
	case err != nil:
		obs.invalid = err
	case len(res.Unsupported) > 0:
		obs.unsupported = res.Unsupported
	case pr.istioRemoteStopped(ctx, p, obs):
		result = ctrl.Result{RequeueAfter: pendingRequeue}
	default:
		result = r.apply(ctx, p, res, obs)
	}
	applyStatus(p, obs)
	recordMetrics(p, obs)
	ready, reason, msg := conditionOf(p.Status.Conditions, v1alpha1.ConditionReady)
	fr := &floorResult{floors: names(floors), governor: gov.Name, ready: ready == metav1.ConditionTrue, reason: reason, message: msg, rows: p.Status.Resources}
	if eff, _, effMsg := conditionOf(p.Status.Conditions, v1alpha1.ConditionEffective); eff == metav1.ConditionFalse {
		fr.weakens = effMsg
	}
	if last := r.results.get(ns); last != nil && last.governor != gov.Name {
		forgetProfile(ns, last.governor)
	}
	r.results.set(ns, fr)
	if err != nil {
		return ctrl.Result{}, reconcile.TerminalError(err)
	}
	return result, errors.Join(obs.applyErrs...)
}

// apply is the namespace profile's pipeline on the floor's objects: apply, prune, observe.
func (r *FloorReconciler) apply(ctx context.Context, p *v1alpha1.MeshSecurityProfile, res *render.Result, obs *observation) ctrl.Result {
	pr := r.Profiles
	obs.rows = pr.applyAll(ctx, p, res.Objects)
	if row := pr.applyNamespaceAnnotations(ctx, p, res.NamespaceAnnotations); row != nil {
		obs.rows = append(obs.rows, *row)
	}
	// Prune what a floor generated here before and no longer wants (another floor may govern now).
	if !obs.audit {
		keep := map[string]bool{}
		for _, o := range res.Objects {
			keep[objectKey(o.GroupVersionKind(), o.GetName())] = true
		}
		if _, err := pr.pruneFloorObjects(ctx, p.Namespace, keep); err != nil {
			obs.applyErrs = append(obs.applyErrs, err)
		}
	}
	obs.external, _, obs.externalErr = pr.observeExternal(ctx, p, res.Objects)
	rep, err := pr.observeCertificates(ctx, p)
	obs.certs, obs.certErr = &rep, err
	result := ctrl.Result{RequeueAfter: certificateRecheck(rep, pr.now(), pr.CertificateRecheck)}
	if obs.pending() && (result.RequeueAfter == 0 || result.RequeueAfter > pendingRequeue) {
		result.RequeueAfter = pendingRequeue
	}
	for _, row := range obs.rows {
		if row.retryAfter > 0 && (result.RequeueAfter == 0 || row.retryAfter < result.RequeueAfter) {
			result.RequeueAfter = row.retryAfter
		}
	}
	return result
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
	if err := r.Profiles.Get(ctx, types.NamespacedName{Name: ns}, m); err != nil {
		return client.IgnoreNotFound(err)
	}
	owner, ok := m.Annotations[AnnotationNamespaceOwner]
	if !ok || !m.DeletionTimestamp.IsZero() {
		return nil
	}
	p := &v1alpha1.MeshSecurityProfile{}
	p.Name, p.Namespace = owner, ns
	if err := r.Profiles.applyNamespace(ctx, p, nil); client.IgnoreNotFound(err) != nil {
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
// reconciler r (already set up): the floor controller (per namespace) and the status controller
// (per cluster profile). Without the ClusterMeshSecurityProfile CRD it registers nothing.
func SetupFloors(mgr ctrl.Manager, r *MeshSecurityProfileReconciler, opts controller.Options) error {
	if !r.floorsServed() {
		ctrl.Log.WithName("floors").Info("ClusterMeshSecurityProfile CRD not installed: cluster floors are off")
		return nil
	}
	// Events about a floor's in-memory profile go to its cluster profile.
	r.Recorder = floorEvents{EventRecorder: r.Recorder}
	if err := r.watchFloors(mgr); err != nil {
		return err
	}
	f := &FloorReconciler{Profiles: r, results: newFloorResults(),
		changed: make(chan event.TypedGenericEvent[*v1alpha1.ClusterMeshSecurityProfile], 1024)}

	toNamespace := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: o.GetNamespace()}}}
	})
	allNamespaces := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, _ client.Object) []reconcile.Request {
		list := namespaceMetaList()
		if err := r.List(ctx, list); err != nil {
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
		WithOptions(withRetryLimit(opts, r.MaxRetryBackoff))
	// A namespace's istio-ca-root-cert (the only ConfigMaps cached) or a mesh CA changing: the
	// floor's certificate verdict is rechecked at once, as a profile's is.
	b = b.Watches(&corev1.ConfigMap{}, toNamespace)
	floorNamespaces := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return f.results.requests()
	})
	for _, s := range r.caSources {
		b = b.WatchesRawSource(source.Kind[client.Object](s.cache, s.obj.DeepCopyObject().(client.Object), floorNamespaces))
	}
	// Drift on the floor's objects: those whose controller is a cluster profile.
	byFloor := predicate.NewPredicateFuncs(func(o client.Object) bool {
		for _, ref := range o.GetOwnerReferences() {
			if ref.Controller != nil && *ref.Controller && ref.Kind == gvkClusterProfile.Kind {
				return true
			}
		}
		return false
	})
	for _, gvk := range render.Kinds() {
		if r.installed(gvk) {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(gvk)
			b = b.Watches(u, toNamespace, builder.WithPredicates(byFloor))
		}
	}
	if err := b.Complete(f); err != nil {
		return fmt.Errorf("floor controller: %w", err)
	}
	s := &ClusterProfileReconciler{Client: r.Client, Profiles: r, results: f.results}
	return s.setupWithManager(mgr, f.changed, withRetryLimit(opts, r.MaxRetryBackoff))
}

// watchFloors makes the profiles' reconciler merge a floor as soon as it changes: a cluster
// profile's spec (every profile is looked at again: its old selection is not known) or a
// namespace's labels (its profiles).
func (r *MeshSecurityProfileReconciler) watchFloors(mgr ctrl.Manager) error {
	if r.controller == nil {
		return fmt.Errorf("set up the MeshSecurityProfile reconciler before the floors")
	}
	profilesOf := func(ctx context.Context, namespace string) []reconcile.Request {
		var list v1alpha1.MeshSecurityProfileList
		var opts []client.ListOption
		if namespace != "" {
			opts = append(opts, client.InNamespace(namespace))
		}
		if err := r.List(ctx, &list, opts...); err != nil {
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(list.Items))
		for _, p := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: p.Namespace, Name: p.Name}})
		}
		return reqs
	}
	if err := r.controller.Watch(source.Kind[client.Object](mgr.GetCache(), &v1alpha1.ClusterMeshSecurityProfile{},
		handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, _ client.Object) []reconcile.Request { return profilesOf(ctx, "") }),
		predicate.GenerationChangedPredicate{})); err != nil {
		return fmt.Errorf("watch ClusterMeshSecurityProfiles: %w", err)
	}
	if err := r.controller.Watch(source.Kind[client.Object](mgr.GetCache(), namespaceMeta(),
		handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request { return profilesOf(ctx, o.GetName()) }),
		predicate.LabelChangedPredicate{}, predicate.Funcs{CreateFunc: func(event.CreateEvent) bool { return false }})); err != nil {
		return fmt.Errorf("watch Namespaces: %w", err)
	}
	return nil
}
