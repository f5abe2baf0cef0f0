package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
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
	"github.com/meshguard/meshguard/internal/render"
)

// AnnotationRenderedHash records a hash of the object meshguard last rendered. It tells a spec
// change (the hash differs: an update) from drift (the hash matches but the content does not).
const AnnotationRenderedHash = "security.meshguard.dev/rendered-hash"

// childResult is the outcome of applying one desired object.
type childResult struct {
	row       v1alpha1.ResourceStatus
	pendingOn string // mesh whose CRDs are missing
	err       error
	drifted   []drift.Change
	corrected bool
	// restartNeeded: the object is applied but running pods keep an older policy until restarted.
	restartNeeded bool
	// retryAfter asks for another reconcile: restoration is backing off from a fight.
	retryAfter time.Duration
}

// applyAll applies every desired object and reports one row per object, in render order.
func (r *MeshSecurityProfileReconciler) applyAll(ctx context.Context, p *v1alpha1.MeshSecurityProfile, desired []*unstructured.Unstructured) []childResult {
	out := make([]childResult, 0, len(desired))
	for _, want := range desired {
		out = append(out, r.applyOne(ctx, p, want))
	}
	return out
}

func (r *MeshSecurityProfileReconciler) applyOne(ctx context.Context, p *v1alpha1.MeshSecurityProfile, want *unstructured.Unstructured) childResult {
	log := ctrl.LoggerFrom(ctx)
	gvk := want.GroupVersionKind()
	res := childResult{row: v1alpha1.ResourceStatus{APIVersion: want.GetAPIVersion(), Kind: want.GetKind(), Name: want.GetName()}}
	ref := fmt.Sprintf("%s %s", want.GetKind(), klog.KObj(want))

	if !r.installed(gvk) {
		res.pendingOn = meshOf(gvk)
		res.row.State = v1alpha1.ResourcePending
		// The version is named: an older Linkerd or Istio has the CRD but does not serve it.
		res.row.Message = fmt.Sprintf("%s %s is not served by the API server: install or upgrade the %s CRDs", gvk.GroupVersion(), gvk.Kind, res.pendingOn)
		return res
	}
	if err := r.ensureWatch(gvk); err != nil {
		log.Error(err, "cannot watch generated kind; drift on it is seen only on the next reconcile", "kind", gvk.Kind)
	}
	want = withHash(want)

	live, err := r.getLive(ctx, want)
	if err != nil {
		return failed(res, fmt.Errorf("get %s: %w", ref, err))
	}

	switch {
	case live == nil && r.audit(p):
		res.row.State = v1alpha1.ResourceMissing
		res.row.Message = "does not exist (Audit mode: not created)"
		return res
	case live == nil:
		if wasPresent(p, want) {
			if ok, wait := r.fights.allow(fightKey(want), r.now()); !ok {
				res.row.State = v1alpha1.ResourceMissing
				res.row.Message = fmt.Sprintf("deleted again and again; recreating in %s", wait.Round(time.Second))
				res.retryAfter = wait
				return res
			}
		}
		if err := r.apply(ctx, want); err != nil {
			return failed(res, fmt.Errorf("apply %s: %w", ref, err))
		}
		res.row.State = v1alpha1.ResourceInSync
		// An object the last status listed as present was deleted by someone: that is drift too.
		// (The previous status only classifies the event; what is applied never depends on it.)
		if wasPresent(p, want) {
			deleted := []drift.Change{{Path: "(object)", Want: "present"}}
			res.drifted, res.corrected = deleted, true
			r.fights.corrected(fightKey(want), r.now())
			now := metav1.Now()
			res.row.LastCorrected, res.row.LastCorrection = &now, "recreated after deletion"
			r.fights.remember(p.Namespace, res.row)
			r.Recorder.Eventf(p, want, "Warning", "DriftDetected", "Compare", "%s was deleted", ref)
			r.Recorder.Eventf(p, want, "Normal", "DriftCorrected", "Apply", "recreated %s", ref)
			log.Info("recreated deleted object", "kind", want.GetKind(), "object", klog.KObj(want))
			return res
		}
		r.Recorder.Eventf(p, want, "Normal", "Created", "Apply", "created %s", ref)
		log.V(1).Info("created generated object", "kind", want.GetKind(), "object", klog.KObj(want))
		return res
	case !ownedBy(live, p) && !(p.Spec.AdoptExisting && metav1.GetControllerOf(live) == nil):
		res.row.State = v1alpha1.ResourceConflict
		res.row.Message = conflictMessage(live)
		return res
	}

	changes := drift.Compare(want, live)
	if len(changes) == 0 {
		res.row.State = v1alpha1.ResourceInSync
		return res
	}
	// The same hash on a different object means someone else changed it: drift. A different hash
	// means the profile changed (or the object is being adopted): an update.
	isDrift := ownedBy(live, p) && live.GetAnnotations()[AnnotationRenderedHash] == want.GetAnnotations()[AnnotationRenderedHash]
	writer := ""
	if isDrift {
		res.drifted = changes
		// Who wrote it, read before meshguard takes the fields back (which drops their ownership).
		writer = r.lastWriters(ctx, live)
	}
	if r.audit(p) {
		res.row.State = v1alpha1.ResourceDrifted
		res.row.Message = drift.Summary(changes, 3)
		if isDrift {
			res.row.Message += " (last written by " + writer + ")"
		} else {
			res.row.Message = "differs from the profile (Audit mode: not updated): " + res.row.Message
		}
		return res
	}
	if isDrift {
		if ok, wait := r.fights.allow(fightKey(want), r.now()); !ok {
			res.row.State = v1alpha1.ResourceDrifted
			res.row.Message = fmt.Sprintf("%s keeps rewriting it (%s); restoring again in %s", writer, drift.Summary(changes, 3), wait.Round(time.Second))
			res.retryAfter = wait
			return res
		}
	}
	if err := r.restore(ctx, want, live, changes); err != nil {
		return failed(res, fmt.Errorf("apply %s: %w", ref, err))
	}
	res.row.State = v1alpha1.ResourceInSync
	if isDrift {
		r.fights.corrected(fightKey(want), r.now())
		res.corrected = true
		now := metav1.Now()
		res.row.LastCorrected = &now
		res.row.LastCorrection = drift.Summary(changes, 3)
		r.fights.remember(p.Namespace, res.row)
		r.Recorder.Eventf(p, want, "Warning", "DriftDetected", "Compare", "%s drifted (last written by %s): %s", ref, writer, drift.Summary(changes, 3))
		r.Recorder.Eventf(p, want, "Normal", "DriftCorrected", "Apply", "restored %s (%s)", ref, drift.Paths(changes))
		log.Info("restored drifted object", "kind", want.GetKind(), "object", klog.KObj(want), "fields", drift.Paths(changes))
	} else {
		r.Recorder.Eventf(p, want, "Normal", "Updated", "Apply", "updated %s", ref)
		log.V(1).Info("updated generated object", "kind", want.GetKind(), "object", klog.KObj(want))
	}
	return res
}

// wasPresent is true when the profile's last status listed the object as existing.
func wasPresent(p *v1alpha1.MeshSecurityProfile, want *unstructured.Unstructured) bool {
	for _, r := range p.Status.Resources {
		if r.Kind == want.GetKind() && r.Name == want.GetName() && r.APIVersion == want.GetAPIVersion() {
			return r.State == v1alpha1.ResourceInSync || r.State == v1alpha1.ResourceDrifted
		}
	}
	return false
}

func failed(res childResult, err error) childResult {
	res.err = err
	res.row.State = v1alpha1.ResourcePending
	res.row.Message = err.Error()
	return res
}

func (r *MeshSecurityProfileReconciler) audit(p *v1alpha1.MeshSecurityProfile) bool {
	return p.Spec.Enforcement == v1alpha1.EnforcementAudit
}

// getLive reads the object with the desired name, or nil when there is none. The cache only holds
// objects carrying meshguard's label, so a miss is confirmed with a direct read: an object someone
// else created with the same name must be found, and never overwritten.
func (r *MeshSecurityProfileReconciler) getLive(ctx context.Context, want *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	live := newUnstructured(want.GroupVersionKind())
	key := client.ObjectKeyFromObject(want)
	err := r.Get(ctx, key, live)
	if apierrors.IsNotFound(err) {
		err = r.APIReader.Get(ctx, key, live)
	}
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return live, nil
}

// apply server-side applies the object as meshguard, taking back fields others took.
func (r *MeshSecurityProfileReconciler) apply(ctx context.Context, want *unstructured.Unstructured) error {
	return r.Apply(ctx, client.ApplyConfigurationFromUnstructured(want.DeepCopy()),
		client.FieldOwner(v1alpha1.FieldManager), client.ForceOwnership)
}

// restore applies the object and then removes fields others added that meshguard never sets
// (server-side apply cannot remove fields it does not own). The removal is guarded by the
// resourceVersion so that it never removes something it has not seen.
func (r *MeshSecurityProfileReconciler) restore(ctx context.Context, want, live *unstructured.Unstructured, changes []drift.Change) error {
	after := want.DeepCopy()
	if err := r.Apply(ctx, client.ApplyConfigurationFromUnstructured(after),
		client.FieldOwner(v1alpha1.FieldManager), client.ForceOwnership); err != nil {
		return err
	}
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
	return r.Patch(ctx, after, client.RawPatch(types.JSONPatchType, body), client.FieldOwner(v1alpha1.FieldManager))
}

// prune deletes objects this profile generated that render no longer produces. It lists by the
// profile label and deletes only objects whose controller is this profile, never by kind alone.
func (r *MeshSecurityProfileReconciler) prune(ctx context.Context, p *v1alpha1.MeshSecurityProfile, desired []*unstructured.Unstructured) error {
	keep := map[string]bool{}
	for _, d := range desired {
		keep[d.GroupVersionKind().GroupKind().String()+"/"+d.GetName()] = true
	}
	var errs []string
	for _, gvk := range render.Kinds() {
		if !r.installed(gvk) {
			continue
		}
		list := newUnstructuredList(gvk)
		if err := r.List(ctx, list, client.InNamespace(p.Namespace), client.MatchingLabels(render.Labels(p.Name))); err != nil {
			errs = append(errs, fmt.Sprintf("list %s: %v", gvk.Kind, err))
			continue
		}
		for i := range list.Items {
			o := &list.Items[i]
			if keep[gvk.GroupKind().String()+"/"+o.GetName()] || !ownedBy(o, p) {
				continue
			}
			if err := r.Delete(ctx, o, client.Preconditions{UID: ptrUID(o.GetUID())}); client.IgnoreNotFound(err) != nil {
				errs = append(errs, fmt.Sprintf("delete %s %s: %v", gvk.Kind, o.GetName(), err))
				continue
			}
			r.Recorder.Eventf(p, o, "Normal", "Pruned", "Delete", "deleted %s %s: no longer in the profile", gvk.Kind, klog.KObj(o))
		}
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return fmt.Errorf("prune: %s", strings.Join(errs, "; "))
	}
	return nil
}

func ptrUID(u types.UID) *types.UID { return &u }

// ownedBy is true when the profile is the object's controller.
func ownedBy(o metav1.Object, p *v1alpha1.MeshSecurityProfile) bool {
	c := metav1.GetControllerOf(o)
	return c != nil && c.UID == p.UID
}

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
