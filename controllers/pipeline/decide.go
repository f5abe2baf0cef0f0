package pipeline

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/drift"
)

// verb is what applyOne writes for one desired object.
type verb int

const (
	// doNothing writes nothing: the object is in sync, or it is only reported (Audit, a conflict,
	// a back-off from a fight).
	doNothing verb = iota
	// doCreate applies an object that does not exist.
	doCreate
	// doUpdate applies the profile's new content: the profile changed, or the object is adopted.
	doUpdate
	// doRestore takes back what another writer changed.
	doRestore
)

// facts are what decide needs to know about one desired object, all read before deciding.
type facts struct {
	// want is the rendered object with its rendered-hash annotation; live is nil when absent.
	want, live *unstructured.Unstructured
	audit      bool
	// adoptExisting is spec.adoptExisting: take over an object that has no controller.
	adoptExisting bool
	// owned: the profile is live's controller.
	owned bool
	// wasPresent: the profile's last status listed the object as existing (only classifies a
	// missing object as deleted by someone; what is applied never depends on it).
	wasPresent bool
	// fight is the object's recent corrections; nil when none.
	fight *fight
	now   time.Time
	// lastWriter names who wrote live last, other than meshguard. It reads the API server, so
	// decide calls it only on drift, before anything is restored.
	lastWriter func() string
}

// decision is what decide chose, and what the status row says about it.
type decision struct {
	do      verb
	state   v1alpha1.ResourceState
	message string
	// drifted: someone else deleted (a recreate) or changed the object; changes say what.
	drifted bool
	changes []drift.Change
	writer  string
	// retryAfter asks for another reconcile: restoration is backing off from a fight.
	retryAfter time.Duration
}

// deleted is the one change of an object someone deleted.
var deleted = []drift.Change{{Path: "(object)", Want: "present"}}

// decide chooses what to do with one desired object. It is pure (the clock is f.now), so every
// branch is table-tested in decide_test.go.
func decide(f facts) decision {
	switch {
	case f.live == nil && f.audit:
		return decision{state: v1alpha1.ResourceMissing, message: "does not exist (Audit mode: not created)"}
	case f.live == nil && f.wasPresent:
		// An object the last status listed as present was deleted by someone: that is drift too.
		if ok, wait := f.fight.allows(f.now); !ok {
			return decision{state: v1alpha1.ResourceMissing, retryAfter: wait,
				message: fmt.Sprintf("deleted again and again; recreating in %s", wait.Round(time.Second))}
		}
		return decision{do: doCreate, state: v1alpha1.ResourceInSync, drifted: true, changes: deleted}
	case f.live == nil:
		return decision{do: doCreate, state: v1alpha1.ResourceInSync}
	case !f.owned && !(f.adoptExisting && metav1.GetControllerOf(f.live) == nil):
		return decision{state: v1alpha1.ResourceConflict, message: conflictMessage(f.live)}
	}

	changes := drift.Compare(f.want, f.live)
	if len(changes) == 0 {
		return decision{state: v1alpha1.ResourceInSync}
	}
	// The same hash on a different object means someone else changed it: drift. A different hash
	// means the profile changed (or the object is being adopted): an update.
	d := decision{changes: withoutBookkeeping(changes)}
	d.drifted = f.owned && f.live.GetAnnotations()[AnnotationRenderedHash] == f.want.GetAnnotations()[AnnotationRenderedHash]
	if d.drifted {
		// Who wrote it, read before meshguard takes the fields back (which drops their ownership).
		d.writer = f.lastWriter()
	}
	summary := drift.Summary(d.changes, 3)
	if summary == "" {
		summary = "only meshguard's " + AnnotationRenderedHash + " annotation differs"
	}
	switch {
	case f.audit && d.drifted:
		d.state, d.message = v1alpha1.ResourceDrifted, summary+" (last written by "+d.writer+")"
	case f.audit:
		d.state, d.message = v1alpha1.ResourceDrifted, "differs from the profile (Audit mode: not updated): "+summary
	case d.drifted:
		if ok, wait := f.fight.allows(f.now); !ok {
			d.state, d.retryAfter = v1alpha1.ResourceDrifted, wait
			d.message = fmt.Sprintf("%s keeps rewriting it (%s); restoring again in %s", d.writer, summary, wait.Round(time.Second))
			return d
		}
		d.do, d.state = doRestore, v1alpha1.ResourceInSync
	default:
		d.do, d.state = doUpdate, v1alpha1.ResourceInSync
	}
	return d
}

// withoutBookkeeping leaves meshguard's rendered-hash annotation out of the changes reported in
// status, events and logs: it is meshguard's record of what it applied, not a field the profile
// declares, and as the first path in sorted order it took one of the three a summary shows (a
// changed profile in Audit mode read "metadata.annotations[security.meshguard.dev/rendered-hash]
// …" before the field that changed). decide still compares the hashes.
func withoutBookkeeping(changes []drift.Change) []drift.Change {
	hashPath := "metadata.annotations[" + AnnotationRenderedHash + "]"
	out := changes[:0:0]
	for _, c := range changes {
		if c.Path != hashPath {
			out = append(out, c)
		}
	}
	return out
}
