// Package storedform checks, on a real API server with the real mesh CRDs, that the API server
// stores every object render produces exactly as render writes it. The manager's cache keeps only a
// hash of its generated objects' bodies (controllers/pipeline/cachedbody.go): an object stored in
// another form (a default the server adds, a field it drops) is still handled correctly, but it is
// read whole once after every restart and every change, where an exact one is never read.
package storedform

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/controllers/pipeline"
	"github.com/meshguard/meshguard/internal/drift"
	"github.com/meshguard/meshguard/internal/render"
	"github.com/meshguard/meshguard/internal/render/goldencase"
	"github.com/meshguard/meshguard/test/integration/inprocess"
	"github.com/meshguard/meshguard/test/testenv"
)

// goldenCases renders every golden profile of internal/render (the ambient ones with their data
// plane facts), by file name.
func goldenCases(t *testing.T) map[string][]*unstructured.Unstructured {
	t.Helper()
	out := map[string][]*unstructured.Unstructured{}
	for _, dir := range []string{"../../../internal/render/testdata", "../../../internal/render/testdata/ambient"} {
		paths, err := goldencase.Paths(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range paths {
			p, opts, err := goldencase.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			res, err := render.Render(p, opts)
			if err != nil {
				continue // the invalid-* cases
			}
			out[strings.TrimPrefix(path, "../../../internal/render/testdata/")] = res.Objects
		}
	}
	return out
}

func TestTheAPIServerStoresWhatRenderWrites(t *testing.T) {
	g := NewWithT(t)
	env, err := testenv.New(testenv.Istio | testenv.Linkerd)
	g.Expect(err).NotTo(HaveOccurred())
	cfg, err := env.Start()
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { g.Expect(env.Stop()).To(Succeed()) }()
	k8s, err := client.New(cfg, client.Options{Scheme: inprocess.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	ctx := context.Background()

	namespaces := map[string]bool{}
	var differ []string
	kinds := map[string]int{}
	for name, objects := range goldenCases(t) {
		for _, o := range objects {
			if ns := o.GetNamespace(); ns != "" && !namespaces[ns] {
				err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
				g.Expect(client.IgnoreAlreadyExists(err)).To(Succeed())
				namespaces[ns] = true
			}
			// What the API server would store, defaults and pruning included, without storing it.
			stored := o.DeepCopy()
			err := k8s.Apply(ctx, client.ApplyConfigurationFromUnstructured(stored), client.FieldOwner(v1alpha1.FieldManager), client.ForceOwnership, client.DryRunAll)
			g.Expect(err).NotTo(HaveOccurred(), "%s: %s %s", name, o.GetKind(), o.GetName())
			g.Expect(stored.GetUID()).NotTo(BeEmpty(), "the API server's answer is what is compared")
			kinds[o.GetKind()]++
			if pipeline.BodyHash(stored) == pipeline.BodyHash(o) {
				continue
			}
			changes := drift.Compare(o, stored)
			var paths []string
			for _, c := range changes {
				paths = append(paths, c.Path)
			}
			differ = append(differ, fmt.Sprintf("%s: %s %s stored differently (%s)", name, o.GetKind(), o.GetName(), strings.Join(paths, ", ")))
		}
	}
	sort.Strings(differ)
	g.Expect(differ).To(BeEmpty())

	// The check can fail: a port without its protocol is stored with protocol TCP (the API
	// server's default for NetworkPolicy ports), another body.
	np := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
		"metadata": map[string]any{"name": "no-protocol", "namespace": "default"},
		"spec": map[string]any{"podSelector": map[string]any{}, "policyTypes": []any{"Ingress"},
			"ingress": []any{map[string]any{"ports": []any{map[string]any{"port": int64(80)}}}}},
	}}
	stored := np.DeepCopy()
	g.Expect(k8s.Apply(ctx, client.ApplyConfigurationFromUnstructured(stored), client.FieldOwner(v1alpha1.FieldManager), client.DryRunAll)).To(Succeed())
	g.Expect(pipeline.BodyHash(stored)).NotTo(Equal(pipeline.BodyHash(np)))
	for _, kind := range []string{"NetworkPolicy", "PeerAuthentication", "AuthorizationPolicy", "RequestAuthentication", "Server", "MeshTLSAuthentication", "NetworkAuthentication", "HTTPRoute"} {
		g.Expect(kinds).To(HaveKey(kind), "no %s was checked", kind)
	}
	t.Logf("objects checked by kind: %v", kinds)
}
