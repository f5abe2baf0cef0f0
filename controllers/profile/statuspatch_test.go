package profile

import (
	"errors"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
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
