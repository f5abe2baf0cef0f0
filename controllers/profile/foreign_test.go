package profile

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/render"
)

func TestAForeignObjectRequeuesTheProfilesItCanWeaken(t *testing.T) {
	g := NewWithT(t)
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	profile := func(ns string, mesh v1alpha1.Mesh) *v1alpha1.MeshSecurityProfile {
		return &v1alpha1.MeshSecurityProfile{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p"}, Spec: v1alpha1.MeshSecurityProfileSpec{Mesh: mesh}}
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		profile("shop", v1alpha1.MeshIstio), profile("api", ""), profile("payments", v1alpha1.MeshLinkerd)).Build()
	r := &Reconciler{Client: c, RenderOptions: render.DefaultOptions()}
	names := func(o *networkingv1.NetworkPolicy) []string {
		var out []string
		for _, req := range r.profilesForForeign(context.Background(), o) {
			out = append(out, req.Namespace)
		}
		return out
	}
	g.Expect(names(&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "open"}})).To(ConsistOf("shop"),
		"a policy in a namespace concerns that namespace's profile")
	g.Expect(names(&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "elsewhere", Name: "open"}})).To(BeEmpty())
	g.Expect(names(&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "istio-system", Name: "allow-all"}})).To(ConsistOf("shop", "api"),
		"Istio's root namespace applies mesh-wide (Istio: root namespace policies apply to every namespace), to Istio profiles only")
}
