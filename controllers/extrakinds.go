package controllers

import (
	"context"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/manager"

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

// defaultKindPoll is how often meshguard looks for policy kinds installed after it started.
const defaultKindPoll = 15 * time.Second

// versionOf finds the version a reconcile lists a kind in: render's for the kinds meshguard
// generates, else the first served version of an extra kind. ok is false when none is served.
func (r *pipeline) versionOf(gk schema.GroupKind) (schema.GroupVersionKind, bool) {
	for _, gvk := range render.Kinds() {
		if gvk.GroupKind() == gk {
			return gvk, r.installed(gvk)
		}
	}
	for _, k := range effective.ExtraKinds() {
		if k.GroupKind != gk {
			continue
		}
		for _, v := range k.Versions {
			if gvk := gk.WithVersion(v); r.installed(gvk) {
				return gvk, true
			}
		}
	}
	return schema.GroupVersionKind{}, false
}

// pollKinds is the runnable that watches the metadata of policy kinds (meshguard's own and the
// extra ones) whose CRDs appear after the start, so that their objects requeue the profiles they
// concern within seconds, as those of kinds served at start do. Discovery's group list is asked
// first: a kind of a group that is not served costs nothing more.
func (r *MeshSecurityProfileReconciler) pollKinds(every time.Duration) manager.Runnable {
	return manager.RunnableFunc(func(ctx context.Context) error {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				r.watchNewKinds(ctx)
			}
		}
	})
}

func (r *MeshSecurityProfileReconciler) watchNewKinds(ctx context.Context) {
	pipe := r.pipe
	var candidates []schema.GroupVersionKind
	for _, gvk := range render.Kinds() {
		if !pipe.foreign.watches(gvk) {
			candidates = append(candidates, gvk)
		}
	}
	for _, k := range effective.ExtraKinds() {
		for _, v := range k.Versions {
			if gvk := k.GroupKind.WithVersion(v); !pipe.foreign.watches(gvk) {
				candidates = append(candidates, gvk)
			}
		}
	}
	if len(candidates) == 0 || pipe.servedKinds == nil || r.controller == nil {
		return
	}
	groups, err := pipe.servedKinds.disc.ServerGroups()
	if err != nil {
		return
	}
	served := map[schema.GroupVersion]bool{}
	for _, g := range groups.Groups {
		for _, v := range g.Versions {
			served[schema.GroupVersion{Group: g.Name, Version: v.Version}] = true
		}
	}
	log := ctrl.LoggerFrom(ctx)
	for _, gvk := range candidates {
		if !served[gvk.GroupVersion()] {
			continue
		}
		// Around installed's memory of missing kinds: discovery has just seen the group.
		if _, err := pipe.mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			continue
		}
		pipe.forgetMissing(gvk)
		if err := pipe.foreign.watchLater(r.controller, gvk, r.profilesForForeign); err != nil {
			log.Error(err, "watch a policy kind installed after the start", "kind", klog.KRef(gvk.Group, gvk.Kind))
			continue
		}
		log.Info("watching a policy kind installed after the start", "kind", gvk.String())
	}
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
func (r *pipeline) servedCNIKinds() []string {
	var out []string
	for _, k := range explain.CNIPolicyKinds {
		kind, group, _ := strings.Cut(k, ".")
		if _, ok := r.versionOf(schema.GroupKind{Group: group, Kind: kind}); ok {
			out = append(out, k)
		}
	}
	return out
}
