package pipeline

import (
	"errors"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/certs"
	"github.com/meshguard/meshguard/internal/render"
)

// TestKstatusReadsTheStatusAsGitOpsToolsExpect computes kstatus (what Flux and cli-utils use) on
// statuses built by ApplyStatus.
func TestKstatusReadsTheStatusAsGitOpsToolsExpect(t *testing.T) {
	inSync := []childResult{row("NetworkPolicy", "a", v1alpha1.ResourceInSync)}
	cases := []struct {
		name string
		obs  Observation
		want status.Status
	}{
		{"a converged profile is Current", Observation{Rows: inSync, certs: &certs.Report{Reason: v1alpha1.ReasonCertValid, Healthy: true}}, status.CurrentStatus},
		{"a profile with an expiring certificate is still Current", Observation{Rows: inSync, certs: &certs.Report{Reason: v1alpha1.ReasonCertExpiringSoon}}, status.CurrentStatus},
		{"an invalid profile is Failed", Observation{Invalid: &render.InvalidSpecError{Errs: field.ErrorList{field.Invalid(field.NewPath("spec"), "x", "bad")}}}, status.FailedStatus},
		{"a profile waiting for CRDs is InProgress", Observation{Rows: []childResult{{row: v1alpha1.ResourceStatus{Kind: "PeerAuthentication", State: v1alpha1.ResourcePending}, pendingOn: "Istio"}}}, status.InProgressStatus},
		{"a profile with a transient apply error is InProgress", Observation{Rows: []childResult{{row: v1alpha1.ResourceStatus{Kind: "NetworkPolicy"}, Err: errors.New("boom")}}}, status.InProgressStatus},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			p := &v1alpha1.MeshSecurityProfile{
				TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "MeshSecurityProfile"},
				ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "shop", Generation: 2},
			}
			ApplyStatus(p, &tc.obs)
			m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(p)
			g.Expect(err).NotTo(HaveOccurred())
			res, err := status.Compute(&unstructured.Unstructured{Object: m})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(res.Status).To(Equal(tc.want), res.Message)
		})
	}
}
