package pipeline

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// NamespaceState is how one namespace selected by a cluster profile stands, as its profile's status
// (or, without a profile, the floor controller) says.
type NamespaceState struct {
	Name string
	// profile is the namespace's MeshSecurityProfile, "" when the floor alone governs it.
	profile  string
	ready    bool
	Reason   string
	Message  string
	weakened bool
	// weakens says what weakens it, when weakened.
	weakens  string
	conflict bool
	// pending: not looked at yet since the floor changed (no verdict).
	Pending bool
	// opened: the namespace's profile opens something this floor's default deny closes.
	opened bool
}

// ClusterStatus computes a cluster profile's status from the states of the namespaces it selects.
// It is pure: table tests cover it without a cluster. The list names the first
// MaxListedNamespaces namespaces that need attention, by name; the counts are exact.
func ClusterStatus(c *v1alpha1.ClusterMeshSecurityProfile, states []NamespaceState) {
	gen := c.Generation
	st := &c.Status
	st.ObservedGeneration = gen
	set := func(t string, s metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: t, Status: s, Reason: reason, Message: trim(msg), ObservedGeneration: gen})
	}
	sort.Slice(states, func(i, j int) bool { return states[i].Name < states[j].Name })
	st.MatchedNamespaces, st.ReadyNamespaces, st.WeakenedNamespaces, st.OpenedNamespaces = int32(len(states)), 0, 0, 0
	st.Namespaces = nil
	var omitted int32
	var budget messageBudget
	defer func() { st.OmittedNamespaces = omitted }()
	var conflicts, notReady, pending []string
	for _, s := range states {
		if s.ready {
			st.ReadyNamespaces++
		}
		if s.weakened {
			st.WeakenedNamespaces++
		}
		if s.opened {
			st.OpenedNamespaces++
		}
		row := v1alpha1.NamespaceFloor{Name: s.Name, Profile: s.profile, Reason: s.Reason, Message: s.Message}
		switch {
		case s.conflict:
			row.State = v1alpha1.NamespaceConflict
			conflicts = append(conflicts, s.Name)
		case s.weakened:
			row.State, row.Reason, row.Message = v1alpha1.NamespaceWeakened, v1alpha1.ReasonWeakened, s.weakens
		case !s.ready:
			row.State = v1alpha1.NamespaceNotReady
			if s.Pending {
				pending = append(pending, s.Name)
			} else {
				notReady = append(notReady, s.Name)
			}
		default:
			continue
		}
		if len(st.Namespaces) < v1alpha1.MaxListedNamespaces {
			row.Message = budget.trim(row.Message)
			st.Namespaces = append(st.Namespaces, row)
		} else {
			omitted++
		}
	}

	switch {
	case len(conflicts) > 0:
		msg := fmt.Sprintf("%d namespaces get nothing new until the profiles selecting them agree: %s", len(conflicts), list(conflicts))
		set(v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonClusterProfileConflict, msg)
		set(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonClusterProfileConflict, msg)
	case st.ReadyNamespaces == st.MatchedNamespaces && st.WeakenedNamespaces == 0:
		meta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionStalled)
		msg := fmt.Sprintf("all %d selected namespaces are at the floor", st.MatchedNamespaces)
		if st.MatchedNamespaces == 0 {
			msg = "selects no namespace"
		}
		set(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonSucceeded, msg)
	default:
		meta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionStalled)
		var parts []string
		if n := len(notReady) + len(pending); n > 0 {
			parts = append(parts, fmt.Sprintf("%d of %d namespaces not Ready: %s", n, st.MatchedNamespaces, list(append(notReady, pending...))))
		}
		if st.WeakenedNamespaces > 0 {
			parts = append(parts, fmt.Sprintf("%d weakened by objects meshguard does not own", st.WeakenedNamespaces))
		}
		set(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonNamespacesNotReady, strings.Join(parts, "; "))
	}
	if len(pending) > 0 && len(conflicts) == 0 {
		set(v1alpha1.ConditionReconciling, metav1.ConditionTrue, v1alpha1.ReasonProgressing, fmt.Sprintf("applying the floor to %d namespaces", len(pending)))
	} else {
		meta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionReconciling)
	}
}

// ProfileState reads a namespace's state from its MeshSecurityProfile's status. The floor is in
// force there only once the profile's status says it merged this cluster profile for its current
// generation.
func ProfileState(p *v1alpha1.MeshSecurityProfile, clusterProfile string) NamespaceState {
	s := NamespaceState{Name: p.Namespace, profile: p.Name}
	stalled, stalledReason, stalledMsg := ConditionOf(p.Status.Conditions, v1alpha1.ConditionStalled)
	if stalled == metav1.ConditionTrue && stalledReason == v1alpha1.ReasonClusterProfileConflict {
		s.conflict, s.Reason, s.Message = true, stalledReason, stalledMsg
		return s
	}
	merged := false
	for _, n := range p.Status.ClusterProfiles {
		merged = merged || n == clusterProfile
	}
	if p.Status.ObservedGeneration != p.Generation || !merged {
		s.Pending, s.Reason, s.Message = true, v1alpha1.ReasonProgressing, fmt.Sprintf("MeshSecurityProfile %s has not merged the floor yet", p.Name)
		return s
	}
	ready, reason, msg := ConditionOf(p.Status.Conditions, v1alpha1.ConditionReady)
	s.ready, s.Reason, s.Message = ready == metav1.ConditionTrue, reason, msg
	for _, o := range p.Status.OpenedUnderFloor {
		s.opened = s.opened || o.ClusterProfile == clusterProfile
	}
	if eff, _, effMsg := ConditionOf(p.Status.Conditions, v1alpha1.ConditionEffective); eff == metav1.ConditionFalse {
		s.weakened, s.weakens = true, effMsg
	}
	return s
}

// FloorResult is what the floor controller last found in a namespace without a profile.
type FloorResult struct {
	Floors   []string
	Governor string
	Conflict string
	Ready    bool
	Reason   string
	Message  string
	Weakens  string
	Rows     []v1alpha1.ResourceStatus
}

// FloorResults holds the floor controller's verdicts per namespace, for the cluster profiles'
// status (a namespace without a profile has no status object of its own). It is rebuilt from the
// cluster after a restart, since every namespace is reconciled when the manager starts.
type FloorResults struct {
	mu   sync.Mutex
	byNS map[string]*FloorResult
}

// NewFloorResults returns an empty record of the floor controller's verdicts.
func NewFloorResults() *FloorResults { return &FloorResults{byNS: map[string]*FloorResult{}} }

// Set records a namespace's verdict.
func (f *FloorResults) Set(ns string, r *FloorResult) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.byNS[ns] = r
}

// Forget drops a namespace's verdict and returns the floors it named.
func (f *FloorResults) Forget(ns string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := f.byNS[ns]
	delete(f.byNS, ns)
	if old == nil {
		return nil
	}
	return old.Floors
}

// Requests are the namespaces the floor controller holds a verdict for, as requests.
func (f *FloorResults) Requests() []reconcile.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]reconcile.Request, 0, len(f.byNS))
	for ns := range f.byNS {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: ns}})
	}
	return out
}

// Get returns a namespace's verdict (nil when there is none).
func (f *FloorResults) Get(ns string) *FloorResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.byNS[ns]
}

// State is a namespace's state for one cluster profile from the floor controller's verdict.
func (r *FloorResult) State(ns, clusterProfile string) NamespaceState {
	s := NamespaceState{Name: ns}
	named := false
	for _, n := range r.Floors {
		named = named || n == clusterProfile
	}
	switch {
	case !named:
		s.Pending, s.Reason, s.Message = true, v1alpha1.ReasonProgressing, "the floor is not applied yet"
	case r.Conflict != "":
		s.conflict, s.Reason, s.Message = true, v1alpha1.ReasonClusterProfileConflict, r.Conflict
	default:
		s.ready, s.Reason, s.Message = r.Ready, r.Reason, r.Message
		s.weakened, s.weakens = r.Weakens != "", r.Weakens
	}
	return s
}
