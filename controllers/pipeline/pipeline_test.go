package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/meshapi"
	"github.com/meshguard/meshguard/internal/render"
)

// fakeOwner is an owner that is neither a profile nor a floor: the pipeline must need nothing
// else from it.
type fakeOwner struct {
	uid    types.UID
	name   string
	rows   []v1alpha1.ResourceStatus
	events *[]string
}

func (o fakeOwner) controls(x metav1.Object) bool           { return ControlledBy(x, o.uid) }
func (o fakeOwner) label() string                           { return o.name }
func (o fakeOwner) previousRows() []v1alpha1.ResourceStatus { return o.rows }
func (o fakeOwner) prunable(x metav1.Object) bool           { return o.controls(x) }
func (o fakeOwner) replaces(x metav1.Object) bool           { return FloorObject(x) }
func (o fakeOwner) eventf(_ recorder.EventRecorder, _ runtime.Object, _, reason, _, note string, args ...any) {
	*o.events = append(*o.events, reason+": "+fmt.Sprintf(note, args...))
}

// networkPolicy is a generated NetworkPolicy controlled by the owner with that UID and kind.
func networkPolicy(ns, name, kind string, uid types.UID) *unstructured.Unstructured {
	u := NewUnstructured(meshapi.GVKNetworkPolicy)
	u.SetNamespace(ns)
	u.SetName(name)
	u.SetLabels(map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue})
	u.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: kind, Name: "owner", UID: uid, Controller: ptr.To(true)}})
	_ = unstructured.SetNestedStringSlice(u.Object, []string{"Ingress"}, "spec", "policyTypes")
	_ = unstructured.SetNestedMap(u.Object, map[string]any{}, "spec", "podSelector")
	return u
}

func testPipeline(t *testing.T, objs ...client.Object) (*Pipeline, client.Client) {
	t.Helper()
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	// Server-side apply as create or replace: enough for the pipeline's steps (envtest covers
	// the real apply).
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).WithInterceptorFuncs(interceptor.Funcs{
		Apply: func(ctx context.Context, c client.WithWatch, obj runtime.ApplyConfiguration, _ ...client.ApplyOption) error {
			b, err := json.Marshal(obj)
			if err != nil {
				return err
			}
			u := &unstructured.Unstructured{}
			if err := u.UnmarshalJSON(b); err != nil {
				return err
			}
			live := NewUnstructured(u.GroupVersionKind())
			switch err := c.Get(ctx, client.ObjectKeyFromObject(u), live); {
			case apierrors.IsNotFound(err):
				return c.Create(ctx, u)
			case err != nil:
				return err
			}
			u.SetResourceVersion(live.GetResourceVersion())
			return c.Update(ctx, u)
		},
	}).Build()
	m := meta.NewDefaultRESTMapper(nil)
	m.Add(meshapi.GVKNetworkPolicy, meta.RESTScopeNamespace)
	return &Pipeline{Client: c, APIReader: c, RenderOptions: render.DefaultOptions(), Mapper: m}, c
}

func get(c client.Client, ns, name string) (*unstructured.Unstructured, error) {
	u := NewUnstructured(meshapi.GVKNetworkPolicy)
	return u, c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, u)
}

func TestThePipelineAppliesPrunesAndObservesForAnyOwner(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	stale := networkPolicy("shop", "o-stale", "Fake", "uid-o")
	others := networkPolicy("shop", "x-default-deny", "Fake", "uid-x")
	p, c := testPipeline(t, stale, others)
	var events []string
	own := fakeOwner{uid: "uid-o", name: "o", events: &events}
	intent := &v1alpha1.MeshSecurityProfile{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "o", UID: "uid-o"}}
	j := Job{Owner: own, Intent: intent, Result: &render.Result{Objects: []*unstructured.Unstructured{networkPolicy("shop", "o-default-deny", "Fake", "uid-o")}}}

	obs := &Observation{}
	result := p.Run(ctx, j, obs)
	g.Expect(obs.ApplyErrs).To(BeEmpty())
	g.Expect(obs.Rows).To(HaveLen(1))
	g.Expect(obs.Rows[0].row.State).To(Equal(v1alpha1.ResourceInSync), obs.Rows[0].row.Message)
	live, err := get(c, "shop", "o-default-deny")
	g.Expect(err).NotTo(HaveOccurred(), "applied")
	g.Expect(own.controls(live)).To(BeTrue(), "with the owner's controller reference")
	_, err = get(c, "shop", "o-stale")
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the owner's object render no longer produces is pruned")
	_, err = get(c, "shop", "x-default-deny")
	g.Expect(err).NotTo(HaveOccurred(), "another owner's object is never pruned")
	g.Expect(events).To(ConsistOf("Created: created NetworkPolicy o-default-deny", "Pruned: deleted NetworkPolicy shop/o-stale: no longer in the profile"),
		"events go to the owner, whatever it is")
	g.Expect(result.RequeueAfter).To(Equal(DefaultCertificateRecheck), "looked at again before the certificates could change unseen")

	// The owner's previous rows tell a deletion by someone (drift, recreated) from a new object.
	g.Expect(c.Delete(ctx, live)).To(Succeed())
	events = nil
	own.rows = []v1alpha1.ResourceStatus{obs.Rows[0].row}
	j.Owner = own
	obs = &Observation{}
	p.Run(ctx, j, obs)
	g.Expect(obs.Rows[0].drifted).NotTo(BeEmpty())
	g.Expect(events).To(ContainElement("DriftDetected: NetworkPolicy shop/o-default-deny was deleted"))
	_, err = get(c, "shop", "o-default-deny")
	g.Expect(err).NotTo(HaveOccurred(), "recreated")
}

func TestThePipelineHandsOverOnlyOnceEveryObjectOfTheOwnerIsApplied(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	floor := networkPolicy("shop", "floor-default-deny", gvkClusterProfile.Kind, "uid-floor")
	taken := networkPolicy("shop", "o-allow-dns", "Deployment", "uid-someone")
	p, c := testPipeline(t, floor, taken)
	var events []string
	own := fakeOwner{uid: "uid-o", name: "o", events: &events}
	intent := &v1alpha1.MeshSecurityProfile{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "o", UID: "uid-o"}}
	j := Job{Owner: own, Intent: intent, Result: &render.Result{Objects: []*unstructured.Unstructured{
		networkPolicy("shop", "o-default-deny", "Fake", "uid-o"), networkPolicy("shop", "o-allow-dns", "Fake", "uid-o"),
	}}}

	obs := &Observation{}
	p.Run(ctx, j, obs)
	g.Expect(obs.Rows[1].row.State).To(Equal(v1alpha1.ResourceConflict))
	g.Expect(obs.floorKept).To(ContainSubstring("NetworkPolicy o-allow-dns is Conflict"))
	_, err := get(c, "shop", "floor-default-deny")
	g.Expect(err).NotTo(HaveOccurred(), "the replaced objects stay while one of the owner's is not applied")

	g.Expect(c.Delete(ctx, taken)).To(Succeed())
	obs = &Observation{}
	p.Run(ctx, j, obs)
	g.Expect(obs.floorKept).To(BeEmpty())
	_, err = get(c, "shop", "floor-default-deny")
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "handed over once every object is applied")
}

// eventLog records the target and note of each event.
type eventLog struct {
	recorder.EventRecorder
	got []string
}

func (l *eventLog) Eventf(regarding, _ runtime.Object, _, reason, _, note string, args ...any) {
	m, _ := meta.Accessor(regarding)
	kind := regarding.GetObjectKind().GroupVersionKind().Kind
	l.got = append(l.got, fmt.Sprintf("%s %s/%s %s: %s", kind, m.GetNamespace(), m.GetName(), reason, fmt.Sprintf(note, args...)))
}

func TestEachOwnerIsTheTargetOfItsOwnEvents(t *testing.T) {
	g := NewWithT(t)
	rec := &eventLog{}
	c := &v1alpha1.ClusterMeshSecurityProfile{ObjectMeta: metav1.ObjectMeta{Name: "platform-floor", UID: "uid-floor"}}
	NewFloorOwner(c, "shop", nil).eventf(rec, nil, "Normal", "Created", "Apply", "created %s", "NetworkPolicy platform-floor-default-deny")
	p := &v1alpha1.MeshSecurityProfile{TypeMeta: metav1.TypeMeta{Kind: "MeshSecurityProfile"}, ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "team"}}
	ProfileOwner{p}.eventf(rec, nil, "Normal", "Created", "Apply", "created %s", "NetworkPolicy team-default-deny")
	g.Expect(rec.got).To(Equal([]string{
		"ClusterMeshSecurityProfile /platform-floor Created: namespace shop: created NetworkPolicy platform-floor-default-deny",
		"MeshSecurityProfile shop/team Created: created NetworkPolicy team-default-deny",
	}), "a floor's events land on its cluster profile, naming the namespace; a profile's on the profile")
}

func TestAKindInstalledAfterTheStartIsWatchedOnceByEveryReconciler(t *testing.T) {
	g := NewWithT(t)
	late := meshapi.GVKNetworkPolicy.GroupVersion().WithKind("Late")
	p := &Pipeline{atStart: map[schema.GroupVersionKind]bool{meshapi.GVKNetworkPolicy: true}}
	var profiles, floors []string
	failFloors := true
	p.OnNewKind(func(gvk schema.GroupVersionKind) error { profiles = append(profiles, gvk.Kind); return nil })
	p.OnNewKind(func(gvk schema.GroupVersionKind) error {
		if failFloors {
			return errors.New("watch failed")
		}
		floors = append(floors, gvk.Kind)
		return nil
	})

	g.Expect(p.ensureWatch(meshapi.GVKNetworkPolicy)).To(Succeed())
	g.Expect(profiles).To(BeEmpty(), "a kind installed at the start is watched from each setup")
	g.Expect(p.ensureWatch(late)).To(MatchError("watch failed"))
	failFloors = false
	g.Expect(p.ensureWatch(late)).To(Succeed())
	g.Expect(p.ensureWatch(late)).To(Succeed())
	g.Expect(profiles).To(Equal([]string{"Late"}), "one watch per reconciler, not one per reconcile")
	g.Expect(floors).To(Equal([]string{"Late"}), "a watch that failed is tried again")
}
