package profile

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// certificateEvent raises a Warning when the certificates' verdict turns worse than before.
func (r *Reconciler) certificateEvent(before, p *v1alpha1.MeshSecurityProfile) {
	old := meta.FindStatusCondition(before.Status.Conditions, v1alpha1.ConditionCertificatesHealthy)
	cur := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionCertificatesHealthy)
	if cur == nil || cur.Status != metav1.ConditionFalse || (old != nil && old.Reason == cur.Reason) {
		return
	}
	r.Recorder.Eventf(p, nil, "Warning", "Certificate"+cur.Reason, "CheckCertificates", "%s", cur.Message)
}
