package pipeline

import (
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

func TestClusterStatus(t *testing.T) {
	ready := func(n string) NamespaceState { return NamespaceState{Name: n, ready: true, Reason: "Succeeded"} }
	cases := []struct {
		name                     string
		states                   []NamespaceState
		matched, nReady, nWeak   int32
		listed                   []string
		readyCond, stalled, reco string
	}{
		{name: "a floor selecting nothing is Ready and says so", readyCond: "True/Succeeded"},
		{name: "every namespace Ready: Ready, nothing listed",
			states: []NamespaceState{ready("a"), ready("b")}, matched: 2, nReady: 2, readyCond: "True/Succeeded"},
		{name: "a namespace not Ready is listed with why and makes the floor not Ready",
			states:  []NamespaceState{ready("a"), {Name: "b", Reason: "Conflict", Message: "NetworkPolicy x exists"}},
			matched: 2, nReady: 1, listed: []string{"b:NotReady:Conflict"}, readyCond: "False/NamespacesNotReady"},
		{name: "a weakened namespace counts as weakened, is listed as such, and makes the floor not Ready",
			states:  []NamespaceState{{Name: "a", weakened: true, weakens: "PeerAuthentication open (PERMISSIVE)"}},
			matched: 1, nWeak: 1, listed: []string{"a:Weakened:Weakened"}, readyCond: "False/NamespacesNotReady"},
		{name: "a namespace not looked at yet keeps the floor Reconciling",
			states:  []NamespaceState{{Name: "a", Pending: true, Reason: "Progressing"}},
			matched: 1, listed: []string{"a:NotReady:Progressing"}, readyCond: "False/NamespacesNotReady", reco: "True/Progressing"},
		{name: "a conflict stalls the floor",
			states:  []NamespaceState{ready("a"), {Name: "b", conflict: true, Reason: v1alpha1.ReasonClusterProfileConflict}},
			matched: 2, nReady: 1, listed: []string{"b:Conflict:ClusterProfileConflict"},
			readyCond: "False/ClusterProfileConflict", stalled: "True/ClusterProfileConflict"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			c := &v1alpha1.ClusterMeshSecurityProfile{ObjectMeta: metav1.ObjectMeta{Name: "f", Generation: 3}}
			ClusterStatus(c, tc.states)
			g.Expect(c.Status.ObservedGeneration).To(Equal(int64(3)))
			g.Expect([]int32{c.Status.MatchedNamespaces, c.Status.ReadyNamespaces, c.Status.WeakenedNamespaces}).To(Equal([]int32{tc.matched, tc.nReady, tc.nWeak}))
			var listed []string
			for _, n := range c.Status.Namespaces {
				listed = append(listed, fmt.Sprintf("%s:%s:%s", n.Name, n.State, n.Reason))
			}
			g.Expect(listed).To(Equal(tc.listed))
			g.Expect(condString(c.Status.Conditions, v1alpha1.ConditionReady)).To(Equal(tc.readyCond))
			g.Expect(condString(c.Status.Conditions, v1alpha1.ConditionStalled)).To(Equal(tc.stalled))
			g.Expect(condString(c.Status.Conditions, v1alpha1.ConditionReconciling)).To(Equal(tc.reco))
		})
	}
}

func TestTheNamespaceListIsBoundedButTheCountsAreExact(t *testing.T) {
	g := NewWithT(t)
	var states []NamespaceState
	for i := 0; i < 300; i++ {
		states = append(states, NamespaceState{Name: fmt.Sprintf("ns-%03d", i), Reason: "Drifted"})
	}
	c := &v1alpha1.ClusterMeshSecurityProfile{}
	ClusterStatus(c, states)
	g.Expect(c.Status.MatchedNamespaces).To(Equal(int32(300)))
	g.Expect(c.Status.Namespaces).To(HaveLen(v1alpha1.MaxListedNamespaces))
	g.Expect(c.Status.Namespaces[0].Name).To(Equal("ns-000"), "sorted by name")
	g.Expect(c.Status.OmittedNamespaces).To(Equal(int32(300-v1alpha1.MaxListedNamespaces)), "says how many are left out")
	g.Expect(meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ConditionReady).Message).To(HavePrefix("300 of 300 namespaces not Ready"))
}

func TestANamespaceProfileCountsOnlyOnceItMergedTheFloor(t *testing.T) {
	p := func(gen, observed int64, floors []string, conds ...metav1.Condition) *v1alpha1.MeshSecurityProfile {
		return &v1alpha1.MeshSecurityProfile{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "team", Generation: gen},
			Status: v1alpha1.MeshSecurityProfileStatus{ObservedGeneration: observed, ClusterProfiles: floors, Conditions: conds}}
	}
	readyTrue := metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Succeeded"}
	weakened := metav1.Condition{Type: v1alpha1.ConditionEffective, Status: metav1.ConditionFalse, Reason: "Weakened", Message: "weakened by x"}
	conflict := metav1.Condition{Type: v1alpha1.ConditionStalled, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonClusterProfileConflict, Message: "cannot merge"}
	cases := []struct {
		name string
		p    *v1alpha1.MeshSecurityProfile
		want NamespaceState
	}{
		{name: "Ready and merged: at the floor", p: p(2, 2, []string{"f"}, readyTrue),
			want: NamespaceState{Name: "shop", profile: "team", ready: true, Reason: "Succeeded"}},
		{name: "Ready but without this floor merged yet: pending", p: p(2, 2, nil, readyTrue),
			want: NamespaceState{Name: "shop", profile: "team", Pending: true, Reason: "Progressing", Message: "MeshSecurityProfile team has not merged the floor yet"}},
		{name: "a status of an older generation: pending", p: p(3, 2, []string{"f"}, readyTrue),
			want: NamespaceState{Name: "shop", profile: "team", Pending: true, Reason: "Progressing", Message: "MeshSecurityProfile team has not merged the floor yet"}},
		{name: "weakened", p: p(1, 1, []string{"f"}, weakened),
			want: NamespaceState{Name: "shop", profile: "team", weakened: true, weakens: "weakened by x"}},
		{name: "stalled on a conflict of floors", p: p(1, 1, []string{"f"}, conflict),
			want: NamespaceState{Name: "shop", profile: "team", conflict: true, Reason: v1alpha1.ReasonClusterProfileConflict, Message: "cannot merge"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			NewWithT(t).Expect(ProfileState(tc.p, "f")).To(Equal(tc.want))
		})
	}
}

func TestBaselineCondition(t *testing.T) {
	hold := v1alpha1.FloorHold{Field: "spec.mtls.mode", Asked: "Permissive", HeldAt: "Strict", ClusterProfile: "f"}
	cases := []struct {
		name string
		obs  Observation
		want string
	}{
		{name: "without the cluster CRD there is no Baseline condition", obs: Observation{}, want: ""},
		{name: "no floor selects the namespace", obs: Observation{FloorsChecked: true}, want: "True/NoClusterProfile"},
		{name: "at or above the floor", obs: Observation{FloorsChecked: true, Floors: []string{"f"}}, want: "True/AtBaseline"},
		{name: "held fields", obs: Observation{FloorsChecked: true, Floors: []string{"f"}, Held: []v1alpha1.FloorHold{hold}}, want: "False/BelowBaseline"},
		{name: "floors in conflict", obs: Observation{FloorsChecked: true, Floors: []string{"f", "g"}, FloorConflict: "cannot merge"}, want: "False/ClusterProfileConflict"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			p := &v1alpha1.MeshSecurityProfile{ObjectMeta: metav1.ObjectMeta{Generation: 1}}
			ApplyStatus(p, &tc.obs)
			g.Expect(condString(p.Status.Conditions, v1alpha1.ConditionBaseline)).To(Equal(tc.want))
			g.Expect(p.Status.ClusterProfiles).To(Equal(tc.obs.Floors))
			g.Expect(p.Status.HeldAtFloor).To(Equal(tc.obs.Held))
		})
	}
}

// condString is "<status>/<reason>" of a condition, "" when absent.
func condString(conds []metav1.Condition, t string) string {
	c := meta.FindStatusCondition(conds, t)
	if c == nil {
		return ""
	}
	return string(c.Status) + "/" + c.Reason
}
