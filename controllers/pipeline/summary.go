package pipeline

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// SetSummary fills status.summary from the rest of the status, which is computed first: fleet
// tools (docs/multi-cluster.md) read these scalars with one JSONPath each instead of filtering
// the conditions. It derives everything from the status it is given, so it is pure.
func SetSummary(p *v1alpha1.MeshSecurityProfile) {
	st := &p.Status
	s := &v1alpha1.FleetSummary{Ready: metav1.ConditionUnknown, EarliestCertificateExpiry: st.NearestCertificateExpiry}
	if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady); c != nil {
		s.Ready, s.Reason = c.Status, c.Reason
	}
	if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionEffective); c != nil {
		s.Effective = c.Status
	}
	for _, r := range st.Resources {
		// Rows not in sync are kept first when the list is bounded (boundStatus): the count is
		// exact up to the list's 128 rows.
		if r.State == v1alpha1.ResourceDrifted || r.State == v1alpha1.ResourceMissing {
			s.DriftCount++
		}
	}
	s.DataPlane = summaryDataPlane(p.Spec.GetMesh(), st.DataPlane)
	st.Summary = s
}

// summaryDataPlane names the one data plane the namespace's pods use, Mixed when they use
// several; "" when it is not known (an Istio profile whose pods were not looked at).
func summaryDataPlane(mesh v1alpha1.Mesh, dp *v1alpha1.DataPlaneStatus) string {
	if mesh == v1alpha1.MeshLinkerd {
		return "Linkerd"
	}
	if dp == nil {
		return ""
	}
	name, n := "NoPods", 0
	for _, c := range []struct {
		name  string
		count int32
	}{{"Sidecar", dp.Sidecar}, {"Ambient", dp.Ambient}, {"Waypoint", dp.Waypoint}, {"Unmeshed", dp.Unmeshed}} {
		if c.count > 0 {
			name, n = c.name, n+1
		}
	}
	if n > 1 {
		return "Mixed"
	}
	return name
}
