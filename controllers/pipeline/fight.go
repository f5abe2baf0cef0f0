package pipeline

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// Restoring an object that another controller keeps rewriting would be a hot loop of writes
// between the two. After fightFreeCorrections corrections of the same object within fightWindow,
// meshguard waits before each further restoration, doubling the wait up to fightMaxDelay, and
// reports the fight (and who writes) in the status meanwhile.
const (
	fightWindow          = time.Minute
	fightFreeCorrections = 3
	fightBaseDelay       = 2 * time.Second
	fightMaxDelay        = 5 * time.Minute
)

// fights remembers recent corrections per object. It is memory only: after a restart meshguard
// simply starts counting again.
type fights struct {
	mu      sync.Mutex
	objects map[string]*fight
	// lastCorrections are the status records (lastCorrected, lastCorrection) of recent
	// corrections, by namespace and row, so that a status patch that failed does not lose them.
	lastCorrections map[string]v1alpha1.ResourceStatus
}

type fight struct {
	corrections int
	last        time.Time
	next        time.Time
}

// snapshot returns a copy of the object's fight record, nil when there is none.
// Objects are keyed by kind, namespace and name, not UID: a writer that keeps deleting an object
// fights its recreated successors too.
func (f *fights) snapshot(key string) *fight {
	f.mu.Lock()
	defer f.mu.Unlock()
	if st := f.objects[key]; st != nil {
		cp := *st
		return &cp
	}
	return nil
}

// allows says whether the object may be restored at now, or how long to wait. A nil record (no
// recent correction) allows.
func (st *fight) allows(now time.Time) (bool, time.Duration) {
	if st == nil || now.Sub(st.last) > fightWindow {
		return true, 0
	}
	if now.Before(st.next) {
		return false, st.next.Sub(now)
	}
	return true, 0
}

// record returns the record after one more correction at now: the first fightFreeCorrections
// within fightWindow are free, then each waits twice as long as the one before, up to
// fightMaxDelay.
func (st *fight) record(now time.Time) *fight {
	next := fight{}
	if st != nil && now.Sub(st.last) <= fightWindow {
		next = *st
	}
	next.corrections++
	next.last, next.next = now, now
	if extra := next.corrections - fightFreeCorrections; extra > 0 {
		next.next = now.Add(min(fightBaseDelay<<min(extra-1, 10), fightMaxDelay))
	}
	return &next
}

// corrected records a restoration and sets when the next one may happen.
func (f *fights) corrected(key string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.objects == nil {
		f.objects = map[string]*fight{}
	}
	f.objects[key] = f.objects[key].record(now)
	// Forget objects that have been quiet for a while, so the map does not grow forever.
	for k, v := range f.objects {
		if now.Sub(v.last) > 10*fightWindow {
			delete(f.objects, k)
		}
	}
}

// remember keeps the correction record of a row of a profile in namespace ns.
func (f *fights) remember(ns string, row v1alpha1.ResourceStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lastCorrections == nil {
		f.lastCorrections = map[string]v1alpha1.ResourceStatus{}
	}
	// Forget records old enough that the status written after them has long been read back.
	for k, v := range f.lastCorrections {
		if row.LastCorrected != nil && v.LastCorrected != nil && row.LastCorrected.Sub(v.LastCorrected.Time) > 10*fightWindow {
			delete(f.lastCorrections, k)
		}
	}
	f.lastCorrections[rowKey(ns, row)] = row
}

// FillCorrections gives each row of namespace ns that has no correction of its own the last one
// remembered, so that a correction made by a reconcile whose status patch failed is still
// reported by the next one.
func (f *fights) FillCorrections(ns string, rows []childResult) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range rows {
		row := &rows[i].row
		if row.LastCorrected != nil {
			continue
		}
		if old, ok := f.lastCorrections[rowKey(ns, *row)]; ok {
			row.LastCorrected, row.LastCorrection = old.LastCorrected, old.LastCorrection
		}
	}
}

func rowKey(ns string, row v1alpha1.ResourceStatus) string {
	return ns + "/" + row.APIVersion + "/" + row.Kind + "/" + row.Name
}

// lastWriters names the field managers other than meshguard that wrote the object, most recent
// first. The cache strips managed fields; a drifted body was just read whole from the API server
// (getLive) with them, otherwise (drift in the metadata) they are read now (only on drift).
func (r *Pipeline) lastWriters(ctx context.Context, obj *unstructured.Unstructured) string {
	live := obj
	if len(live.GetManagedFields()) == 0 {
		live = NewUnstructured(obj.GroupVersionKind())
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(obj), live); err != nil {
			return "unknown field manager"
		}
	}
	mfs := live.GetManagedFields()
	sort.SliceStable(mfs, func(i, j int) bool {
		if mfs[i].Time == nil || mfs[j].Time == nil {
			return mfs[j].Time == nil
		}
		return mfs[j].Time.Before(mfs[i].Time)
	})
	for _, mf := range mfs {
		if mf.Manager != v1alpha1.FieldManager && mf.Subresource == "" {
			return fmt.Sprintf("field manager %q (%s)", mf.Manager, mf.Operation)
		}
	}
	return "unknown field manager"
}

// fightKey identifies an object across deletions and recreations.
func fightKey(u *unstructured.Unstructured) string {
	return u.GroupVersionKind().GroupKind().String() + "/" + u.GetNamespace() + "/" + u.GetName()
}
