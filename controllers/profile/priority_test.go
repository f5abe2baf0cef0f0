package profile

import (
	"context"
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/controllers/pipeline"
)

// queueWithNewProfiles is the profiles' queue while a hundred new profiles wait to converge:
// their creation events went through the same handler as in the manager (EnqueueRequestForObject).
func queueWithNewProfiles(t *testing.T, n int) priorityqueue.PriorityQueue[reconcile.Request] {
	t.Helper()
	q := priorityqueue.New[reconcile.Request]("test-drift-first")
	t.Cleanup(q.ShutDown)
	h := &handler.EnqueueRequestForObject{}
	for i := range n {
		p := &v1alpha1.MeshSecurityProfile{ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("new-%03d", i), Name: "p", ResourceVersion: "1"}}
		h.Create(context.Background(), event.CreateEvent{Object: p}, q)
	}
	if got := q.Len(); got != n {
		t.Fatalf("queue holds %d, want %d", got, n)
	}
	return q
}

func ownedPolicy(ns, rv string) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p-default-deny", ResourceVersion: rv,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: "MeshSecurityProfile", Name: "p", UID: "uid-p", Controller: ptr.To(true)}}}}
}

func ownerHandlerForTest(t *testing.T) handler.EventHandler {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	r := &Reconciler{Scheme: scheme}
	return r.ownerHandler(testMapper())
}

func TestADriftedObjectIsReconciledBeforeQueuedNewProfiles(t *testing.T) {
	for name, ev := range map[string]func(h handler.EventHandler, q priorityqueue.PriorityQueue[reconcile.Request]){
		"edited": func(h handler.EventHandler, q priorityqueue.PriorityQueue[reconcile.Request]) {
			h.Update(context.Background(), event.UpdateEvent{ObjectOld: ownedPolicy("shop", "7"), ObjectNew: ownedPolicy("shop", "8")}, q)
		},
		"deleted": func(h handler.EventHandler, q priorityqueue.PriorityQueue[reconcile.Request]) {
			h.Delete(context.Background(), event.DeleteEvent{Object: ownedPolicy("shop", "7")}, q)
		},
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			q := queueWithNewProfiles(t, 100)
			ev(ownerHandlerForTest(t), q)
			g.Expect(q.Len()).To(Equal(101))
			item, prio, _ := q.GetWithPriority()
			g.Expect(item.NamespacedName).To(Equal(client.ObjectKey{Namespace: "shop", Name: "p"}), "the drifted profile first")
			g.Expect(prio).To(Equal(pipeline.DriftPriority))
		})
	}
}

func TestAResyncDoesNotJumpTheQueue(t *testing.T) {
	g := NewWithT(t)
	q := queueWithNewProfiles(t, 3)
	ownerHandlerForTest(t).Update(context.Background(), event.UpdateEvent{ObjectOld: ownedPolicy("shop", "7"), ObjectNew: ownedPolicy("shop", "7")}, q)
	g.Expect(q.Len()).To(Equal(4))
	for range 3 {
		item, _, _ := q.GetWithPriority()
		g.Expect(item.Namespace).NotTo(Equal("shop"))
		q.Done(item)
	}
}

func TestAWeakeningPolicyJumpsTheQueueButNotWhenListedAtStart(t *testing.T) {
	g := NewWithT(t)
	toShop := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: "shop", Name: "p"}}}
	})
	q := queueWithNewProfiles(t, 10)
	pipeline.Weakening(toShop).Create(context.Background(), event.CreateEvent{Object: ownedPolicy("shop", "1"), IsInInitialList: true}, q)
	g.Expect(q.Len()).To(Equal(11))
	item, prio, _ := q.GetWithPriority()
	g.Expect(item.Namespace).NotTo(Equal("shop"), "the initial list waits")
	g.Expect(prio).To(BeZero())
	q.Done(item)

	pipeline.Weakening(toShop).Create(context.Background(), event.CreateEvent{Object: ownedPolicy("shop", "2")}, q)
	g.Expect(q.Len()).To(Equal(10), "the same request, raised (Len flushes the queue's add buffer)")
	item, prio, _ = q.GetWithPriority()
	g.Expect(item.Namespace).To(Equal("shop"), "a policy created while running jumps the queue")
	g.Expect(prio).To(Equal(pipeline.DriftPriority))
}

func testMapper() meta.RESTMapper {
	m := meta.NewDefaultRESTMapper([]schema.GroupVersion{v1alpha1.GroupVersion})
	m.Add(v1alpha1.GroupVersion.WithKind("MeshSecurityProfile"), meta.RESTScopeNamespace)
	return m
}
