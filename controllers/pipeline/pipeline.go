package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/dataplane"
	"github.com/meshguard/meshguard/internal/render"
)

// owner is whoever a set of generated objects in one namespace belongs to: a
// MeshSecurityProfile, or, in a namespace without one, the ClusterMeshSecurityProfile whose floor
// the objects carry. It is all the pipeline knows of it.
type owner interface {
	// controls says whether the owner is o's controller (o's ownerReference names it): only such
	// objects are updated, restored and counted as the owner's own.
	controls(o metav1.Object) bool
	// label is the value of the profile label (render.Labels) on the owner's objects, and of
	// meshguard's owner mark on the Namespace annotations it sets.
	label() string
	// eventf records an event about the owner: the event's target is the owner itself.
	eventf(rec recorder.EventRecorder, related runtime.Object, eventtype, reason, action, note string, args ...any)
	// previousRows are the status rows of the owner's last reconcile: they tell an object someone
	// deleted (drift) from one never created.
	previousRows() []v1alpha1.ResourceStatus
	// prunable says whether an object of the namespace labelled as meshguard's, that render no
	// longer produces, is the owner's to delete now.
	prunable(o metav1.Object) bool
	// replaces says whether an object of another owner is one that the owner's objects take over
	// (deleted only once every object of the owner is applied, so the namespace is never below
	// what both declare).
	replaces(o metav1.Object) bool
}

// Job is one run of the pipeline: the objects render produced for one owner.
type Job struct {
	Owner owner
	// Intent is what render was given: the spec in force in the namespace (a profile's merged
	// with its floors, or the floors' alone). effective and expectations read it as the declared
	// intent; it is never written and never the target of an event.
	Intent *v1alpha1.MeshSecurityProfile
	Result *render.Result
	// DataPlane are the data plane facts render was given (nil when none were gathered): the
	// expectations are answered for the proxies that really serve the pods.
	DataPlane *dataplane.Facts
	// WaypointsKnown: the Gateway CRD is watched, so dataPlane knows every waypoint and foreign
	// targetRefs policies can be judged against the pods behind them.
	WaypointsKnown bool
	// MayHoldAnnotations: meshguard's namespace annotations may be the owner's (a profile's
	// finalizer says so), and are removed when render asks for none.
	MayHoldAnnotations bool
}

// Run is the pipeline both reconcilers share: apply → prune → observe → requeue. It fills obs
// (rows, errors, what was observed) and returns when to look again; the status is the caller's.
func (r *Pipeline) Run(ctx context.Context, j Job, obs *Observation) ctrl.Result {
	ns := j.Intent.Namespace

	// Apply creates or restores each desired object, leaving objects the owner does not control
	// untouched.
	obs.Rows = r.notServed(ctx, r.applyAll(ctx, j.Owner, j.Intent, j.Result.Objects))
	if row := r.applyNamespaceAnnotations(ctx, j.Owner, j.Intent, j.MayHoldAnnotations, j.Result.NamespaceAnnotations); row != nil {
		obs.Rows = append(obs.Rows, *row)
	}

	// Prune removes what the owner generated before and no longer wants, and hands over: the
	// objects it replaces go only when every object of its own is applied (never below the floor:
	// two sets of objects are never wider than one, since the owner's holds the other's rules).
	if !obs.Audit {
		keep := desiredKeys(j.Result.Objects)
		if err := r.DeleteStale(ctx, ns, keep, j.Owner.prunable, func(o *unstructured.Unstructured) {
			j.Owner.eventf(r.Recorder, o, "Normal", "Pruned", "Delete", "deleted %s %s: no longer in the profile", o.GetKind(), klog.KObj(o))
		}); err != nil {
			obs.ApplyErrs = append(obs.ApplyErrs, fmt.Errorf("prune: %w", err))
		}
		if obs.floorKept = handoverBlocked(obs.Rows); obs.floorKept == "" {
			if err := r.DeleteStale(ctx, ns, keep, j.Owner.replaces, nil); err != nil {
				obs.ApplyErrs = append(obs.ApplyErrs, fmt.Errorf("prune floor objects: %w", err))
			}
		}
	}

	// Observe: Istio says whether it bound the policies meant for ztunnel and waypoints; a policy
	// of someone else can undo what is declared (report, never touch); the expectations are
	// answered from the policies just read; mTLS is only as good as the CA behind it.
	obs.notBound = r.notBound(ctx, ns, j.Result.AmbientBound)
	var live *livePolicies
	obs.external, live, obs.ExternalErr = r.observeExternal(ctx, j.Owner, j.Intent, j.Result, j.waypoints())
	obs.expectations, obs.expectationsErr = r.observeExpectations(ctx, j.Intent, live, j.DataPlane)
	rep, err := r.observeCertificates(ctx, j.Intent)
	obs.certs, obs.CertErr = &rep, err

	// (A per-owner report of obs, such as a PolicyReport, belongs here: after observe, before
	// requeue.)

	// Requeue before the next certificate threshold, soon while something waits, and when a
	// restoration backing off from a fight may go ahead.
	return requeue(ctrl.Result{RequeueAfter: certificateRecheck(rep, r.Now(), r.CertificateRecheck)}, obs)
}

// requeue shortens result for what obs waits on: objects pending a mesh's CRDs or pods a
// restart (PendingRequeue), and restorations backing off from a fight (their retryAfter).
func requeue(result ctrl.Result, obs *Observation) ctrl.Result {
	if obs.pending() && (result.RequeueAfter == 0 || result.RequeueAfter > PendingRequeue) {
		result.RequeueAfter = PendingRequeue
	}
	for _, row := range obs.Rows {
		if row.retryAfter > 0 && (result.RequeueAfter == 0 || row.retryAfter < result.RequeueAfter) {
			result.RequeueAfter = row.retryAfter
		}
	}
	return result
}

// desiredKeys are the kind/name keys of the rendered objects: what prune keeps.
func desiredKeys(desired []*unstructured.Unstructured) map[string]bool {
	keep := map[string]bool{}
	for _, o := range desired {
		keep[objectKey(o.GroupVersionKind(), o.GetName())] = true
	}
	return keep
}

// DeleteStale deletes the objects of a namespace labelled as meshguard's that match and are not
// in keep (kind/name), each guarded by its UID; deleted (may be nil) hears of each deletion.
// Never by kind alone: match names whose objects they are.
func (r *Pipeline) DeleteStale(ctx context.Context, namespace string, keep map[string]bool, match func(metav1.Object) bool, deleted func(*unstructured.Unstructured)) error {
	var errs []string
	for _, gvk := range render.Kinds() {
		if !r.Installed(gvk) {
			continue
		}
		list := newUnstructuredList(gvk)
		if err := r.List(ctx, list, client.InNamespace(namespace), client.MatchingLabels{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}); err != nil {
			errs = append(errs, fmt.Sprintf("list %s: %v", gvk.Kind, err))
			continue
		}
		for i := range list.Items {
			o := &list.Items[i]
			if keep[objectKey(gvk, o.GetName())] || !match(o) {
				continue
			}
			if err := r.Delete(ctx, o, client.Preconditions{UID: ptrUID(o.GetUID())}); client.IgnoreNotFound(err) != nil {
				errs = append(errs, fmt.Sprintf("delete %s %s: %v", gvk.Kind, klog.KObj(o), err))
				continue
			}
			o.SetGroupVersionKind(gvk)
			r.Verified.forget(o)
			if deleted != nil {
				deleted(o)
			}
		}
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// ControlledBy says whether uid is o's controller.
func ControlledBy(o metav1.Object, uid types.UID) bool {
	c := metav1.GetControllerOf(o)
	return c != nil && c.UID == uid
}

// FloorObject says whether o's controller is a ClusterMeshSecurityProfile: an object the floor
// reconciler applied in a namespace without a profile.
func FloorObject(o metav1.Object) bool {
	c := metav1.GetControllerOf(o)
	return c != nil && c.Kind == gvkClusterProfile.Kind && c.APIVersion == v1alpha1.GroupVersion.String()
}

// Audits says whether a spec only reports (Audit) and never writes.
func Audits(spec *v1alpha1.MeshSecurityProfileSpec) bool {
	return spec.Enforcement == v1alpha1.EnforcementAudit
}

// Config is what the pipeline is built from: the profiles' reconciler's settings.
type Config struct {
	Client             client.Client
	ApiReader          client.Reader
	Recorder           recorder.EventRecorder
	RenderOptions      render.Options
	MeshguardNamespace string
	Clock              clock.PassiveClock
	CertificateRecheck time.Duration
	// ApplyConcurrency is how many of one reconcile's objects are applied at once (default 4).
	ApplyConcurrency int
}

// DefaultApplyConcurrency is how many of one reconcile's objects are applied at once by default:
// a profile's objects are 7 for a typical Istio profile (docs/performance.md).
const DefaultApplyConcurrency = 4

// Pipeline holds what the reconcilers of profiles and floors share: the clients, and the caches
// and memories behind apply → prune → observe (which kinds are installed, foreign objects, fights,
// meshguard's own writes, certificate verdicts). One per manager; no reconciler's fields.
type Pipeline struct {
	// Client reads from a cache that holds only profiles and objects labelled as meshguard's.
	client.Client
	// APIReader reads around the cache: for same-named objects meshguard did not create.
	APIReader client.Reader
	Recorder  recorder.EventRecorder
	// RenderOptions are the cluster facts (trust domain, control plane namespaces).
	RenderOptions render.Options
	// MeshguardNamespace is where meshguard runs: floors skip it unless they opt in.
	MeshguardNamespace string
	// Clock tells the time for certificate checks and fights; nil means the real clock.
	Clock clock.PassiveClock
	// CertificateRecheck bounds how long a change to a CA Secret goes unnoticed (default 5m).
	CertificateRecheck time.Duration
	// ApplyConcurrency is how many of one reconcile's objects are applied at once; 0 means
	// DefaultApplyConcurrency.
	ApplyConcurrency int

	Mapper meta.RESTMapper
	Cache  cache.Cache
	// missing remembers kinds found not installed, and until when (installed).
	missingMu sync.Mutex
	missing   map[schema.GroupVersionKind]time.Time
	// watchers are told of a generated kind found installed after the start (ensureWatch): each
	// reconciler starts watching it for drift on its own objects.
	watchMu  sync.Mutex
	watchers []*kindWatcher
	// atStart are the generated kinds installed when the pipeline was built: every reconciler
	// watches them from its setup.
	atStart map[schema.GroupVersionKind]bool

	Fights    fights
	OwnWrites ownWrites
	// Verified are the objects read whole and found in sync (cachedbody.go).
	Verified verifiedBodies
	// certificateVerdicts spares re-checking CA data that did not change.
	certificateVerdicts certificateVerdicts
	CaSources           []*caSource
	Foreign             *foreignObjects
	// ServedKinds asks discovery about kinds whose requests fail as if their CRD were gone.
	ServedKinds *servedKinds
	// istioRemote remembers whether this is an Istio remote cluster (istioremote.go).
	istioRemote istioRemote
}

// NewPipeline builds the pipeline and adds its caches to the manager.
func NewPipeline(mgr ctrl.Manager, c Config) (*Pipeline, error) {
	r := &Pipeline{
		Client: c.Client, APIReader: c.ApiReader, Recorder: c.Recorder, RenderOptions: c.RenderOptions,
		MeshguardNamespace: c.MeshguardNamespace, Clock: c.Clock, CertificateRecheck: c.CertificateRecheck,
		ApplyConcurrency: c.ApplyConcurrency,
		Mapper:           mgr.GetRESTMapper(), Cache: mgr.GetCache(), atStart: map[schema.GroupVersionKind]bool{},
	}
	var err error
	if r.CaSources, err = newCASources(mgr, r.RenderOptions.IstioNamespace, r.RenderOptions.LinkerdNamespace); err != nil {
		return nil, err
	}
	// Foreign policies are watched by metadata only: a weakening policy requeues its profiles at
	// once, without a cluster-wide cache of full objects.
	if r.Foreign, err = newForeignObjects(mgr, append(render.Kinds(), extraKindVersions()...)); err != nil {
		return nil, err
	}
	disc, err := discovery.NewDiscoveryClientForConfig(mgr.GetConfig())
	if err != nil {
		return nil, err
	}
	r.ServedKinds = &servedKinds{Disc: disc}
	for _, gvk := range render.Kinds() {
		if r.Installed(gvk) {
			r.atStart[gvk] = true
		}
	}
	return r, nil
}

// kindWatcher is one reconciler's watch of generated kinds installed after the start.
type kindWatcher struct {
	watch   func(schema.GroupVersionKind) error
	watched map[schema.GroupVersionKind]bool
}

// OnNewKind registers a reconciler's watch for generated kinds installed after the start.
func (r *Pipeline) OnNewKind(watch func(schema.GroupVersionKind) error) {
	r.watchMu.Lock()
	defer r.watchMu.Unlock()
	r.watchers = append(r.watchers, &kindWatcher{watch: watch, watched: map[schema.GroupVersionKind]bool{}})
}

// ensureWatch has every reconciler watch a generated kind whose CRD appeared after meshguard
// started, so that drift on it is seen as fast as on the others.
func (r *Pipeline) ensureWatch(gvk schema.GroupVersionKind) error {
	r.watchMu.Lock()
	defer r.watchMu.Unlock()
	if r.atStart[gvk] {
		return nil
	}
	var errs []error
	for _, w := range r.watchers {
		if w.watched[gvk] {
			continue
		}
		if err := w.watch(gvk); err != nil {
			errs = append(errs, err)
			continue
		}
		w.watched[gvk] = true
	}
	return errors.Join(errs...)
}

// notInstalledFor is how long a kind found missing is taken as missing without asking again;
// shorter than PendingRequeue, so that a profile waiting for CRDs sees them at its next look.
const notInstalledFor = 20 * time.Second

// Installed says whether the API server serves a kind (its CRD is installed). The RESTMapper
// reads discovery again on every miss: without this memory, a cluster without Linkerd cost five
// discovery requests and a sixth of meshguard's CPU per reconcile (measured with make bench-scale).
func (r *Pipeline) Installed(gvk schema.GroupVersionKind) bool {
	r.missingMu.Lock()
	until, missing := r.missing[gvk]
	r.missingMu.Unlock()
	if missing && time.Now().Before(until) {
		return false
	}
	_, err := r.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	r.missingMu.Lock()
	defer r.missingMu.Unlock()
	if err != nil {
		if meta.IsNoMatchError(err) {
			if r.missing == nil {
				r.missing = map[schema.GroupVersionKind]time.Time{}
			}
			r.missing[gvk] = time.Now().Add(notInstalledFor)
		}
		return false
	}
	delete(r.missing, gvk)
	return true
}

// ForgetMissing drops the memory that a kind is not installed (discovery has just seen it).
func (r *Pipeline) ForgetMissing(gvk schema.GroupVersionKind) {
	r.missingMu.Lock()
	defer r.missingMu.Unlock()
	delete(r.missing, gvk)
}

// Now is the time by the pipeline's clock (the real clock when none is set).
func (r *Pipeline) Now() time.Time {
	if r.Clock != nil {
		return r.Clock.Now()
	}
	return time.Now()
}

// waypoints are the data plane facts effective may judge targetRefs policies with: only when
// every waypoint can be known.
func (j Job) waypoints() *dataplane.Facts {
	if !j.WaypointsKnown {
		return nil
	}
	return j.DataPlane
}

func (r *Pipeline) applyConcurrency() int {
	if r.ApplyConcurrency > 0 {
		return r.ApplyConcurrency
	}
	return DefaultApplyConcurrency
}
