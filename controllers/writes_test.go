package controllers_test

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/controllers"
)

// writeLog records, per namespace, what the reconciler's client did in order: "reconcile" for
// each read of a profile by key (the first call of every Reconcile) and one entry per API write.
// Splitting a namespace's log at "reconcile" gives the writes of each reconcile.
type writeLog struct {
	mu  sync.Mutex
	log map[string][]string
}

func (w *writeLog) add(ns, entry string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.log == nil {
		w.log = map[string][]string{}
	}
	w.log[ns] = append(w.log[ns], entry)
}

// reconciles returns the writes of each reconcile of the namespace's profiles, in order.
func (w *writeLog) reconciles(ns string) [][]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out [][]string
	for _, e := range w.log[ns] {
		if e == "reconcile" {
			out = append(out, []string{})
			continue
		}
		if len(out) == 0 {
			out = append(out, []string{})
		}
		out[len(out)-1] = append(out[len(out)-1], e)
	}
	return out
}

// countingClient is the manager's client with every write and every profile read logged.
type countingClient struct {
	client.Client
	log *writeLog
}

func namespaceOf(obj client.Object) string {
	if obj.GetNamespace() == "" {
		return obj.GetName() // a Namespace
	}
	return obj.GetNamespace()
}

func kindOf(obj runtime.Object) string {
	if gvk := obj.GetObjectKind().GroupVersionKind(); gvk.Kind != "" {
		return gvk.Kind
	}
	return reflect.TypeOf(obj).Elem().Name()
}

func (c *countingClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, ok := obj.(*v1alpha1.MeshSecurityProfile); ok {
		c.log.add(key.Namespace, "reconcile")
	}
	return c.Client.Get(ctx, key, obj, opts...)
}

func (c *countingClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	c.log.add(namespaceOf(obj), "create "+kindOf(obj))
	return c.Client.Create(ctx, obj, opts...)
}

func (c *countingClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	c.log.add(namespaceOf(obj), "update "+kindOf(obj))
	return c.Client.Update(ctx, obj, opts...)
}

func (c *countingClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	c.log.add(namespaceOf(obj), "patch "+kindOf(obj))
	return c.Client.Patch(ctx, obj, patch, opts...)
}

func (c *countingClient) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	c.log.add(namespaceOf(obj), "delete "+kindOf(obj))
	return c.Client.Delete(ctx, obj, opts...)
}

func (c *countingClient) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
	// meshguard applies unstructured objects (client.ApplyConfigurationFromUnstructured).
	if u, ok := obj.(interface {
		GetNamespace() string
		GetName() string
		GetKind() string
	}); ok {
		ns := u.GetNamespace()
		if ns == "" {
			ns = u.GetName() // a Namespace
		}
		c.log.add(ns, "apply "+u.GetKind())
	} else {
		c.log.add("", "apply")
	}
	return c.Client.Apply(ctx, obj, opts...)
}

func (c *countingClient) Status() client.SubResourceWriter {
	return &countingStatus{SubResourceWriter: c.Client.Status(), log: c.log}
}

type countingStatus struct {
	client.SubResourceWriter
	log *writeLog
}

func (s *countingStatus) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	s.log.add(namespaceOf(obj), "update "+kindOf(obj)+"/status")
	return s.SubResourceWriter.Update(ctx, obj, opts...)
}

func (s *countingStatus) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	s.log.add(namespaceOf(obj), "patch "+kindOf(obj)+"/status")
	return s.SubResourceWriter.Patch(ctx, obj, patch, opts...)
}

// profileWrites are the writes to the profile itself (metadata or status) among entries.
func profileWrites(entries []string) []string {
	var out []string
	for _, e := range entries {
		if strings.Contains(e, "MeshSecurityProfile") {
			out = append(out, e)
		}
	}
	return out
}

var _ = Describe("API writes per reconcile", func() {
	It("writes the profile at most once per reconcile, the finalizer in a reconcile of its own", func() {
		ns := newNamespace()
		// A Linkerd profile sets namespace annotations, so it needs the finalizer: the case where
		// the finalizer used to be patched in the middle of a reconcile.
		p := profile(ns, "p", withMesh(v1alpha1.MeshLinkerd), withMTLS(v1alpha1.MTLSStrict), withNetworkDefaultDeny(v1alpha1.DirectionIngress))
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Eventually(condition(p, v1alpha1.ConditionPoliciesApplied)).Should(HavePrefix("True/"))
		// Let the reconciles that the children's creation events trigger settle.
		time.Sleep(2 * time.Second)

		recs := writes.reconciles(ns)
		total, onProfile := 0, 0
		for i, w := range recs {
			GinkgoWriter.Printf("reconcile %d: %v\n", i+1, w)
			total += len(w)
			onProfile += len(profileWrites(w))
		}
		GinkgoWriter.Printf("%d reconciles, %d API writes, %d of them to the profile\n", len(recs), total, onProfile)
		AddReportEntry("writes", recs)
		for i, w := range recs {
			Expect(len(profileWrites(w))).To(BeNumerically("<=", 1), "reconcile %d wrote the profile more than once: %v", i+1, w)
		}
		Expect(getProfile(p).Finalizers).To(ContainElement(controllers.FinalizerNamespaceAnnotations))
	})
})
