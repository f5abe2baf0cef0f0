package pipeline

import (
	"encoding/json"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/meshguard/meshguard/internal/drift"
)

// renderedNP is a NetworkPolicy as render builds it: int64s (as DeepCopyJSON requires), nested lists, meshguard's metadata.
func renderedNP(port int) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
		"metadata": map[string]any{"name": "p-allow-frontend", "namespace": "shop",
			"labels": map[string]any{"app.kubernetes.io/managed-by": "meshguard"}},
		"spec": map[string]any{
			"podSelector": map[string]any{"matchLabels": map[string]any{"app": "api"}},
			"policyTypes": []any{"Ingress"},
			"ingress": []any{map[string]any{
				"from":  []any{map[string]any{"podSelector": map[string]any{"matchLabels": map[string]any{"app": "web"}}}},
				"ports": []any{map[string]any{"port": int64(port), "protocol": "TCP"}},
			}},
		},
	}}
	return withHash(u)
}

// stored is what the API server returns for want: the same body through JSON (numbers become
// int64), with the server's metadata, managed fields and a status of its own.
func stored(t *testing.T, want *unstructured.Unstructured, rv string) *unstructured.Unstructured {
	t.Helper()
	b, err := json.Marshal(want.Object)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(b); err != nil {
		t.Fatal(err)
	}
	u.SetResourceVersion(rv)
	u.SetUID("uid-1")
	u.SetGeneration(1)
	a := u.GetAnnotations()
	a["someone.else/note"] = "kept"
	u.SetAnnotations(a)
	u.Object["status"] = map[string]any{"conditions": []any{map[string]any{"type": "ZtunnelAccepted", "status": "True"}}}
	return u
}

func cached(t *testing.T, o *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	got, err := StripGeneratedBodies(o.DeepCopy())
	if err != nil {
		t.Fatal(err)
	}
	return got.(*unstructured.Unstructured)
}

func TestTheCacheKeepsNoBodyOfGeneratedObjects(t *testing.T) {
	g := NewWithT(t)
	want := renderedNP(8080)
	c := cached(t, stored(t, want, "10"))

	g.Expect(c.Object).NotTo(HaveKey("spec"), "the body is what the cache must not hold")
	g.Expect(c.Object).To(HaveKey("status"), "Istio's binding conditions are read from the cache")
	g.Expect(c.GetLabels()).To(Equal(want.GetLabels()))
	g.Expect(c.GetResourceVersion()).To(Equal("10"))
	g.Expect(stripped(c)).To(BeTrue())

	again := cached(t, c)
	g.Expect(again.Object).To(Equal(c.Object), "a transformed object handed in again keeps its hash")

	cm := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "data": map[string]any{"k": "v"}}}
	g.Expect(cached(t, cm).Object).To(HaveKey("data"), "objects meshguard does not generate pass whole")
	typed := &corev1.ConfigMap{Data: map[string]string{"k": "v"}}
	out, err := StripGeneratedBodies(typed)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out).To(BeIdenticalTo(runtime.Object(typed)))
}

func TestTheCachedMetadataWithTheRenderedBodyIsTheLiveObject(t *testing.T) {
	g := NewWithT(t)
	want := renderedNP(8080)
	full := stored(t, want, "10")
	live := withBody(cached(t, full), want, &verifiedBodies{})
	g.Expect(live).NotTo(BeNil(), "the same body (through JSON) hashes alike")
	g.Expect(live.Object).NotTo(HaveKey(cachedBodyHash))
	g.Expect(drift.Compare(want, live)).To(BeEmpty())
	g.Expect(drift.Compare(want, live)).To(Equal(drift.Compare(want, full)), "decide sees what it would see in the full object")

	// Metadata drift is seen without the body: it is in the cache.
	full.SetLabels(map[string]string{"app.kubernetes.io/managed-by": "someone"})
	live = withBody(cached(t, full), want, &verifiedBodies{})
	g.Expect(live).NotTo(BeNil())
	g.Expect(drift.Compare(want, live)).To(Equal(drift.Compare(want, full)))
	g.Expect(drift.Compare(want, live)).NotTo(BeEmpty())
}

func TestABodyThatDiffersIsReadWhole(t *testing.T) {
	g := NewWithT(t)
	want := renderedNP(8080)

	edited := stored(t, want, "11")
	g.Expect(unstructured.SetNestedSlice(edited.Object, []any{map[string]any{}}, "spec", "ingress")).To(Succeed()) // allow all
	g.Expect(withBody(cached(t, edited), want, &verifiedBodies{})).To(BeNil(), "drift in the body: the full object must be read")

	changedProfile := renderedNP(9090)
	g.Expect(withBody(cached(t, stored(t, want, "10")), changedProfile, &verifiedBodies{})).To(BeNil(), "a changed profile: the full object must be read")
}

func TestAnObjectFoundInSyncInAnotherFormIsNotReadAgainUntilItChanges(t *testing.T) {
	g := NewWithT(t)
	want := renderedNP(8080)
	// The API server stores a default render does not write (a port's protocol, say): another body.
	full := stored(t, want, "10")
	g.Expect(unstructured.SetNestedField(full.Object, "extra-default", "spec", "defaulted")).To(Succeed())
	v := &verifiedBodies{}
	g.Expect(withBody(cached(t, full), want, v)).To(BeNil())

	v.store(full, want) // decide found it in sync
	g.Expect(withBody(cached(t, full), want, v)).NotTo(BeNil())

	full.SetResourceVersion("12") // anyone's write since
	g.Expect(withBody(cached(t, full), want, v)).To(BeNil(), "a new resourceVersion is read again")

	full.SetResourceVersion("10")
	changed := renderedNP(9090)
	g.Expect(withBody(cached(t, full), changed, v)).To(BeNil(), "in sync with the old rendering says nothing of the new one")

	v.forget(want)
	g.Expect(withBody(cached(t, full), want, v)).To(BeNil())
}

func TestACachedObjectSharesItsKeysAndKeepsItsMetadata(t *testing.T) {
	g := NewWithT(t)
	want := renderedNP(8080)
	want.SetOwnerReferences(nil)
	full := stored(t, want, "10")
	full.SetCreationTimestamp(full.GetCreationTimestamp())
	c := cached(t, full)
	g.Expect(c.GetLabels()).To(Equal(full.GetLabels()))
	g.Expect(c.GetAnnotations()).To(Equal(full.GetAnnotations()))
	g.Expect(c.GetUID()).To(Equal(full.GetUID()))
	g.Expect(c.GetGeneration()).To(BeZero(), "not kept: nothing reads it from the cache")
	g.Expect(c.DeepCopy().Object).To(Equal(c.Object), "the cache deep-copies what it hands out")
}
