package pipeline

import (
	"sync"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
)

// ownWrites remembers the resourceVersion of the last write meshguard made to each generated
// object. The watch event that write causes (its echo) carries exactly that resourceVersion and
// says nothing the reconcile that wrote it did not already know, so it does not reconcile the
// profile again. (An event that arrives before the write's response was recorded still passes:
// that is why most new profiles still see a second, read-free reconcile; make bench-scale.)
// Any other change of the object (an edit, a deletion, another manager's write) has another
// resourceVersion, or is a deletion, and passes.
type ownWrites struct {
	last sync.Map // kind/namespace/name → resourceVersion
}

func echoKey(o client.Object) string {
	return o.GetObjectKind().GroupVersionKind().GroupKind().String() + "/" + o.GetNamespace() + "/" + o.GetName()
}

// wrote records the object as the API server returned it from meshguard's write.
func (w *ownWrites) wrote(o client.Object) {
	if o.GetResourceVersion() != "" {
		w.last.Store(echoKey(o), o.GetResourceVersion())
	}
}

// echo is true, once, for the event of meshguard's own last write.
func (w *ownWrites) echo(o client.Object) bool {
	rv, ok := w.last.Load(echoKey(o))
	if !ok || rv != o.GetResourceVersion() {
		return false
	}
	w.last.Delete(echoKey(o))
	return true
}

// NotEcho lets every event through but the echoes of meshguard's own writes.
func (w *ownWrites) NotEcho() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool { return !w.echo(e.Object) },
		UpdateFunc: func(e event.UpdateEvent) bool { return !w.echo(e.ObjectNew) },
	}
}
