package pipeline

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/merge"
)

// The floors (ClusterMeshSecurityProfiles) are read from the manager's cache, and so are the
// namespaces they select: of Namespaces only metadata is cached (PartialObjectMetadata), which is
// all a selector reads.
// +kubebuilder:rbac:groups=security.meshguard.dev,resources=clustermeshsecurityprofiles,verbs=get;list;watch
// +kubebuilder:rbac:groups=security.meshguard.dev,resources=clustermeshsecurityprofiles/status,verbs=get;update;patch
// Floor objects of namespaces without a profile carry blockOwnerDeletion to their cluster profile.
// +kubebuilder:rbac:groups=security.meshguard.dev,resources=clustermeshsecurityprofiles/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=list;watch

var gvkClusterProfile = v1alpha1.GroupVersion.WithKind("ClusterMeshSecurityProfile")

// NamespaceMeta returns an empty PartialObjectMetadata for Namespaces: reading it goes through the
// metadata-only informer.
func NamespaceMeta() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	return m
}

// NamespaceMetaList returns an empty PartialObjectMetadataList for Namespaces (NamespaceMeta).
func NamespaceMetaList() *metav1.PartialObjectMetadataList {
	l := &metav1.PartialObjectMetadataList{}
	l.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NamespaceList"))
	return l
}

// FloorsServed says whether the ClusterMeshSecurityProfile CRD is installed. Without it no floor
// applies, and meshguard works as before the kind existed.
func (r *Pipeline) FloorsServed() bool {
	return r.Installed(gvkClusterProfile)
}

// FloorsFor returns the cluster profiles that select a namespace (not being deleted), sorted by
// name, and whether the namespace exists and is not terminating. A cluster profile whose selector
// is invalid selects nothing (the API server refuses most invalid selectors).
func (r *Pipeline) FloorsFor(ctx context.Context, namespace string) ([]*v1alpha1.ClusterMeshSecurityProfile, bool, error) {
	if !r.FloorsServed() {
		return nil, true, nil
	}
	ns := NamespaceMeta()
	if err := r.Get(ctx, types.NamespacedName{Name: namespace}, ns); err != nil {
		if client.IgnoreNotFound(err) == nil {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("get Namespace %s: %w", namespace, err)
	}
	if !ns.DeletionTimestamp.IsZero() {
		return nil, false, nil
	}
	var list v1alpha1.ClusterMeshSecurityProfileList
	if err := r.List(ctx, &list); err != nil {
		return nil, true, fmt.Errorf("list ClusterMeshSecurityProfiles: %w", err)
	}
	var out []*v1alpha1.ClusterMeshSecurityProfile
	for i := range list.Items {
		c := &list.Items[i]
		if !c.DeletionTimestamp.IsZero() {
			continue
		}
		if ok, _, err := r.System().Selects(c, namespace, ns.Labels); err == nil && ok {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, true, nil
}

// GoverningProfile returns the MeshSecurityProfile that governs a namespace, or nil.
func GoverningProfile(ctx context.Context, c client.Reader, namespace string) (*v1alpha1.MeshSecurityProfile, error) {
	var list v1alpha1.MeshSecurityProfileList
	if err := c.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("list profiles in %s: %w", namespace, err)
	}
	return Governor(list.Items), nil
}

// Governor is the profile that governs a namespace among its profiles: the oldest that is not
// being deleted (by creation time, then name), or nil. Only one profile governs a namespace: two
// would fight over its objects.
func Governor(profiles []v1alpha1.MeshSecurityProfile) *v1alpha1.MeshSecurityProfile {
	var g *v1alpha1.MeshSecurityProfile
	for i := range profiles {
		p := &profiles[i]
		if !p.DeletionTimestamp.IsZero() {
			continue
		}
		if g == nil || p.CreationTimestamp.Before(&g.CreationTimestamp) ||
			(p.CreationTimestamp.Equal(&g.CreationTimestamp) && p.Name < g.Name) {
			g = p
		}
	}
	return g
}

// System names the namespaces floors are not applied to unless they opt in: meshguard's own and
// the mesh control-plane namespaces (issue 22).
func (r *Pipeline) System() merge.System {
	return merge.System{Meshguard: r.MeshguardNamespace,
		ControlPlane: []string{r.RenderOptions.IstioNamespace, r.RenderOptions.RootNamespace(), r.RenderOptions.LinkerdNamespace}}
}

func objectKey(gvk schema.GroupVersionKind, name string) string {
	return gvk.GroupKind().String() + "/" + name
}

// ConditionOf returns a condition's status, reason and message, or Unknown when it is absent.
func ConditionOf(conds []metav1.Condition, t string) (metav1.ConditionStatus, string, string) {
	c := meta.FindStatusCondition(conds, t)
	if c == nil {
		return metav1.ConditionUnknown, "", ""
	}
	return c.Status, c.Reason, c.Message
}

// FloorConflictMessage is what a namespace whose floors (and profile) cannot be merged says,
// wherever it is said: the profile's Stalled and Baseline conditions, the cluster profile's row.
func FloorConflictMessage(conflict string) string {
	return conflict + "; nothing new is applied until they agree"
}

// applyFloorStatus sets the floor part of a profile's status: the cluster profiles merged in, the
// fields held at a floor, and the Baseline condition. Pure, like ApplyStatus.
func applyFloorStatus(st *v1alpha1.MeshSecurityProfileStatus, gen int64, o *Observation) {
	st.ClusterProfiles = o.Floors
	st.HeldAtFloor = nil
	if len(o.Held) > 0 {
		st.HeldAtFloor = o.Held
		if len(st.HeldAtFloor) > 64 {
			st.HeldAtFloor = st.HeldAtFloor[:64]
		}
	}
	st.OpenedUnderFloor = nil
	if len(o.Opened) > 0 {
		st.OpenedUnderFloor = o.Opened
		if len(st.OpenedUnderFloor) > 64 {
			st.OpenedUnderFloor = st.OpenedUnderFloor[:64]
		}
	}
	// What Baseline adds after its verdict: the rules that open the floor's default deny, and
	// the floor's own objects kept until this profile's are all applied.
	var facts []string
	if len(o.Opened) > 0 {
		var fields []string
		for _, op := range o.Opened {
			fields = append(fields, op.Field)
		}
		verb := "rules open"
		if len(o.Opened) == 1 {
			verb = "rule opens"
		}
		facts = append(facts, fmt.Sprintf("%d %s what the floor's default deny closes (status.openedUnderFloor): %s", len(o.Opened), verb, list(fields)))
	}
	if o.floorKept != "" {
		facts = append(facts, o.floorKept)
	}
	suffix := ""
	if len(facts) > 0 {
		suffix = "; " + strings.Join(facts, "; ")
	}
	set := func(s metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: v1alpha1.ConditionBaseline, Status: s, Reason: reason, Message: trim(msg), ObservedGeneration: gen,
		})
	}
	switch {
	case !o.FloorsChecked && len(o.Floors) == 0:
		// The ClusterMeshSecurityProfile CRD is not installed: say nothing about floors.
		meta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionBaseline)
	case o.FloorConflict != "":
		set(metav1.ConditionFalse, v1alpha1.ReasonClusterProfileConflict, FloorConflictMessage(o.FloorConflict))
	case len(o.Floors) == 0:
		set(metav1.ConditionTrue, v1alpha1.ReasonNoClusterProfile, "no ClusterMeshSecurityProfile selects this namespace")
	case len(o.Held) > 0:
		held := make([]string, 0, len(o.Held))
		for _, h := range o.Held {
			held = append(held, fmt.Sprintf("%s (asks %s, held at %s by ClusterMeshSecurityProfile %s)", h.Field, h.Asked, h.HeldAt, h.ClusterProfile))
		}
		set(metav1.ConditionFalse, v1alpha1.ReasonBelowBaseline, "held at the floor: "+strings.Join(held, "; ")+suffix)
	case len(o.Opened) > 0:
		set(metav1.ConditionTrue, v1alpha1.ReasonOpensFloorDefaults, "at the floor of ClusterMeshSecurityProfile "+strings.Join(o.Floors, ", ")+" (its mTLS, Deny rules and ceilings)"+suffix)
	default:
		set(metav1.ConditionTrue, v1alpha1.ReasonAtBaseline, "at or above the floor of ClusterMeshSecurityProfile "+strings.Join(o.Floors, ", ")+suffix)
	}
}

// handoverBlocked says why the floor's own objects of a namespace must stay although its profile
// carries the floor now: some object of the profile is not applied (a Conflict with an object
// meshguard does not own, Pending on a CRD or a pod restart, or a failed write). "" when every
// object is applied and the floor's objects may go. Until then both sets stay: never wider than
// one, because the merged profile holds every rule of the floor.
func handoverBlocked(rows []childResult) string {
	var why []string
	for _, row := range rows {
		switch {
		case row.Err != nil:
			why = append(why, fmt.Sprintf("%s %s failed", row.row.Kind, row.row.Name))
		case row.row.State == v1alpha1.ResourceConflict || row.row.State == v1alpha1.ResourcePending || row.row.State == v1alpha1.ResourceMissing:
			why = append(why, fmt.Sprintf("%s %s is %s", row.row.Kind, row.row.Name, row.row.State))
		}
	}
	if len(why) == 0 {
		return ""
	}
	return "the floor's own objects of the namespace stay until every object of this profile is applied: " + list(why)
}
