package pipeline

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

const profileUID = types.UID("profile-uid")

// pa is a PeerAuthentication with the given mode, hash and controller (empty: none).
func pa(mode, hash string, controller types.UID) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
		"metadata": map[string]any{"name": "p-mtls", "namespace": "shop"},
		"spec":     map[string]any{"mtls": map[string]any{"mode": mode}},
	}}
	u.SetAnnotations(map[string]string{AnnotationRenderedHash: hash})
	if controller != "" {
		u.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: "security.meshguard.dev/v1alpha1", Kind: "MeshSecurityProfile", Name: "p", UID: controller, Controller: ptr.To(true)}})
	}
	return u
}

// backingOff is a fight record whose next restoration is allowed only in 8 s.
func backingOff() *fight {
	return &fight{corrections: 5, last: t0.Add(-time.Second), next: t0.Add(8 * time.Second)}
}

func TestDecide(t *testing.T) {
	want := pa("STRICT", "h1", profileUID)
	writer := func() string { return `field manager "fighter" (Update)` }
	cases := []struct {
		name        string
		f           facts
		do          verb
		state       v1alpha1.ResourceState
		drifted     bool
		message     string // substring
		retryAfter  time.Duration
		writerNamed bool
	}{
		{name: "a missing object is created",
			f: facts{want: want}, do: doCreate, state: v1alpha1.ResourceInSync},
		{name: "a missing object is only reported in Audit mode",
			f: facts{want: want, audit: true, wasPresent: true}, do: doNothing, state: v1alpha1.ResourceMissing, message: "Audit mode: not created"},
		{name: "an object the last status listed is recreated, as drift",
			f: facts{want: want, wasPresent: true}, do: doCreate, state: v1alpha1.ResourceInSync, drifted: true},
		{name: "an object deleted again and again is recreated only after the back-off",
			f: facts{want: want, wasPresent: true, fight: backingOff(), now: t0}, do: doNothing, state: v1alpha1.ResourceMissing, message: "recreating in 8s", retryAfter: 8 * time.Second},
		{name: "an object of someone else is a conflict, left untouched",
			f: facts{want: want, live: pa("STRICT", "", "other-uid")}, do: doNothing, state: v1alpha1.ResourceConflict, message: "controlled by MeshSecurityProfile p"},
		{name: "an object without a controller is a conflict unless adoptExisting",
			f: facts{want: want, live: pa("PERMISSIVE", "", "")}, do: doNothing, state: v1alpha1.ResourceConflict, message: "no controller"},
		{name: "an object without a controller is adopted with adoptExisting, as an update",
			f: facts{want: want, live: pa("PERMISSIVE", "", ""), adoptExisting: true}, do: doUpdate, state: v1alpha1.ResourceInSync},
		{name: "an owned object that equals the rendered one is in sync",
			f: facts{want: want, live: pa("STRICT", "h1", profileUID), owned: true}, do: doNothing, state: v1alpha1.ResourceInSync},
		{name: "a changed profile (another hash) is an update, not drift",
			f: facts{want: want, live: pa("PERMISSIVE", "h0", profileUID), owned: true}, do: doUpdate, state: v1alpha1.ResourceInSync},
		{name: "the same hash on different content is drift, restored, and its writer named",
			f: facts{want: want, live: pa("DISABLE", "h1", profileUID), owned: true, lastWriter: writer}, do: doRestore, state: v1alpha1.ResourceInSync, drifted: true, writerNamed: true},
		{name: "drift during a fight's back-off is reported with the writer, and retried later",
			f: facts{want: want, live: pa("DISABLE", "h1", profileUID), owned: true, lastWriter: writer, fight: backingOff(), now: t0}, do: doNothing, state: v1alpha1.ResourceDrifted, drifted: true, writerNamed: true, message: `"fighter" (Update) keeps rewriting it`, retryAfter: 8 * time.Second},
		{name: "drift in Audit mode is reported with the writer, not restored",
			f: facts{want: want, live: pa("DISABLE", "h1", profileUID), owned: true, audit: true, lastWriter: writer}, do: doNothing, state: v1alpha1.ResourceDrifted, drifted: true, writerNamed: true, message: "last written by"},
		{name: "a changed profile in Audit mode is reported, not updated",
			f: facts{want: want, live: pa("PERMISSIVE", "h0", profileUID), owned: true, audit: true}, do: doNothing, state: v1alpha1.ResourceDrifted, message: "Audit mode: not updated"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			d := decide(tc.f)
			g.Expect(d.do).To(Equal(tc.do))
			g.Expect(d.state).To(Equal(tc.state))
			g.Expect(d.drifted).To(Equal(tc.drifted))
			g.Expect(d.message).To(ContainSubstring(tc.message))
			g.Expect(d.retryAfter).To(Equal(tc.retryAfter))
			if tc.writerNamed {
				g.Expect(d.writer).To(ContainSubstring("fighter"))
			} else {
				g.Expect(d.writer).To(BeEmpty(), "the writer is read only on drift")
			}
		})
	}
}

// TestFightBackOff drives the fight record through corrections on an injected clock.
func TestFightBackOff(t *testing.T) {
	type step struct {
		at        time.Duration // since t0
		correct   bool          // a correction happens at this time (when allowed)
		allowed   bool
		waitAtMin time.Duration // when not allowed: the wait reported
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"the first three corrections within a minute are free", []step{
			{at: 0, correct: true, allowed: true}, {at: time.Second, correct: true, allowed: true}, {at: 2 * time.Second, correct: true, allowed: true},
			{at: 2*time.Second + time.Millisecond, allowed: true}}},
		{"the fourth correction makes the next one wait 2 s, the fifth 4 s", []step{
			{at: 0, correct: true, allowed: true}, {at: 0, correct: true, allowed: true}, {at: 0, correct: true, allowed: true},
			{at: 0, correct: true, allowed: true},
			{at: time.Second, allowed: false, waitAtMin: time.Second},
			{at: 2 * time.Second, correct: true, allowed: true},
			{at: 5 * time.Second, allowed: false, waitAtMin: time.Second},
			{at: 6 * time.Second, allowed: true}}},
		{"a minute without corrections ends the fight", []step{
			{at: 0, correct: true, allowed: true}, {at: 0, correct: true, allowed: true}, {at: 0, correct: true, allowed: true},
			{at: 0, correct: true, allowed: true},
			{at: time.Second, allowed: false, waitAtMin: time.Second},
			{at: 61 * time.Second, correct: true, allowed: true},
			{at: 61 * time.Second, allowed: true}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			f := &fights{}
			for i, s := range tc.steps {
				now := t0.Add(s.at)
				ok, wait := f.snapshot("k").allows(now)
				g.Expect(ok).To(Equal(s.allowed), "step %d at %s", i, s.at)
				if !ok {
					g.Expect(wait).To(BeNumerically(">=", s.waitAtMin), "step %d", i)
				}
				if s.correct && ok {
					f.corrected("k", now)
				}
			}
		})
	}
}

func TestFightWaitNeverExceedsFiveMinutes(t *testing.T) {
	g := NewWithT(t)
	var st *fight
	for i := 0; i < 40; i++ {
		st = st.record(t0) // forty corrections at one instant: the window never ends
	}
	g.Expect(st.next.Sub(st.last)).To(Equal(fightMaxDelay))
	ok, wait := st.allows(t0.Add(time.Second))
	g.Expect(ok).To(BeFalse())
	g.Expect(wait).To(Equal(fightMaxDelay - time.Second))
}

func TestCorrectionRecordsSurviveAFailedStatusPatch(t *testing.T) {
	g := NewWithT(t)
	f := &fights{}
	at := metav1.NewTime(t0)
	f.remember("shop", v1alpha1.ResourceStatus{APIVersion: "v1", Kind: "X", Name: "a", LastCorrected: &at, LastCorrection: "spec.x"})
	rows := []childResult{
		{row: v1alpha1.ResourceStatus{APIVersion: "v1", Kind: "X", Name: "a"}},
		{row: v1alpha1.ResourceStatus{APIVersion: "v1", Kind: "X", Name: "b"}},
	}
	f.FillCorrections("shop", rows)
	g.Expect(rows[0].row.LastCorrection).To(Equal("spec.x"))
	g.Expect(rows[1].row.LastCorrected).To(BeNil())
	other := []childResult{{row: v1alpha1.ResourceStatus{APIVersion: "v1", Kind: "X", Name: "a"}}}
	f.FillCorrections("other-namespace", other)
	g.Expect(other[0].row.LastCorrected).To(BeNil(), "records are per namespace")
}

func TestDecideReportsWhatChangedNotMeshguardsBookkeeping(t *testing.T) {
	g := NewWithT(t)
	want := pa("STRICT", "h1", profileUID)
	d := decide(facts{want: want, live: pa("PERMISSIVE", "h0", profileUID), owned: true, audit: true})
	g.Expect(d.message).To(ContainSubstring("spec.mtls.mode"))
	g.Expect(d.message).NotTo(ContainSubstring(AnnotationRenderedHash))
	for _, c := range d.changes {
		g.Expect(c.Path).NotTo(ContainSubstring(AnnotationRenderedHash))
	}
	d = decide(facts{want: want, live: pa("STRICT", "h0", profileUID), owned: true, audit: true})
	g.Expect(d.message).To(ContainSubstring("only meshguard's " + AnnotationRenderedHash + " annotation differs"))
}
