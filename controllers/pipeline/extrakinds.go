package pipeline

import (
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/meshguard/meshguard/internal/effective"
	"github.com/meshguard/meshguard/internal/explain"
	"github.com/meshguard/meshguard/internal/render"
)

// Policy kinds meshguard reads but never writes (effective.ExtraKinds): read only, and only where
// the API server serves them. Watching a kind whose CRD is missing would stop the manager from
// starting, so a kind served at start is watched from the start and one installed later from the
// first poll that finds it (kindPoll).
// +kubebuilder:rbac:groups=policy.networking.k8s.io,resources=adminnetworkpolicies;baselineadminnetworkpolicies;clusternetworkpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=policy.linkerd.io,resources=serverauthorizations,verbs=get;list;watch
// +kubebuilder:rbac:groups=cilium.io,resources=ciliumnetworkpolicies;ciliumclusterwidenetworkpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=crd.projectcalico.org;projectcalico.org,resources=networkpolicies;globalnetworkpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=projectcalico.org,resources=stagednetworkpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=crd.antrea.io,resources=networkpolicies;clusternetworkpolicies,verbs=get;list;watch

// DefaultKindPoll is how often meshguard looks for policy kinds installed after it started.
const DefaultKindPoll = 15 * time.Second

// versionOf finds the version a reconcile lists a kind in: render's for the kinds meshguard
// generates, else the first served version of an extra kind. ok is false when none is served.
func (r *Pipeline) versionOf(gk schema.GroupKind) (schema.GroupVersionKind, bool) {
	for _, gvk := range render.Kinds() {
		if gvk.GroupKind() == gk {
			return gvk, r.Installed(gvk)
		}
	}
	for _, k := range effective.ExtraKinds() {
		if k.GroupKind != gk {
			continue
		}
		for _, v := range k.Versions {
			if gvk := gk.WithVersion(v); r.Installed(gvk) {
				return gvk, true
			}
		}
	}
	return schema.GroupVersionKind{}, false
}

// extraKindVersions are every version of every extra kind (newForeignObjects keeps those served).
func extraKindVersions() []schema.GroupVersionKind {
	var out []schema.GroupVersionKind
	for _, k := range effective.ExtraKinds() {
		for _, v := range k.Versions {
			out = append(out, k.GroupKind.WithVersion(v))
		}
	}
	return out
}

// servedCNIKinds are the CNI-specific policy kinds of explain.CNIPolicyKinds ("Kind.group") that
// the API server serves: with any of them a NetworkPolicy layer that denies is Unknown, since
// meshguard does not model them.
func (r *Pipeline) servedCNIKinds() []string {
	var out []string
	for _, k := range explain.CNIPolicyKinds {
		kind, group, _ := strings.Cut(k, ".")
		if _, ok := r.versionOf(schema.GroupKind{Group: group, Kind: kind}); ok {
			out = append(out, k)
		}
	}
	return out
}
