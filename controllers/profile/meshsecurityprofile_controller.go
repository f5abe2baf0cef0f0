package profile

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	"sigs.k8s.io/controller-runtime/pkg/source"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/controllers/pipeline"
	"github.com/meshguard/meshguard/internal/render"
)

// Reconciler turns MeshSecurityProfiles into mesh security objects.
type Reconciler struct {
	// Client reads from a cache that holds only profiles and objects labelled as meshguard's.
	client.Client
	// APIReader reads around the cache: for same-named objects meshguard did not create.
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  recorder.EventRecorder
	// RenderOptions are the cluster facts rendering needs (trust domain, control plane namespaces).
	RenderOptions render.Options
	// MeshguardNamespace is the namespace meshguard runs in: cluster floors are not applied there
	// unless they set includeSystemNamespaces.
	MeshguardNamespace string
	// Clock tells the time for certificate checks; nil means the real clock. Tests move it.
	Clock clock.PassiveClock
	// CertificateRecheck bounds how long a change to a CA Secret goes unnoticed (default 5m).
	CertificateRecheck time.Duration
	// ApplyConcurrency is how many of one reconcile's objects are applied at once (default 4).
	ApplyConcurrency int
	// MaxRetryBackoff caps the wait before a failed reconcile is tried again, for this
	// reconciler and the floors' (zero: DefaultMaxRetryBackoff).
	MaxRetryBackoff time.Duration
	// KindPoll is how often policy kinds installed after the start are looked for (default 15s).
	KindPoll time.Duration

	// pipe is the apply → prune → observe → requeue pipeline, shared with the floors
	// (SharedPipeline).
	pipeOnce sync.Once
	pipe     *pipeline.Pipeline
	pipeErr  error

	controller controller.Controller
	// dataPlane gathers what places each workload on Istio's sidecar or ambient data plane.
	dataPlane *pipeline.DataPlaneFacts
}

// +kubebuilder:rbac:groups=security.meshguard.dev,resources=meshsecurityprofiles,verbs=get;list;watch
// +kubebuilder:rbac:groups=security.meshguard.dev,resources=meshsecurityprofiles/status,verbs=get;update;patch
// Children carry blockOwnerDeletion, which OwnerReferencesPermissionEnforcement (OpenShift) allows
// only with update on the owner's finalizers.
// +kubebuilder:rbac:groups=security.meshguard.dev,resources=meshsecurityprofiles/finalizers,verbs=update
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=security.istio.io,resources=peerauthentications;requestauthentications;authorizationpolicies,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=policy.linkerd.io,resources=servers;authorizationpolicies;meshtlsauthentications;networkauthentications;httproutes,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=security.istio.io,resources=peerauthentications;authorizationpolicies,verbs=list
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// The secure metrics endpoint (--metrics-secure) authenticates and authorizes its clients.
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch

// Reconcile brings one profile's generated objects to what its spec says and reports in its
// status whether the namespace is protected.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	p := &v1alpha1.MeshSecurityProfile{}
	if err := r.Get(ctx, req.NamespacedName, p); err != nil {
		if apierrors.IsNotFound(err) {
			pipeline.ForgetProfile(req.Namespace, req.Name)
			r.pipe.Foreign.Forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !p.DeletionTimestamp.IsZero() {
		// Generated objects go with the profile: the garbage collector follows their ownerReferences.
		// The Namespace is not a child: meshguard removes its own annotations from it.
		return ctrl.Result{}, r.cleanupNamespace(ctx, p)
	}
	before := p.DeepCopy()
	obs := &pipeline.Observation{Audit: pipeline.Audits(&p.Spec)}
	defer func() {
		result, retErr = r.finish(ctx, before, p, obs, result, retErr)
	}()

	// Only the oldest profile governs a namespace: two profiles would fight over its objects.
	older, err := r.olderProfile(ctx, p)
	if err != nil {
		return ctrl.Result{}, err
	}
	if older != "" {
		obs.GovernedBy = older
		return ctrl.Result{}, nil
	}

	// In an Istio remote cluster no istiod reads Istio policies: write nothing (istioremote.go).
	if stop, err := r.pipe.IstioRemoteStop(ctx, p, obs); stop || err != nil {
		return ctrl.Result{RequeueAfter: pipeline.PendingRequeue}, err
	}

	// Cluster floors selecting the namespace are merged in (docs/cluster-profiles.md). Profiles that
	// cannot be merged get nothing new (what exists stays). From here on every step takes the
	// merged profile eff; p serves metadata (the finalizer) and status only.
	eff, err := r.withFloors(ctx, p, obs)
	if err != nil || eff == nil {
		return ctrl.Result{}, err
	}

	// Istio's data plane of each workload (sidecar, ztunnel, waypoint) decides where each rule
	// can be enforced; render takes the facts as data.
	opts, err := r.dataPlaneOptions(ctx, eff)
	if err != nil {
		return ctrl.Result{}, err
	}
	obs.DataPlane = pipeline.DataPlaneStatus(opts.DataPlane)

	// Render decides everything the profile means; an error here is the spec's, not the cluster's.
	res, err := render.Render(eff, opts)
	if err != nil {
		obs.Invalid = err
		return ctrl.Result{}, reconcile.TerminalError(err)
	}
	if len(res.Unsupported) > 0 {
		// Nothing half-made: what exists stays, nothing new is applied.
		obs.Unsupported = res.Unsupported
		return ctrl.Result{}, nil
	}

	// Warnings: where the mesh is stricter than the profile reads; said in PoliciesApplied.
	obs.Warnings = res.Warnings
	// Where each part is enforced, and what nothing can enforce (not Ready).
	obs.Enforcement, obs.Unenforceable = res.Enforcement, res.Unenforceable
	// Rules in shadow: the mesh reports what they would deny and denies nothing for them.
	obs.Shadow = render.ShadowRules(eff)

	// The finalizer that guards meshguard's namespace annotations is added before the first of
	// them is written (and removed once they are gone) in a reconcile of its own that writes
	// nothing else: the profile's resourceVersion then does not move under the status patch. Its
	// update event starts the next reconcile.
	if changed, err := r.syncFinalizer(ctx, p, pipeline.Audits(&eff.Spec), len(res.NamespaceAnnotations) > 0); err != nil {
		obs.ApplyErrs = append(obs.ApplyErrs, err)
		return ctrl.Result{}, nil
	} else if changed {
		obs.FinalizerOnly = true
		return ctrl.Result{}, nil
	}

	// Apply → prune → observe → requeue, as for the floors. Prune also hands the floor's own
	// objects of the namespace over once this profile carries the floor (pipeline.ProfileOwner.replaces).
	return r.pipe.Run(ctx, pipeline.Job{
		Owner: pipeline.NewProfileOwner(p), Intent: eff, Result: res,
		DataPlane: opts.DataPlane, WaypointsKnown: r.dataPlane != nil && r.dataPlane.Gateways.Load(),
		MayHoldAnnotations: controllerutil.ContainsFinalizer(p, pipeline.FinalizerNamespaceAnnotations),
	}, obs), nil
}

// finish writes the status once per reconcile: conditions summarised from what was observed,
// observedGeneration stamped, and any patch error joined into the result.
func (r *Reconciler) finish(ctx context.Context, before, p *v1alpha1.MeshSecurityProfile, obs *pipeline.Observation, result ctrl.Result, retErr error) (ctrl.Result, error) {
	if obs.FinalizerOnly {
		// This reconcile wrote the finalizer; the next one, already queued, writes the status.
		return result, retErr
	}
	r.pipe.Fights.FillCorrections(p.Namespace, obs.Rows)
	pipeline.ApplyStatus(p, obs)
	pipeline.SetSummary(p)
	pipeline.RecordMetrics(p.Namespace, p.Name, p.Spec.GetMesh(), meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionReady), obs)
	r.certificateEvent(before, p)
	r.baselineEvent(before, p)
	// A write that failed (the API server down, throttling, a stale cache) is retried with the
	// controller's exponential backoff: it is the reconcile's error, not only a status row. (A
	// failed row, or a failed read of other policies or of the CA, used to wait for the
	// certificate recheck, five minutes.)
	obs.ApplyErrs = append(obs.ApplyErrs, r.syncPolicyReport(ctx, p))
	errs := append([]error{obs.ExternalErr, obs.CertErr}, obs.ApplyErrs...)
	for _, row := range obs.Rows {
		if row.Err != nil {
			errs = append(errs, row.Err)
		}
	}
	if err := errors.Join(errs...); err != nil && retErr == nil {
		retErr = err
	}
	result, retErr = afterStatusPatch(result, retErr, r.writeStatus(ctx, before, p), klog.KObj(p))
	if retErr != nil {
		// The backoff decides when to look again (controller-runtime ignores a result with an error).
		result = ctrl.Result{}
	}
	return result, retErr
}

// statusConflictRequeue is how soon a profile whose status patch lost the optimistic lock is
// reconciled again: long enough for the cache to see the newer profile.
const statusConflictRequeue = time.Second

// afterStatusPatch folds the status patch's error into the reconcile's result. A conflict (409:
// the status was computed from a stale cached profile) is not a failure: the profile is reconciled
// again from a fresh read, without an error, so it is neither logged as one nor counted by
// controller_runtime_reconcile_errors_total (the MeshguardReconcileErrors alert).
func afterStatusPatch(result ctrl.Result, retErr, patchErr error, obj klog.ObjectRef) (ctrl.Result, error) {
	switch {
	case patchErr == nil:
	case apierrors.IsConflict(patchErr):
		if result.RequeueAfter == 0 || result.RequeueAfter > statusConflictRequeue {
			result.RequeueAfter = statusConflictRequeue
		}
	default:
		retErr = errors.Join(retErr, fmt.Errorf("patch status of %s: %w", obj, patchErr))
	}
	return result, retErr
}

// writeStatus patches the status computed from obs, if it changed. The optimistic lock makes a
// patch computed from a stale cached profile (one that has not yet seen the previous reconcile's
// status) fail instead of overwriting it; the conflict requeues the profile (afterStatusPatch), and the next reconcile
// computes the status again from a fresh read. The records of the last corrections survive that
// retry: they are kept in memory (Fights.FillCorrections), not only in the patch that failed.
func (r *Reconciler) writeStatus(ctx context.Context, before, p *v1alpha1.MeshSecurityProfile) error {
	if equality.Semantic.DeepEqual(before.Status, p.Status) {
		return nil
	}
	return client.IgnoreNotFound(r.Status().Patch(ctx, p, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})))
}

// olderProfile returns the name of the profile that governs p's namespace when it is not p.
func (r *Reconciler) olderProfile(ctx context.Context, p *v1alpha1.MeshSecurityProfile) (string, error) {
	var list v1alpha1.MeshSecurityProfileList
	if err := r.List(ctx, &list, client.InNamespace(p.Namespace)); err != nil {
		return "", fmt.Errorf("list profiles in %s: %w", p.Namespace, err)
	}
	// p as read now, whether or not the cache lists it yet.
	profiles := slices.DeleteFunc(list.Items, func(o v1alpha1.MeshSecurityProfile) bool { return o.UID == p.UID })
	if g := pipeline.Governor(append(profiles, *p)); g != nil && g.UID != p.UID {
		return g.Name, nil
	}
	return "", nil
}

// SharedPipeline returns the pipeline of the profiles, which the floors share (SetupFloors): one
// per manager, built by whichever setup comes first from r's settings.
func (r *Reconciler) SharedPipeline(mgr ctrl.Manager) (*pipeline.Pipeline, error) {
	r.pipeOnce.Do(func() {
		r.pipe, r.pipeErr = pipeline.NewPipeline(mgr, pipeline.Config{
			Client: r.Client, ApiReader: r.APIReader, Recorder: r.Recorder, RenderOptions: r.RenderOptions,
			MeshguardNamespace: r.MeshguardNamespace, Clock: r.Clock, CertificateRecheck: r.CertificateRecheck,
			ApplyConcurrency: r.ApplyConcurrency,
		})
	})
	return r.pipe, r.pipeErr
}

// SetupWithManager registers the controller: profiles (spec changes only, so status writes do not
// retrigger it), their generated objects of every installed kind, and profile creations and
// deletions in the same namespace (which change who governs it).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	pipe, err := r.SharedPipeline(mgr)
	if err != nil {
		return err
	}
	if err := mgr.Add(r.pollKinds(cmp.Or(r.KindPoll, pipeline.DefaultKindPoll))); err != nil {
		return err
	}
	if r.dataPlane, err = pipeline.NewDataPlaneFacts(mgr, cmp.Or(r.KindPoll, pipeline.DefaultKindPoll)); err != nil {
		return err
	}
	b := ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.MeshSecurityProfile{}, builder.WithPredicates(predicate.Or[client.Object](
			predicate.GenerationChangedPredicate{},
			// Deletion must be seen to remove meshguard's namespace annotations.
			predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool { return !e.ObjectNew.GetDeletionTimestamp().IsZero() }},
			// A reconcile that wrote the finalizer leaves the rest to the next one (syncFinalizer).
			predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
				return !slices.Equal(e.ObjectOld.GetFinalizers(), e.ObjectNew.GetFinalizers())
			}},
		))).
		Watches(&v1alpha1.MeshSecurityProfile{}, handler.EnqueueRequestsFromMapFunc(r.namespacePeers),
			builder.WithPredicates(predicate.Funcs{
				UpdateFunc:  func(event.UpdateEvent) bool { return false },
				GenericFunc: func(event.GenericEvent) bool { return false },
			})).
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(r.namespaceProfiles)).
		WithOptions(pipeline.WithRetryLimit(opts, r.MaxRetryBackoff)).
		Named("meshsecurityprofile")
	// A change of a mesh CA object rechecks the profiles of that mesh at once.
	for _, s := range pipe.CaSources {
		b = b.WatchesRawSource(s.Watch(r.Client))
	}
	for _, s := range pipe.Foreign.Sources(r.profilesForForeign) {
		b = b.WatchesRawSource(s)
	}
	// A pod moving to ambient, a Service or namespace bound to a waypoint, a waypoint added:
	// the namespace's profile is placed again.
	for _, s := range r.dataPlane.Sources(r.namespaceProfiles) {
		b = b.WatchesRawSource(s)
	}
	// A cluster profile's spec (every profile is looked at again: its old selection is not
	// known) or a namespace's labels (its profiles) change the floor merged in.
	if pipe.FloorsServed() {
		b = b.Watches(&v1alpha1.ClusterMeshSecurityProfile{}, handler.EnqueueRequestsFromMapFunc(r.allProfiles),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
			WatchesRawSource(source.Kind[client.Object](mgr.GetCache(), pipeline.NamespaceMeta(),
				handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
					return profileRequests(ctx, r.Client, o.GetName(), "")
				}),
				predicate.LabelChangedPredicate{}, predicate.Funcs{CreateFunc: func(event.CreateEvent) bool { return false }}))
	}
	// Owns() on a kind whose CRD is missing would stop the manager from starting; kinds that are
	// installed later are watched from the first reconcile that finds them (pipeline.ensureWatch).
	// Drift on them jumps the queue (DriftPriority).
	for _, gvk := range render.Kinds() {
		if pipe.Installed(gvk) {
			b = b.Watches(pipeline.NewUnstructured(gvk), r.ownerHandler(pipe.Mapper), builder.WithPredicates(pipe.OwnWrites.NotEcho()))
		}
	}
	c, err := b.Build(r)
	if err != nil {
		return err
	}
	r.controller = c
	pipe.OnNewKind(func(gvk schema.GroupVersionKind) error {
		if err := c.Watch(source.Kind[client.Object](pipe.Cache, pipeline.NewUnstructured(gvk), r.ownerHandler(pipe.Mapper), pipe.OwnWrites.NotEcho())); err != nil {
			return fmt.Errorf("watch %s: %w", gvk.Kind, err)
		}
		return nil
	})
	return nil
}

// namespaceProfiles enqueues every profile of the object's namespace.
func (r *Reconciler) namespaceProfiles(ctx context.Context, o client.Object) []reconcile.Request {
	return profileRequests(ctx, r.Client, o.GetNamespace(), "")
}

// namespacePeers enqueues the other profiles of a namespace.
func (r *Reconciler) namespacePeers(ctx context.Context, o client.Object) []reconcile.Request {
	return profileRequests(ctx, r.Client, o.GetNamespace(), o.GetUID())
}

// allProfiles enqueues every profile of the cluster.
func (r *Reconciler) allProfiles(ctx context.Context, _ client.Object) []reconcile.Request {
	return profileRequests(ctx, r.Client, "", "")
}

// profileRequests are the profiles of a namespace (every namespace: ""), except the one with
// the UID except.
func profileRequests(ctx context.Context, c client.Reader, namespace string, except types.UID) []reconcile.Request {
	var list v1alpha1.MeshSecurityProfileList
	if err := c.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, p := range list.Items {
		if except == "" || p.UID != except {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: p.Namespace, Name: p.Name}})
		}
	}
	return reqs
}

// ownerHandler enqueues the profile that controls a generated object, drift first.
func (r *Reconciler) ownerHandler(mapper meta.RESTMapper) handler.EventHandler {
	return pipeline.Drifted(handler.EnqueueRequestForOwner(r.Scheme, mapper, &v1alpha1.MeshSecurityProfile{}, handler.OnlyControllerOwner()))
}

var _ reconcile.Reconciler = &Reconciler{}
