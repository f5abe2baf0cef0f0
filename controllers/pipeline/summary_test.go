package pipeline

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

func TestSummaryRepeatsTheStatusInScalars(t *testing.T) {
	expiry := metav1.NewTime(time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC))
	cond := func(t, s, reason string) metav1.Condition {
		return metav1.Condition{Type: t, Status: metav1.ConditionStatus(s), Reason: reason}
	}
	cases := []struct {
		name string
		p    v1alpha1.MeshSecurityProfile
		want v1alpha1.FleetSummary
	}{
		{
			name: "a profile without status yet reads Ready Unknown and nothing else",
			want: v1alpha1.FleetSummary{Ready: "Unknown"},
		},
		{
			name: "a ready sidecar namespace gives Ready, Effective, no drift, the expiry and Sidecar",
			p: v1alpha1.MeshSecurityProfile{Status: v1alpha1.MeshSecurityProfileStatus{
				Conditions:               []metav1.Condition{cond("Ready", "True", "Succeeded"), cond("Effective", "True", "NotWeakened")},
				Resources:                []v1alpha1.ResourceStatus{{Kind: "PeerAuthentication", State: v1alpha1.ResourceInSync}},
				NearestCertificateExpiry: &expiry,
				DataPlane:                &v1alpha1.DataPlaneStatus{Sidecar: 3},
			}},
			want: v1alpha1.FleetSummary{Ready: "True", Reason: "Succeeded", Effective: "True", EarliestCertificateExpiry: &expiry, DataPlane: "Sidecar"},
		},
		{
			name: "drifted and missing objects count, Pending and Conflict rows do not",
			p: v1alpha1.MeshSecurityProfile{Status: v1alpha1.MeshSecurityProfileStatus{
				Conditions: []metav1.Condition{cond("Ready", "False", "AuditOnly"), cond("Effective", "False", "Weakened")},
				Resources: []v1alpha1.ResourceStatus{
					{State: v1alpha1.ResourceDrifted}, {State: v1alpha1.ResourceMissing}, {State: v1alpha1.ResourcePending},
					{State: v1alpha1.ResourceConflict}, {State: v1alpha1.ResourceInSync},
				},
				DataPlane: &v1alpha1.DataPlaneStatus{Sidecar: 1, Unmeshed: 2},
			}},
			want: v1alpha1.FleetSummary{Ready: "False", Reason: "AuditOnly", Effective: "False", DriftCount: 2, DataPlane: "Mixed"},
		},
		{
			name: "a Linkerd profile names Linkerd as its data plane",
			p:    v1alpha1.MeshSecurityProfile{Spec: v1alpha1.MeshSecurityProfileSpec{Mesh: v1alpha1.MeshLinkerd}},
			want: v1alpha1.FleetSummary{Ready: "Unknown", DataPlane: "Linkerd"},
		},
		{
			name: "an Istio namespace without pods says NoPods",
			p:    v1alpha1.MeshSecurityProfile{Status: v1alpha1.MeshSecurityProfileStatus{DataPlane: &v1alpha1.DataPlaneStatus{}}},
			want: v1alpha1.FleetSummary{Ready: "Unknown", DataPlane: "NoPods"},
		},
		{
			name: "ambient pods behind a waypoint only say Waypoint",
			p:    v1alpha1.MeshSecurityProfile{Status: v1alpha1.MeshSecurityProfileStatus{DataPlane: &v1alpha1.DataPlaneStatus{Waypoint: 4}}},
			want: v1alpha1.FleetSummary{Ready: "Unknown", DataPlane: "Waypoint"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := NewWithT(t)
			p := c.p.DeepCopy()
			SetSummary(p)
			g.Expect(p.Status.Summary).NotTo(BeNil())
			g.Expect(*p.Status.Summary).To(Equal(c.want))
		})
	}
}
