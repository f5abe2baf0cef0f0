package pipeline

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

func TestDriftIsCountedByTheFieldManagerThatMadeIt(t *testing.T) {
	g := NewWithT(t)
	now := metav1.Now()
	c := fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{
		Get: func(_ context.Context, _ client.WithWatch, _ client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
			obj.SetManagedFields([]metav1.ManagedFieldsEntry{
				{Manager: v1alpha1.FieldManager, Operation: metav1.ManagedFieldsOperationApply, Time: &now},
				{Manager: "kubectl-edit", Operation: metav1.ManagedFieldsOperationUpdate, Time: &now},
			})
			return nil
		},
	}).Build()
	r := &Pipeline{APIReader: c}
	obj := &unstructured.Unstructured{}
	obj.SetAPIVersion("networking.k8s.io/v1")
	obj.SetKind("NetworkPolicy")
	obj.SetNamespace("shop")
	obj.SetName("meshguard-default-deny")
	g.Expect(fieldManagerLabel(r.lastWriters(context.Background(), obj))).To(Equal("kubectl-edit"), "the label is the name lastWriters reports")
	g.Expect(fieldManagerLabel("unknown field manager")).To(Equal("unknown"))
	g.Expect(fieldManagerLabel(`field manager "argocd-controller" (Apply)`)).To(Equal("argocd-controller"))
	g.Expect(fieldManagerLabel("")).To(Equal("unknown"))
}
