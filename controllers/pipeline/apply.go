package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/drift"
)

// AnnotationRenderedHash records a hash of the object meshguard last rendered. It tells a spec
// change (the hash differs: an update) from drift (the hash matches but the content does not).
const AnnotationRenderedHash = "security.meshguard.dev/rendered-hash"

// childResult is the outcome of applying one desired object.
type childResult struct {
	row       v1alpha1.ResourceStatus
	pendingOn string // mesh whose CRDs are missing
	Err       error
	drifted   []drift.Change
	// writer names the field manager that drifted the object (lastWriters), for the metrics.
	writer    string
	corrected bool
	// restartNeeded: the object is applied but running pods keep an older policy until restarted.
	restartNeeded bool
	// retryAfter asks for another reconcile: restoration is backing off from a fight.
	retryAfter time.Duration
	// created: a new object (not a recreation after drift), announced with the others of the reconcile.
	created bool
}

// applyAll applies every desired object and reports one row per object, in render order.
func (r *Pipeline) applyAll(ctx context.Context, o owner, intent *v1alpha1.MeshSecurityProfile, desired []*unstructured.Unstructured) []childResult {
	// The objects of one owner are independent of each other (each is a whole policy; none refers
	// to another by resourceVersion), so they are applied concurrently: one after the other, a
	// worker waited on each round trip in turn and a profile's 7 writes were 7 latencies
	// (docs/performance.md). The shared client-side limiter still bounds the rate.
	out := make([]childResult, len(desired))
	sem := make(chan struct{}, r.applyConcurrency())
	var wg sync.WaitGroup
	for i, want := range desired {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i] = r.applyOne(ctx, o, intent, want)
		}()
	}
	wg.Wait()
	var created []string
	for i, res := range out {
		if res.created {
			created = append(created, fmt.Sprintf("%s %s", desired[i].GetKind(), desired[i].GetName()))
		}
	}
	// One event for what a reconcile created, not one per object: a new profile's seven objects
	// were seven event writes, as many as the objects themselves (make bench-scale).
	if len(created) > 0 {
		o.eventf(r.Recorder, nil, "Normal", "Created", "Apply", "created %s", summarize(created, 10))
	}
	return out
}

// summarize lists at most limit items and says how many more there are.
func summarize(items []string, limit int) string {
	if len(items) <= limit {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:limit], ", "), len(items)-limit)
}

// applyOne reads what it needs, lets decide choose, and carries the decision out: one write
// (server-side apply), the events and the status row.
func (r *Pipeline) applyOne(ctx context.Context, o owner, intent *v1alpha1.MeshSecurityProfile, want *unstructured.Unstructured) childResult {
	gvk := want.GroupVersionKind()
	res := childResult{row: v1alpha1.ResourceStatus{APIVersion: want.GetAPIVersion(), Kind: want.GetKind(), Name: want.GetName()}}
	ref := fmt.Sprintf("%s %s", want.GetKind(), klog.KObj(want))

	if !r.Installed(gvk) {
		res.pendingOn = meshOf(gvk)
		res.row.State = v1alpha1.ResourcePending
		// The version is named: an older Linkerd or Istio has the CRD but does not serve it.
		res.row.Message = fmt.Sprintf("%s %s is not served by the API server: install or upgrade the %s CRDs", gvk.GroupVersion(), gvk.Kind, res.pendingOn)
		return res
	}
	if err := r.ensureWatch(gvk); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "cannot watch generated kind; drift on it is seen only on the next reconcile", "kind", gvk.Kind)
	}
	want = withHash(want)
	live, readWhole, err := r.getLive(ctx, want)
	if err != nil {
		return failed(res, fmt.Errorf("get %s: %w", ref, err))
	}

	d := decide(facts{
		want: want, live: live, audit: Audits(&intent.Spec), adoptExisting: intent.Spec.AdoptExisting,
		owned: live != nil && o.controls(live), wasPresent: wasPresent(o.previousRows(), want),
		fight: r.Fights.snapshot(fightKey(want)), now: r.Now(),
		lastWriter: func() string { return r.lastWriters(ctx, live) },
	})
	res.row.State, res.row.Message, res.retryAfter = d.state, d.message, d.retryAfter
	if d.drifted {
		res.drifted, res.writer = d.changes, d.writer
	}
	switch d.do {
	case doNothing:
		if readWhole && d.state == v1alpha1.ResourceInSync {
			// In sync in another form than render writes it: not read again until it changes.
			r.Verified.store(live, want)
		}
		return res
	case doCreate:
		err = r.apply(ctx, want)
	default:
		err = r.restore(ctx, want)
	}
	if err != nil {
		return failed(res, fmt.Errorf("apply %s: %w", ref, err))
	}
	r.written(ctx, o, want, d, &res)
	return res
}

// written records a write decide asked for: a correction (fight record, lastCorrected, events,
// log) or a plain create or update (an event).
func (r *Pipeline) written(ctx context.Context, o owner, want *unstructured.Unstructured, d decision, res *childResult) {
	log := ctrl.LoggerFrom(ctx)
	ref := fmt.Sprintf("%s %s", want.GetKind(), klog.KObj(want))
	if !d.drifted {
		if d.do == doCreate {
			res.created = true // announced by applyAll, with the others
			log.V(1).Info("created generated object", "kind", want.GetKind(), "object", klog.KObj(want))
		} else {
			o.eventf(r.Recorder, want, "Normal", "Updated", "Apply", "updated %s", ref)
			log.V(1).Info("updated generated object", "kind", want.GetKind(), "object", klog.KObj(want))
		}
		return
	}
	r.Fights.corrected(fightKey(want), r.Now())
	res.corrected = true
	now := metav1.Now()
	res.row.LastCorrected = &now
	if d.do == doCreate {
		res.row.LastCorrection = "recreated after deletion"
		o.eventf(r.Recorder, want, "Warning", "DriftDetected", "Compare", "%s was deleted", ref)
		o.eventf(r.Recorder, want, "Normal", "DriftCorrected", "Apply", "recreated %s", ref)
		log.Info("recreated deleted object", "kind", want.GetKind(), "object", klog.KObj(want))
	} else {
		res.row.LastCorrection = drift.Summary(d.changes, 3)
		o.eventf(r.Recorder, want, "Warning", "DriftDetected", "Compare", "%s drifted (last written by %s): %s", ref, d.writer, drift.Summary(d.changes, 3))
		o.eventf(r.Recorder, want, "Normal", "DriftCorrected", "Apply", "restored %s (%s)", ref, drift.Paths(d.changes))
		log.Info("restored drifted object", "kind", want.GetKind(), "object", klog.KObj(want), "fields", drift.Paths(d.changes))
	}
	r.Fights.remember(want.GetNamespace(), res.row)
}

// wasPresent is true when the owner's last status rows listed the object as existing.
func wasPresent(rows []v1alpha1.ResourceStatus, want *unstructured.Unstructured) bool {
	for _, r := range rows {
		if r.Kind == want.GetKind() && r.Name == want.GetName() && r.APIVersion == want.GetAPIVersion() {
			return r.State == v1alpha1.ResourceInSync || r.State == v1alpha1.ResourceDrifted
		}
	}
	return false
}

func failed(res childResult, err error) childResult {
	res.Err = err
	res.row.State = v1alpha1.ResourcePending
	res.row.Message = err.Error()
	return res
}

// getLive reads the object with the desired name, or nil when there is none; readWhole says
// that it was read from the API server rather than pieced together from the cache.
//
// The cache holds only objects carrying meshguard's label, and of those only the metadata, the
// status and a hash of the rest (cachedbody.go): when the hash is the rendered body's, the live
// object is the cached metadata with that body and nothing is read; otherwise (drift, a changed
// profile) the whole object is read. A miss in the cache is confirmed the same way: an object
// someone else created with the same name must be found, and never overwritten.
func (r *Pipeline) getLive(ctx context.Context, want *unstructured.Unstructured) (live *unstructured.Unstructured, readWhole bool, err error) {
	live = NewUnstructured(want.GroupVersionKind())
	key := client.ObjectKeyFromObject(want)
	err = r.Get(ctx, key, live)
	switch {
	case err == nil && !stripped(live):
		return live, false, nil
	case err == nil:
		if full := withBody(live, want, &r.Verified); full != nil {
			return full, false, nil
		}
		live = NewUnstructured(want.GroupVersionKind())
		err = r.APIReader.Get(ctx, key, live)
	case apierrors.IsNotFound(err):
		// Not meshguard's: the foreign metadata cache knows whether it exists at all, so creating a
		// new object costs no read; a kind it does not watch is asked of the API server.
		found, known, ferr := r.Foreign.exists(ctx, want.GroupVersionKind(), key)
		switch {
		case ferr != nil:
			err = ferr
		case known && !found:
			return nil, false, nil
		default:
			err = r.APIReader.Get(ctx, key, live)
		}
	}
	if apierrors.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return live, true, nil
}

// apply server-side applies the object as meshguard, taking back fields others took.
func (r *Pipeline) apply(ctx context.Context, want *unstructured.Unstructured) error {
	r.Foreign.wrote(want.GroupVersionKind(), client.ObjectKeyFromObject(want))
	out := want.DeepCopy()
	if err := r.Apply(ctx, client.ApplyConfigurationFromUnstructured(out),
		client.FieldOwner(v1alpha1.FieldManager), client.ForceOwnership); err != nil {
		return err
	}
	r.OwnWrites.wrote(out)
	return nil
}

// restore applies the object and then removes fields others added that meshguard never sets
// (server-side apply cannot remove fields it does not own). The removal is guarded by the
// resourceVersion so that it never removes something it has not seen.
func (r *Pipeline) restore(ctx context.Context, want *unstructured.Unstructured) error {
	after := want.DeepCopy()
	if err := r.Apply(ctx, client.ApplyConfigurationFromUnstructured(after),
		client.FieldOwner(v1alpha1.FieldManager), client.ForceOwnership); err != nil {
		return err
	}
	r.OwnWrites.wrote(after)
	var ops []map[string]any
	for _, c := range drift.Compare(want, after) {
		if c.Extra && c.Pointer != "" {
			ops = append(ops, map[string]any{"op": "remove", "path": c.Pointer})
		}
	}
	if len(ops) == 0 {
		return nil
	}
	ops = append([]map[string]any{{"op": "test", "path": "/metadata/resourceVersion", "value": after.GetResourceVersion()}}, ops...)
	body, err := json.Marshal(ops)
	if err != nil {
		return err
	}
	if err := r.Patch(ctx, after, client.RawPatch(types.JSONPatchType, body), client.FieldOwner(v1alpha1.FieldManager)); err != nil {
		return err
	}
	r.OwnWrites.wrote(after)
	return nil
}

func ptrUID(u types.UID) *types.UID { return &u }

func conflictMessage(live *unstructured.Unstructured) string {
	owner := "no controller"
	if c := metav1.GetControllerOf(live); c != nil {
		owner = fmt.Sprintf("controlled by %s %s", c.Kind, c.Name)
	}
	return fmt.Sprintf("exists and is not owned by this profile (%s): left untouched; delete it, or set spec.adoptExisting to let meshguard take it over", owner)
}

// withHash returns a copy of the object annotated with a hash of its rendered content.
func withHash(u *unstructured.Unstructured) *unstructured.Unstructured {
	b, _ := json.Marshal(u.Object) // maps marshal with sorted keys: a stable hash
	sum := sha256.Sum256(b)
	out := u.DeepCopy()
	a := out.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[AnnotationRenderedHash] = hex.EncodeToString(sum[:8])
	out.SetAnnotations(a)
	return out
}
