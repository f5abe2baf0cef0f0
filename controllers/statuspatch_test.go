package controllers

import (
	"context"
	"errors"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

func TestAStatusPatchThatLosesTheOptimisticLockRequeuesWithoutAnError(t *testing.T) {
	conflict := apierrors.NewConflict(schema.GroupResource{Group: "security.meshguard.dev", Resource: "meshsecurityprofiles"}, "default",
		errors.New("the object has been modified; please apply your changes to the latest version and try again"))
	ref := klog.KRef("shop", "default")
	for _, tc := range []struct {
		name      string
		result    ctrl.Result
		retErr    error
		patchErr  error
		wantAfter time.Duration
		wantErr   bool
	}{
		{name: "a conflict alone is a quick requeue, not an error", patchErr: conflict, wantAfter: statusConflictRequeue},
		{name: "a conflict keeps an earlier, sooner requeue", result: ctrl.Result{RequeueAfter: 100 * time.Millisecond}, patchErr: conflict, wantAfter: 100 * time.Millisecond},
		{name: "a conflict shortens a later requeue", result: ctrl.Result{RequeueAfter: 5 * time.Minute}, patchErr: conflict, wantAfter: statusConflictRequeue},
		{name: "a conflict does not hide the reconcile's own error", retErr: errors.New("apply NetworkPolicy: boom"), patchErr: conflict, wantAfter: statusConflictRequeue, wantErr: true},
		{name: "another patch error is the reconcile's error", patchErr: apierrors.NewServiceUnavailable("etcd"), wantErr: true},
		{name: "a successful patch changes nothing", result: ctrl.Result{RequeueAfter: time.Minute}, wantAfter: time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			result, err := afterStatusPatch(tc.result, tc.retErr, tc.patchErr, ref)
			g.Expect(result.RequeueAfter).To(Equal(tc.wantAfter))
			if !tc.wantErr {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			g.Expect(err).To(HaveOccurred())
			if tc.patchErr != nil && !apierrors.IsConflict(tc.patchErr) {
				g.Expect(err).To(MatchError(ContainSubstring("patch status of shop/default")))
			}
			if tc.retErr != nil {
				g.Expect(apierrors.IsConflict(err)).To(BeFalse(), "the conflict itself is not reported")
			}
		})
	}
}

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
	r := &pipeline{APIReader: c}
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
