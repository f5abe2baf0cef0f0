package pipeline

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/certs"
	"github.com/meshguard/meshguard/internal/expectations"
	"github.com/meshguard/meshguard/internal/render"
)

// Observation is what one reconcile found out. The status is computed from it, and from the
// previous status only for what is history, not state (each row's record of its last correction:
// SetStatus), so the reconciler stays reentrant: no condition is derived from an older one.
type Observation struct {
	Audit       bool
	GovernedBy  string
	Invalid     error
	Unsupported []string
	Warnings    []string
	Shadow      []string
	Rows        []childResult
	ApplyErrs   []error
	certs       *certs.Report
	CertErr     error
	external    []v1alpha1.ExternalPolicy
	ExternalErr error
	// FinalizerOnly: this reconcile patched the finalizer and writes nothing else.
	FinalizerOnly bool
	// expectations are the answers for spec.expectations; expectationsErr says why there are none.
	expectations    []v1alpha1.ExpectationStatus
	expectationsErr error
	// Cluster floors: those merged in, the fields held at them, a conflict between them.
	FloorsChecked bool
	Floors        []string
	Held          []v1alpha1.FloorHold
	FloorConflict string
	// Opened are the profile's rules that open what a floor's default deny closes (a fact).
	Opened []v1alpha1.FloorOpening
	// floorKept says why the floor's own objects of the namespace were not handed over (deleted)
	// in this reconcile; "" when they were.
	floorKept string
	// Istio data planes: the namespace's pods per data plane, where each part is enforced, the
	// parts nothing can enforce, and the generated policies Istio says it did not bind.
	DataPlane     *v1alpha1.DataPlaneStatus
	Enforcement   []v1alpha1.RuleEnforcementStatus
	Unenforceable []string
	notBound      []string
	// configElsewhere says why no istiod reads this cluster's Istio policies (a remote cluster).
	configElsewhere string
}

// pending is true while some objects wait for CRDs or pods for a restart: worth another look soon.
func (o *Observation) pending() bool {
	for _, r := range o.Rows {
		// Pods are not watched: look again soon for restarted ones.
		if r.pendingOn != "" || r.restartNeeded {
			return true
		}
	}
	return false
}

// ApplyStatus sets status.resources, status.observedGeneration and every condition from an
// observation. It is pure: table tests cover it without a cluster.
func ApplyStatus(p *v1alpha1.MeshSecurityProfile, o *Observation) {
	SetStatus(&p.Status, p.Generation, len(p.Spec.Expectations) > 0, o)
}

// SetStatus computes a profile status from an observation: the status of a profile of
// generation gen (expects: with spec.expectations), from its previous rows. The floor
// reconciler computes its verdict on a namespace without a profile the same way.
func SetStatus(st *v1alpha1.MeshSecurityProfileStatus, gen int64, expects bool, o *Observation) {
	st.ObservedGeneration = gen
	set := func(t string, s metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: t, Status: s, Reason: reason, Message: trim(msg), ObservedGeneration: gen,
		})
	}
	unset := func(t string) { meta.RemoveStatusCondition(&st.Conditions, t) }
	defer boundStatus(st)
	applyFloorStatus(st, gen, o)

	// A profile that cannot be applied at all: say why, stall, and keep resources as last seen.
	if stalledReason, msg := stalled(o); stalledReason != "" {
		set(v1alpha1.ConditionStalled, metav1.ConditionTrue, stalledReason, msg)
		unset(v1alpha1.ConditionReconciling)
		set(v1alpha1.ConditionPoliciesApplied, metav1.ConditionFalse, stalledReason, msg)
		set(v1alpha1.ConditionInSync, metav1.ConditionUnknown, v1alpha1.ReasonNotChecked, "not checked: "+msg)
		set(v1alpha1.ConditionReady, metav1.ConditionFalse, stalledReason, msg)
		setExpectations(st, expects, nil, fmt.Errorf("not checked: %s", msg), set, unset)
		if o.GovernedBy != "" {
			st.Resources = nil
		}
		return
	}
	unset(v1alpha1.ConditionStalled)

	previous := st.Resources
	st.Resources = make([]v1alpha1.ResourceStatus, 0, len(o.Rows))
	for _, r := range o.Rows {
		row := r.row
		if row.LastCorrected == nil {
			// Keep the record of the last correction (history, not state) until a newer one
			// replaces it; everything else is rebuilt from the observation.
			for _, old := range previous {
				if old.Kind == row.Kind && old.Name == row.Name && old.APIVersion == row.APIVersion {
					row.LastCorrected, row.LastCorrection = old.LastCorrected, old.LastCorrection
				}
			}
		}
		st.Resources = append(st.Resources, row)
	}

	applied := policiesApplied(o)
	if len(o.Warnings) > 0 {
		// The mesh enforces these parts more strictly than the profile reads: never silent.
		applied.msg += "; warnings: " + strings.Join(o.Warnings, "; ")
	}
	set(v1alpha1.ConditionPoliciesApplied, applied.status, applied.reason, applied.msg)
	inSync := inSyncCondition(o)
	set(v1alpha1.ConditionInSync, inSync.status, inSync.reason, inSync.msg)
	setCertificateStatus(st, gen, o.certs, o.CertErr)
	st.ExternalPolicies = o.external
	st.ShadowRules = o.Shadow
	switch {
	case o.ExternalErr != nil:
		set(v1alpha1.ConditionEffective, metav1.ConditionUnknown, v1alpha1.ReasonNotChecked, o.ExternalErr.Error())
	case len(o.external) > 0:
		weak := make([]string, 0, len(o.external))
		for _, e := range o.external {
			weak = append(weak, fmt.Sprintf("%s %s (%s)", e.Kind, e.Name, e.Weakens))
		}
		set(v1alpha1.ConditionEffective, metav1.ConditionFalse, v1alpha1.ReasonWeakened, "weakened by objects meshguard does not own: "+list(weak))
	default:
		set(v1alpha1.ConditionEffective, metav1.ConditionTrue, v1alpha1.ReasonEffective, "no object outside meshguard weakens the profile")
	}

	expectErr := o.expectationsErr
	if o.ExternalErr != nil {
		expectErr = fmt.Errorf("the policies could not be read: %w", o.ExternalErr)
	}
	setExpectations(st, expects, o.expectations, expectErr, set, unset)

	// Reconciling is True only while meshguard still expects to converge without user action.
	if applied.reason == v1alpha1.ReasonApplyFailed || o.pending() {
		set(v1alpha1.ConditionReconciling, metav1.ConditionTrue, v1alpha1.ReasonProgressing, applied.msg)
	} else {
		unset(v1alpha1.ConditionReconciling)
	}

	st.DataPlane, st.Enforcement = o.DataPlane, o.Enforcement
	ready := summarise(st.Conditions, applied, inSync)
	if gaps := append(append([]string{}, o.Unenforceable...), o.notBound...); len(gaps) > 0 && ready.status == metav1.ConditionTrue {
		// A part nothing enforces where its pods run is not a namespace protected as declared,
		// whatever else is in order: fail closed.
		ready = cond{metav1.ConditionFalse, v1alpha1.ReasonUnenforceable, "not enforceable where the pods run: " + list(gaps)}
	}
	if ready.status == metav1.ConditionTrue && len(o.Warnings) > 0 {
		ready.msg += fmt.Sprintf("; %d warnings where the mesh is stricter than the profile reads (see PoliciesApplied)", len(o.Warnings))
	}
	set(v1alpha1.ConditionReady, ready.status, ready.reason, ready.msg)
}

// setExpectations writes status.expectations and the ExpectationsMet condition: absent without
// expectations, Unknown (NotChecked) when they could not be evaluated (err), else as
// expectations.Condition summarises the answers.
func setExpectations(st *v1alpha1.MeshSecurityProfileStatus, expects bool, results []v1alpha1.ExpectationStatus, err error, set func(t string, s metav1.ConditionStatus, reason, msg string), unset func(t string)) {
	switch {
	case !expects:
		st.Expectations = nil
		unset(v1alpha1.ConditionExpectationsMet)
	case err != nil || len(results) == 0:
		st.Expectations = nil
		msg := "expectations not evaluated"
		if err != nil {
			msg = err.Error()
		}
		set(v1alpha1.ConditionExpectationsMet, metav1.ConditionUnknown, v1alpha1.ReasonNotChecked, msg)
	default:
		st.Expectations = results
		status, reason, msg := expectations.Condition(results)
		set(v1alpha1.ConditionExpectationsMet, status, reason, msg)
	}
}

// boundStatus bounds every list of the status (bound.go) and counts what it left out.
func boundStatus(st *v1alpha1.MeshSecurityProfileStatus) {
	var o v1alpha1.OmittedRows
	st.Resources, o.Resources = bounded(st.Resources, maxResourceRows, func(r v1alpha1.ResourceStatus) bool {
		return r.State != v1alpha1.ResourceInSync
	})
	var resources, external messageBudget
	for i := range st.Resources {
		st.Resources[i].Message = resources.trim(st.Resources[i].Message)
	}
	st.ExternalPolicies, o.ExternalPolicies = bounded(st.ExternalPolicies, maxExternalRows, nil)
	for i := range st.ExternalPolicies {
		st.ExternalPolicies[i].Weakens = external.trim(st.ExternalPolicies[i].Weakens)
	}
	st.Expectations, o.Expectations = bounded(st.Expectations, maxExpectationRows, nil)
	st.HeldAtFloor, o.HeldAtFloor = bounded(st.HeldAtFloor, maxHeldRows, nil)
	st.Omitted = nil
	if o != (v1alpha1.OmittedRows{}) {
		st.Omitted = &o
	}
}

type cond struct {
	status metav1.ConditionStatus
	reason string
	msg    string
}

func stalled(o *Observation) (string, string) {
	var invalid *render.InvalidSpecError
	switch {
	case o.GovernedBy != "":
		return v1alpha1.ReasonProfileConflict, fmt.Sprintf("the namespace is governed by the older profile %q; this profile generates nothing until that one is deleted", o.GovernedBy)
	case o.configElsewhere != "":
		return v1alpha1.ReasonIstioConfigClusterElsewhere, o.configElsewhere
	case o.FloorConflict != "":
		return v1alpha1.ReasonClusterProfileConflict, FloorConflictMessage(o.FloorConflict)
	case errors.As(o.Invalid, &invalid):
		return v1alpha1.ReasonInvalidSpec, "invalid profile: " + o.Invalid.Error()
	case o.Invalid != nil:
		return v1alpha1.ReasonInvalidSpec, o.Invalid.Error()
	case len(o.Unsupported) > 0:
		return v1alpha1.ReasonUnsupportedByMesh, "the mesh cannot express: " + strings.Join(o.Unsupported, "; ") + "; nothing was applied"
	}
	return "", ""
}

func policiesApplied(o *Observation) cond {
	var conflicts, failed, missing, drifted, restart []string
	pendingMesh := map[string]int{}
	for _, r := range o.Rows {
		ref := r.row.Kind + " " + r.row.Name
		switch {
		case r.Err != nil:
			failed = append(failed, r.Err.Error())
		case r.pendingOn != "":
			pendingMesh[r.pendingOn]++
		case r.row.State == v1alpha1.ResourceConflict:
			conflicts = append(conflicts, ref+": "+r.row.Message)
		case r.restartNeeded:
			restart = append(restart, r.row.Message)
		case r.row.State == v1alpha1.ResourceMissing:
			missing = append(missing, ref)
		case r.row.State == v1alpha1.ResourceDrifted:
			drifted = append(drifted, ref)
		}
	}
	for _, e := range o.ApplyErrs {
		failed = append(failed, e.Error())
	}
	switch {
	case len(conflicts) > 0:
		return cond{metav1.ConditionFalse, v1alpha1.ReasonConflict, "not owned by this profile, left untouched: " + strings.Join(conflicts, "; ")}
	case len(failed) > 0:
		return cond{metav1.ConditionFalse, v1alpha1.ReasonApplyFailed, strings.Join(failed, "; ")}
	case len(pendingMesh) > 0:
		meshes := make([]string, 0, len(pendingMesh))
		for m := range pendingMesh {
			meshes = append(meshes, m)
		}
		sort.Strings(meshes)
		reason := v1alpha1.ReasonIstioNotInstalled
		if meshes[0] == "Linkerd" {
			reason = v1alpha1.ReasonLinkerdNotInstalled
		}
		n := 0
		for _, c := range pendingMesh {
			n += c
		}
		return cond{metav1.ConditionFalse, reason, fmt.Sprintf("the %s CRDs are not installed (or too old to serve the versions meshguard writes): %d objects wait for them; the other %d objects were applied", strings.Join(meshes, " and "), n, len(o.Rows)-n)}
	case len(restart) > 0:
		return cond{metav1.ConditionFalse, v1alpha1.ReasonRestartRequired, strings.Join(restart, "; ")}
	case o.Audit && len(missing)+len(drifted) > 0:
		return cond{metav1.ConditionFalse, v1alpha1.ReasonAuditOnly, fmt.Sprintf("Audit mode, nothing was written: %d missing, %d differ from the profile", len(missing), len(drifted))}
	case o.Audit:
		return cond{metav1.ConditionTrue, v1alpha1.ReasonAuditOnly, fmt.Sprintf("Audit mode: all %d objects exist as the profile says", len(o.Rows))}
	}
	return cond{metav1.ConditionTrue, v1alpha1.ReasonSucceeded, fmt.Sprintf("%d objects applied", len(o.Rows))}
}

func inSyncCondition(o *Observation) cond {
	var drifted, missing []string
	for _, r := range o.Rows {
		ref := r.row.Kind + " " + r.row.Name
		switch r.row.State {
		case v1alpha1.ResourceDrifted:
			drifted = append(drifted, ref+" ("+r.row.Message+")")
		case v1alpha1.ResourceMissing:
			missing = append(missing, ref)
		}
	}
	switch {
	case len(drifted) > 0:
		return cond{metav1.ConditionFalse, v1alpha1.ReasonDrifted, "drifted: " + strings.Join(drifted, "; ")}
	case len(missing) > 0:
		return cond{metav1.ConditionFalse, v1alpha1.ReasonMissing, "missing: " + list(missing)}
	}
	// A correction made now is recorded in its resources row (lastCorrected); the condition does
	// not mention it, so that the next reconcile does not have to write the status again.
	return cond{metav1.ConditionTrue, v1alpha1.ReasonInSync, "every generated object is as applied"}
}

// summarise computes Ready: True only when everything is applied and in sync, every expectation
// is met, nothing weakens the profile and no certificate blocks. An ExpiringSoon certificate does not block.
func summarise(conds []metav1.Condition, applied, inSync cond) cond {
	if applied.status != metav1.ConditionTrue {
		return cond{metav1.ConditionFalse, applied.reason, applied.msg}
	}
	if inSync.status != metav1.ConditionTrue {
		return cond{metav1.ConditionFalse, inSync.reason, inSync.msg}
	}
	// An expectation that is contradicted or cannot be confirmed is not a namespace protected as
	// declared: fail closed. It comes before Effective because it names the flow and the object.
	if c := meta.FindStatusCondition(conds, v1alpha1.ConditionExpectationsMet); c != nil && c.Status != metav1.ConditionTrue {
		return cond{metav1.ConditionFalse, c.Reason, c.Message}
	}
	if c := meta.FindStatusCondition(conds, v1alpha1.ConditionEffective); c != nil && c.Status != metav1.ConditionTrue {
		return cond{metav1.ConditionFalse, c.Reason, c.Message}
	}
	if c := meta.FindStatusCondition(conds, v1alpha1.ConditionCertificatesHealthy); c != nil && c.Status != metav1.ConditionTrue && certBlocks(c.Reason) {
		return cond{metav1.ConditionFalse, c.Reason, c.Message}
	}
	msg := "the namespace is protected as the profile says"
	if c := meta.FindStatusCondition(conds, v1alpha1.ConditionCertificatesHealthy); c != nil && c.Reason == v1alpha1.ReasonCertExpiringSoon {
		msg += "; warning: " + c.Message
	}
	return cond{metav1.ConditionTrue, v1alpha1.ReasonSucceeded, msg}
}

// certBlocks says whether a CertificatesHealthy reason makes the profile not Ready: everything but
// Valid and ExpiringSoon (so GitOps sync waves are not blocked by a warning).
func certBlocks(reason string) bool {
	return reason != v1alpha1.ReasonNotChecked && certs.IsBlocking(reason)
}

func list(items []string) string {
	if len(items) > 5 {
		return strings.Join(items[:5], ", ") + fmt.Sprintf(" and %d more", len(items)-5)
	}
	return strings.Join(items, ", ")
}

// trim keeps condition messages within the API's 32768-byte limit.
func trim(s string) string {
	const max = 4096
	if len(s) > max {
		return s[:max-3] + "..."
	}
	return s
}
