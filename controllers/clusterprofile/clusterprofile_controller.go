package clusterprofile

import (
	"context"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
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
	"github.com/meshguard/meshguard/controllers/pipeline"
)

// Reconciler writes the status of ClusterMeshSecurityProfiles: how many of the
// namespaces they select are at the floor, and which are not and why. It writes nothing else: the
// floor itself is applied by the namespaces' profiles and the floor reconciler (controllers/floor).
type Reconciler struct {
	client.Client
	// pipe gives the floors' selection and the recorder, shared with the other reconcilers.
	pipe    *pipeline.Pipeline
	results *pipeline.FloorResults
}

// New returns the status reconciler of the cluster profiles over the pipeline's reads and
// recorder and the floor controller's verdicts.
func New(pipe *pipeline.Pipeline, results *pipeline.FloorResults) *Reconciler {
	return &Reconciler{Client: pipe.Client, pipe: pipe, results: results}
}

// Reconcile summarises one cluster profile's namespaces into its status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	c := &v1alpha1.ClusterMeshSecurityProfile{}
	if err := r.Get(ctx, req.NamespacedName, c); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !c.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	before := c.DeepCopy()

	// Every namespace the floor selects, as its profile or the floor controller last saw it.
	states, excluded, err := r.namespaceStates(ctx, c)
	if err != nil {
		return ctrl.Result{}, err
	}
	pipeline.ClusterStatus(c, states)
	c.Status.ExcludedSystemNamespaces = excluded
	r.conflictEvents(before, c)
	if equality.Semantic.DeepEqual(before.Status, c.Status) {
		return ctrl.Result{}, nil
	}
	// An update, not a merge patch: a merge patch leaves out counts that stay 0 (equal in before and
	// after), and the columns would read <none> instead of 0. The resourceVersion guards it; a
	// conflict is retried with the fresh object.
	if err := r.Status().Update(ctx, c); err != nil {
		if apierrors.IsConflict(err) {
			return ctrl.Result{RequeueAfter: time.Second}, nil
		}
		return ctrl.Result{}, client.IgnoreNotFound(fmt.Errorf("update status of %s: %w", klog.KObj(c), err))
	}
	return ctrl.Result{}, nil
}

func (r *Reconciler) namespaceStates(ctx context.Context, c *v1alpha1.ClusterMeshSecurityProfile) (states []pipeline.NamespaceState, excluded []string, err error) {
	nsList := pipeline.NamespaceMetaList()
	if err := r.List(ctx, nsList); err != nil {
		return nil, nil, fmt.Errorf("list Namespaces: %w", err)
	}
	// Namespaces are listed in name order by the cache; sorted again for a stable status.
	sort.Slice(nsList.Items, func(i, j int) bool { return nsList.Items[i].Name < nsList.Items[j].Name })
	for _, ns := range nsList.Items {
		ok, why, err := r.pipe.System().Selects(c, ns.Name, ns.Labels)
		if why != "" && len(excluded) < v1alpha1.MaxListedNamespaces {
			excluded = append(excluded, ns.Name)
		}
		if err != nil || !ok || !ns.DeletionTimestamp.IsZero() {
			continue
		}
		p, err := pipeline.GoverningProfile(ctx, r.Client, ns.Name)
		if err != nil {
			return nil, nil, err
		}
		switch fr := r.results.Get(ns.Name); {
		case p != nil:
			states = append(states, pipeline.ProfileState(p, c.Name))
		case fr != nil:
			states = append(states, fr.State(ns.Name, c.Name))
		default:
			states = append(states, pipeline.NamespaceState{Name: ns.Name, Pending: true, Reason: v1alpha1.ReasonProgressing, Message: "the floor is not applied yet"})
		}
	}
	return states, excluded, nil
}

// conflictEvents raises a Warning when a namespace newly falls into a conflict between profiles.
func (r *Reconciler) conflictEvents(before, c *v1alpha1.ClusterMeshSecurityProfile) {
	was := map[string]bool{}
	for _, n := range before.Status.Namespaces {
		was[n.Name] = n.State == v1alpha1.NamespaceConflict
	}
	for _, n := range c.Status.Namespaces {
		if n.State == v1alpha1.NamespaceConflict && !was[n.Name] {
			r.pipe.Recorder.Eventf(c, nil, corev1.EventTypeWarning, v1alpha1.ReasonClusterProfileConflict, "Merge",
				"namespace %s: %s", n.Name, n.Message)
		}
	}
}

// SetupWithManager watches the cluster profiles (spec changes), the namespaces (labels), the
// namespace profiles (their status says whether the floor is in force there) and the floor
// controller's verdicts.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, changed <-chan event.TypedGenericEvent[*v1alpha1.ClusterMeshSecurityProfile], opts controller.Options) error {
	allFloors := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, _ client.Object) []reconcile.Request {
		var list v1alpha1.ClusterMeshSecurityProfileList
		if err := r.List(ctx, &list); err != nil {
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(list.Items))
		for _, c := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: c.Name}})
		}
		return reqs
	})
	floorsOfNamespace := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		floors, _, err := r.pipe.FloorsFor(ctx, o.GetNamespace())
		if err != nil {
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(floors))
		for _, c := range floors {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: c.Name}})
		}
		return reqs
	})
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.ClusterMeshSecurityProfile{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesMetadata(&corev1.Namespace{}, allFloors, builder.WithPredicates(predicate.Or[client.Object](
			predicate.LabelChangedPredicate{},
			predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool { return !e.ObjectNew.GetDeletionTimestamp().IsZero() }},
		))).
		Watches(&v1alpha1.MeshSecurityProfile{}, floorsOfNamespace).
		WatchesRawSource(source.Channel(changed, &handler.TypedEnqueueRequestForObject[*v1alpha1.ClusterMeshSecurityProfile]{})).
		Named("clustermeshsecurityprofile").
		// One worker: a status is a summary over all namespaces, cheap to compute from the cache.
		WithOptions(controller.Options{MaxConcurrentReconciles: 1, SkipNameValidation: opts.SkipNameValidation, RateLimiter: opts.RateLimiter}).
		Complete(r)
}
