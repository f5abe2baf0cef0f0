package pipeline

import (
	"errors"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/certs"
	"github.com/meshguard/meshguard/internal/drift"
	"github.com/meshguard/meshguard/internal/render"
)

func row(kind, name string, state v1alpha1.ResourceState) childResult {
	return childResult{row: v1alpha1.ResourceStatus{APIVersion: "v1", Kind: kind, Name: name, State: state}}
}

func TestCertificateRecheckIsJustAfterTheNextThreshold(t *testing.T) {
	g := NewWithT(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g.Expect(certificateRecheck(certs.Report{NextCheck: now.Add(time.Minute)}, now, 5*time.Minute)).To(Equal(time.Minute + time.Second))
	g.Expect(certificateRecheck(certs.Report{NextCheck: now.Add(48 * time.Hour)}, now, 5*time.Minute)).To(Equal(5*time.Minute), "Secrets are not watched: at least every interval")
	g.Expect(certificateRecheck(certs.Report{}, now, 0)).To(Equal(DefaultCertificateRecheck))
	g.Expect(certificateRecheck(certs.Report{NextCheck: now.Add(-time.Hour)}, now, time.Minute)).To(Equal(time.Second), "a crossing in the past is checked at once")
}

func TestApplyStatus(t *testing.T) {
	type want struct {
		ready, applied, inSync string
		stalled, reconciling   bool
	}
	cases := []struct {
		name string
		obs  Observation
		want want
	}{
		{"every object in sync makes the profile Ready", Observation{Rows: []childResult{row("NetworkPolicy", "a", v1alpha1.ResourceInSync)}},
			want{ready: "True/Succeeded", applied: "True/Succeeded", inSync: "True/InSync"}},
		{"a conflicting object keeps the profile from Ready and names the reason", Observation{Rows: []childResult{row("PeerAuthentication", "p-mtls", v1alpha1.ResourceConflict), row("NetworkPolicy", "a", v1alpha1.ResourceInSync)}},
			want{ready: "False/Conflict", applied: "False/Conflict", inSync: "True/InSync"}},
		{"missing Istio CRDs are reported and retried without stalling", Observation{Rows: []childResult{{row: v1alpha1.ResourceStatus{Kind: "PeerAuthentication", State: v1alpha1.ResourcePending}, pendingOn: "Istio"}, row("NetworkPolicy", "a", v1alpha1.ResourceInSync)}},
			want{ready: "False/IstioNotInstalled", applied: "False/IstioNotInstalled", inSync: "True/InSync", reconciling: true}},
		{"an apply error is transient: Reconciling, not Stalled", Observation{Rows: []childResult{{row: v1alpha1.ResourceStatus{Kind: "NetworkPolicy", State: v1alpha1.ResourcePending}, Err: errors.New("apply NetworkPolicy x: boom")}}},
			want{ready: "False/ApplyFailed", applied: "False/ApplyFailed", inSync: "True/InSync", reconciling: true}},
		{"an invalid spec stalls the profile", Observation{Invalid: &render.InvalidSpecError{Errs: field.ErrorList{field.Invalid(field.NewPath("spec", "x"), "y", "bad")}}},
			want{ready: "False/InvalidSpec", applied: "False/InvalidSpec", inSync: "Unknown/NotChecked", stalled: true}},
		{"a field the mesh cannot express stalls the profile", Observation{Unsupported: []string{"spec.requestAuthentication: Linkerd has no JWT"}},
			want{ready: "False/UnsupportedByMesh", applied: "False/UnsupportedByMesh", inSync: "Unknown/NotChecked", stalled: true}},
		{"a newer profile in a governed namespace stalls", Observation{GovernedBy: "first"},
			want{ready: "False/ProfileConflict", applied: "False/ProfileConflict", inSync: "Unknown/NotChecked", stalled: true}},
		{"Audit mode with missing objects reports AuditOnly and Missing", Observation{Audit: true, Rows: []childResult{row("NetworkPolicy", "a", v1alpha1.ResourceMissing)}},
			want{ready: "False/AuditOnly", applied: "False/AuditOnly", inSync: "False/Missing"}},
		{"Audit mode with drift reports Drifted", Observation{Audit: true, Rows: []childResult{{row: v1alpha1.ResourceStatus{Kind: "PeerAuthentication", Name: "p", State: v1alpha1.ResourceDrifted, Message: "spec.mtls.mode: STRICT → DISABLE"}, drifted: []drift.Change{{Path: "spec.mtls.mode"}}}}},
			want{ready: "False/AuditOnly", applied: "False/AuditOnly", inSync: "False/Drifted"}},
		{"a corrected drift leaves the profile Ready", Observation{Rows: []childResult{{row: v1alpha1.ResourceStatus{Kind: "PeerAuthentication", Name: "p", State: v1alpha1.ResourceInSync}, corrected: true}}},
			want{ready: "True/Succeeded", applied: "True/Succeeded", inSync: "True/InSync"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			p := &v1alpha1.MeshSecurityProfile{ObjectMeta: metav1.ObjectMeta{Generation: 3}}
			ApplyStatus(p, &tc.obs)
			get := func(ct string) string {
				c := meta.FindStatusCondition(p.Status.Conditions, ct)
				if c == nil {
					return "absent"
				}
				g.Expect(c.ObservedGeneration).To(Equal(int64(3)), ct)
				return string(c.Status) + "/" + c.Reason
			}
			g.Expect(p.Status.ObservedGeneration).To(Equal(int64(3)))
			g.Expect(get(v1alpha1.ConditionReady)).To(Equal(tc.want.ready))
			g.Expect(get(v1alpha1.ConditionPoliciesApplied)).To(Equal(tc.want.applied))
			g.Expect(get(v1alpha1.ConditionInSync)).To(Equal(tc.want.inSync))
			g.Expect(get(v1alpha1.ConditionStalled) == "True/"+meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady).Reason).To(Equal(tc.want.stalled))
			if !tc.want.stalled {
				g.Expect(get(v1alpha1.ConditionStalled)).To(Equal("absent"), "Stalled is only present while True")
			}
			if tc.want.reconciling {
				g.Expect(get(v1alpha1.ConditionReconciling)).To(Equal("True/Progressing"))
			} else {
				g.Expect(get(v1alpha1.ConditionReconciling)).To(Equal("absent"), "Reconciling is only present while True")
			}
		})
	}
}

func TestReadyIgnoresCertificatesExpiringSoon(t *testing.T) {
	g := NewWithT(t)
	p := &v1alpha1.MeshSecurityProfile{}
	rows := []childResult{row("NetworkPolicy", "a", v1alpha1.ResourceInSync)}
	ApplyStatus(p, &Observation{Rows: rows, certs: &certs.Report{Reason: v1alpha1.ReasonCertExpiringSoon, Message: "root expires in 9d"}})
	g.Expect(meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionReady)).To(BeTrue())
	g.Expect(meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionCertificatesHealthy).Status).To(Equal(metav1.ConditionFalse))
	g.Expect(meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady).Message).To(ContainSubstring("warning: root expires in 9d"), "the warning shows in Ready's message (kubectl get -o wide, Argo CD)")

	ApplyStatus(p, &Observation{Rows: rows, certs: &certs.Report{Reason: v1alpha1.ReasonCertExpired, Message: "root expired", Blocking: true}})
	g.Expect(meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady).Reason).To(Equal(v1alpha1.ReasonCertExpired))

	ApplyStatus(p, &Observation{Rows: rows, CertErr: errors.New("read Secret istio-system/cacerts: forbidden")})
	g.Expect(meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionFalse), "a CA that cannot be read fails closed")
}

// Where the mesh enforces a profile more strictly than it reads (issue 9: HTTP-only Deny rules on
// TCP, Allow by identity under Disable, Linkerd ports), the profile stays Ready but says so.
func TestRenderWarningsAreSaidInPoliciesAppliedAndReady(t *testing.T) {
	g := NewWithT(t)
	p := &v1alpha1.MeshSecurityProfile{}
	rows := []childResult{row("AuthorizationPolicy", "p-rule-x", v1alpha1.ResourceInSync)}
	ApplyStatus(p, &Observation{Rows: rows, Warnings: []string{"spec.authorization.rules[x].to: also denies TCP"}})
	applied := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionPoliciesApplied)
	g.Expect(applied.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(applied.Message).To(ContainSubstring("warnings: spec.authorization.rules[x].to: also denies TCP"))
	ready := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady)
	g.Expect(ready.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(ready.Message).To(ContainSubstring("1 warnings"))
}

// Rules in shadow are listed in status and keep the profile Ready (the mesh reports, denies nothing);
// a later reconcile without them clears the list.
func TestRulesInShadowAreListedInStatus(t *testing.T) {
	g := NewWithT(t)
	p := &v1alpha1.MeshSecurityProfile{}
	rows := []childResult{row("AuthorizationPolicy", "p-rule-x", v1alpha1.ResourceInSync)}
	ApplyStatus(p, &Observation{Rows: rows, Shadow: []string{"x"}})
	g.Expect(p.Status.ShadowRules).To(Equal([]string{"x"}))
	g.Expect(meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
	ApplyStatus(p, &Observation{Rows: rows})
	g.Expect(p.Status.ShadowRules).To(BeEmpty())
}

func TestCorrectionRecordsSurviveLaterReconciles(t *testing.T) {
	g := NewWithT(t)
	p := &v1alpha1.MeshSecurityProfile{}
	when := metav1.Now()
	corrected := row("PeerAuthentication", "p-mtls", v1alpha1.ResourceInSync)
	corrected.row.LastCorrected, corrected.row.LastCorrection, corrected.corrected = &when, "spec.mtls.mode: STRICT → PERMISSIVE", true
	ApplyStatus(p, &Observation{Rows: []childResult{corrected}})
	ApplyStatus(p, &Observation{Rows: []childResult{row("PeerAuthentication", "p-mtls", v1alpha1.ResourceInSync)}})
	g.Expect(p.Status.Resources).To(HaveLen(1))
	g.Expect(p.Status.Resources[0].LastCorrected).To(Equal(&when))
	g.Expect(p.Status.Resources[0].LastCorrection).To(Equal("spec.mtls.mode: STRICT → PERMISSIVE"))
}
