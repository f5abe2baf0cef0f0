package pipeline

import (
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/dataplane"
)

func TestUnenforceableAndUnboundPoliciesMakeTheProfileNotReady(t *testing.T) {
	inSync := []childResult{row("AuthorizationPolicy", "p-rule-a", v1alpha1.ResourceInSync)}
	cases := []struct {
		name      string
		obs       Observation
		wantReady metav1.ConditionStatus
		wantMsg   string
	}{
		{"every part enforced: Ready", Observation{Rows: inSync, Enforcement: []v1alpha1.RuleEnforcementStatus{{Rule: "mtls", EnforcedBy: v1alpha1.EnforcedByZtunnel, Pods: []string{"api-0"}, PodCount: 1}}},
			metav1.ConditionTrue, ""},
		{"an unenforceable rule: not Ready, naming the rule and pods", Observation{Rows: inSync, Unenforceable: []string{"authorization.rules[a]: needs a waypoint (pods api-0)"}},
			metav1.ConditionFalse, "authorization.rules[a]: needs a waypoint (pods api-0)"},
		{"a policy Istio did not bind: not Ready", Observation{Rows: inSync, notBound: []string{"Istio did not bind AuthorizationPolicy p-rule-a-waypoint: WaypointAccepted=False (AncestorNotBound) Service api is not bound to a waypoint"}},
			metav1.ConditionFalse, "WaypointAccepted=False"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			p := &v1alpha1.MeshSecurityProfile{}
			p.Generation = 3
			ApplyStatus(p, &tc.obs)
			c := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(tc.wantReady), c.Message)
			if tc.wantReady == metav1.ConditionFalse {
				g.Expect(c.Reason).To(Equal(v1alpha1.ReasonUnenforceable))
				g.Expect(c.Message).To(ContainSubstring(tc.wantMsg))
			}
			g.Expect(p.Status.Enforcement).To(Equal(tc.obs.Enforcement))
		})
	}
}

func TestDataPlaneStatusCountsPodsAndNamesWaypoints(t *testing.T) {
	g := NewWithT(t)
	f := &dataplane.Facts{
		Namespace:       "shop",
		NamespaceLabels: map[string]string{dataplane.LabelDataplaneMode: dataplane.DataplaneModeAmbient, dataplane.LabelUseWaypoint: "waypoint"},
		Pods: []dataplane.Pod{
			{Name: "api-0", Labels: map[string]string{"app": "api"}},
			{Name: "db-0", Labels: map[string]string{"app": "db"}},
			{Name: "legacy-0", Annotations: map[string]string{dataplane.AnnotationSidecarStatus: "present"}},
			{Name: "job-0", Labels: map[string]string{dataplane.LabelDataplaneMode: dataplane.DataplaneModeNone}},
		},
		Services: []dataplane.Service{{Name: "api", Selector: map[string]string{"app": "api"}}},
		Gateways: []dataplane.Gateway{{Namespace: "shop", Name: "waypoint", ClassName: dataplane.WaypointGatewayClass}},
	}
	g.Expect(DataPlaneStatus(f)).To(Equal(&v1alpha1.DataPlaneStatus{Sidecar: 1, Ambient: 1, Waypoint: 1, Unmeshed: 1, Waypoints: []string{"shop/waypoint"}}))
	g.Expect(DataPlaneStatus(nil)).To(BeNil())
}

func TestPodFactsKeepOnlyWhatClassificationReads(t *testing.T) {
	g := NewWithT(t)
	m := podMeta()
	m.SetAnnotations(map[string]string{dataplane.AnnotationSidecarStatus: `{"containers":["istio-proxy"],"volumes":["a","b"]}`, dataplane.AnnotationRedirection: "enabled", "big": "x"})
	m.SetManagedFields([]metav1.ManagedFieldsEntry{{Manager: "kubelet"}})
	out, err := keepPodFacts(m)
	g.Expect(err).NotTo(HaveOccurred())
	o := out.(*metav1.PartialObjectMetadata)
	g.Expect(o.Annotations).To(Equal(map[string]string{dataplane.AnnotationSidecarStatus: "present", dataplane.AnnotationRedirection: "enabled"}))
	g.Expect(o.ManagedFields).To(BeNil())
}
