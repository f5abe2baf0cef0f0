package pipeline

import (
	"context"
	"time"

	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// DriftPriority is the queue priority of a profile whose generated object someone else changed
// or deleted, or that an object of someone else now weakens: ahead of first-time convergence
// (priority 0) and of the initial list (handler.LowPriority). While a thousand new profiles
// converge, an edited NetworkPolicy otherwise waited behind all of them (2.7–3.3 s p99 at N = 1000,
// docs/performance.md): a namespace that was protected and no longer is matters more than one
// that is not protected yet. controller-runtime's priority queue (the default since v0.23) hands
// out the highest priority first.
const DriftPriority = 10

// Drifted raises the priority of what h enqueues for updates and deletions (drift) to
// DriftPriority. Creations keep theirs: an object created by meshguard is filtered out as an
// echo, and one created by someone else starts no fight yet. Updates that did not change the
// object (a resync) keep the low priority controller-runtime gives them.
func Drifted(h handler.EventHandler) handler.EventHandler {
	return handler.Funcs{
		CreateFunc: h.Create,
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if e.ObjectOld != nil && e.ObjectNew != nil && e.ObjectOld.GetResourceVersion() == e.ObjectNew.GetResourceVersion() {
				h.Update(ctx, e, q)
				return
			}
			h.Update(ctx, e, withPriority(q, DriftPriority))
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			h.Delete(ctx, e, withPriority(q, DriftPriority))
		},
		GenericFunc: h.Generic,
	}
}

// Weakening is drifted for objects of others (foreign policies): any change of one may weaken a
// profile, creations included, except those of the initial list.
func Weakening(h handler.EventHandler) handler.EventHandler {
	d := Drifted(h)
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if e.IsInInitialList {
				h.Create(ctx, e, q)
				return
			}
			h.Create(ctx, e, withPriority(q, DriftPriority))
		},
		UpdateFunc:  d.Update,
		DeleteFunc:  d.Delete,
		GenericFunc: h.Generic,
	}
}

// withPriority makes the queue add items at priority p when the caller sets none. Without a
// priority queue it is q itself.
func withPriority(q workqueue.TypedRateLimitingInterface[reconcile.Request], p int) workqueue.TypedRateLimitingInterface[reconcile.Request] {
	pq, ok := q.(priorityqueue.PriorityQueue[reconcile.Request])
	if !ok {
		return q
	}
	return prioritizedQueue{PriorityQueue: pq, priority: p}
}

type prioritizedQueue struct {
	priorityqueue.PriorityQueue[reconcile.Request]
	priority int
}

func (q prioritizedQueue) opts(o priorityqueue.AddOpts) priorityqueue.AddOpts {
	if o.Priority == nil {
		p := q.priority
		o.Priority = &p
	}
	return o
}

func (q prioritizedQueue) Add(item reconcile.Request) {
	q.PriorityQueue.AddWithOpts(q.opts(priorityqueue.AddOpts{}), item)
}

func (q prioritizedQueue) AddAfter(item reconcile.Request, after time.Duration) {
	q.PriorityQueue.AddWithOpts(q.opts(priorityqueue.AddOpts{After: after}), item)
}

func (q prioritizedQueue) AddRateLimited(item reconcile.Request) {
	q.PriorityQueue.AddWithOpts(q.opts(priorityqueue.AddOpts{RateLimited: true}), item)
}

func (q prioritizedQueue) AddWithOpts(o priorityqueue.AddOpts, items ...reconcile.Request) {
	q.PriorityQueue.AddWithOpts(q.opts(o), items...)
}
