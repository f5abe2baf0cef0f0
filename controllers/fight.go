package controllers

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
}

type fight struct {
	corrections int
	last        time.Time
	next        time.Time
}

// allow says whether the object may be restored now, or how long to wait.
// Objects are keyed by kind, namespace and name, not UID: a writer that keeps deleting an object
// fights its recreated successors too.
func (f *fights) allow(key string, now time.Time) (bool, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.objects[key]
	if st == nil || now.Sub(st.last) > fightWindow {
		return true, 0
	}
	if now.Before(st.next) {
		return false, st.next.Sub(now)
	}
	return true, 0
}

// corrected records a restoration and sets when the next one may happen.
func (f *fights) corrected(key string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.objects == nil {
		f.objects = map[string]*fight{}
	}
	st := f.objects[key]
	if st == nil || now.Sub(st.last) > fightWindow {
		st = &fight{}
		f.objects[key] = st
	}
	st.corrections++
	st.last = now
	st.next = now
	if extra := st.corrections - fightFreeCorrections; extra > 0 {
		d := fightBaseDelay << min(extra-1, 10)
		if d > fightMaxDelay {
			d = fightMaxDelay
		}
		st.next = now.Add(d)
	}
	// Forget objects that have been quiet for a while, so the map does not grow forever.
	for k, v := range f.objects {
		if now.Sub(v.last) > 10*fightWindow {
			delete(f.objects, k)
		}
	}
}

// lastWriters names the field managers other than meshguard that wrote the object, most recent
// first. The cache strips managed fields, so they are read from the API server (only on drift).
func (r *MeshSecurityProfileReconciler) lastWriters(ctx context.Context, obj *unstructured.Unstructured) string {
	live := newUnstructured(obj.GroupVersionKind())
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(obj), live); err != nil {
		return "unknown field manager"
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
