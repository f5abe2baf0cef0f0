package profile

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/meshguard/meshguard/internal/effective"
	"github.com/meshguard/meshguard/internal/render"
)

// pollKinds is the runnable that watches the metadata of policy kinds (meshguard's own and the
// extra ones) whose CRDs appear after the start, so that their objects requeue the profiles they
// concern within seconds, as those of kinds served at start do. Discovery's group list is asked
// first: a kind of a group that is not served costs nothing more.
func (r *Reconciler) pollKinds(every time.Duration) manager.Runnable {
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

func (r *Reconciler) watchNewKinds(ctx context.Context) {
	pipe := r.pipe
	var candidates []schema.GroupVersionKind
	for _, gvk := range render.Kinds() {
		if !pipe.Foreign.Watches(gvk) {
			candidates = append(candidates, gvk)
		}
	}
	for _, k := range effective.ExtraKinds() {
		for _, v := range k.Versions {
			if gvk := k.GroupKind.WithVersion(v); !pipe.Foreign.Watches(gvk) {
				candidates = append(candidates, gvk)
			}
		}
	}
	if len(candidates) == 0 || pipe.ServedKinds == nil || r.controller == nil {
		return
	}
	groups, err := pipe.ServedKinds.Disc.ServerGroups()
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
		if _, err := pipe.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			continue
		}
		pipe.ForgetMissing(gvk)
		if err := pipe.Foreign.WatchLater(r.controller, gvk, r.profilesForForeign); err != nil {
			log.Error(err, "watch a policy kind installed after the start", "kind", klog.KRef(gvk.Group, gvk.Kind))
			continue
		}
		log.Info("watching a policy kind installed after the start", "kind", gvk.String())
	}
}
