package faults

import (
	"context"
	"math"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
)

// The drift back-off of controllers/pipeline/fight.go, as documented there: after fightFreeCorrections
// corrections of one object within a minute, meshguard waits fightBaseDelay before the next and
// doubles the wait each time.
const (
	fightFreeCorrections = 3
	fightBaseDelay       = 2 * time.Second
)

var paGroupKind = schema.GroupKind{Group: "security.istio.io", Kind: "PeerAuthentication"}

// fightSeconds is how long the other controller fights.
var fightSeconds = envInt("MESHGUARD_FAULTS_FIGHT_SECONDS", 30)

// Fault 7: another controller sets a generated PeerAuthentication back to PERMISSIVE the moment
// meshguard restores STRICT. meshguard's writes stay within its back-off's bound (a few free
// corrections, then doubling waits), and once the other controller stops, the profile converges.
func TestAnotherControllerFightsOverAGeneratedField(t *testing.T) {
	ctx := context.Background()
	m := cl.startManager(t, "fight", "")
	awaitReadyz(ctx, t, m)
	keys, err := cl.createProfiles(ctx, "fight", 1) // baseline-full: Istio, STRICT
	if err != nil {
		t.Fatal(err)
	}
	awaitProgress(ctx, t, keys, 1)
	ns, name := keys[0].Namespace, "baseline-mtls"
	pas := cl.dynamic.Resource(generatedResources[paGroupKind]).Namespace(ns)

	w, err := pas.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	duration := time.Duration(fightSeconds) * time.Second
	start := time.Now()
	restorations, fighterWrites := 0, 0
	var first, last *unstructured.Unstructured
	for time.Since(start) < duration {
		var ev watch.Event
		select {
		case ev = <-w.ResultChan():
		case <-time.After(time.Until(start.Add(duration))):
			continue
		}
		u, ok := ev.Object.(*unstructured.Unstructured)
		if !ok || ev.Type == watch.Deleted {
			continue
		}
		if first == nil {
			first = u
		}
		last = u
		mode, _, _ := unstructured.NestedString(u.Object, "spec", "mtls", "mode")
		if mode == "PERMISSIVE" {
			continue
		}
		if fighterWrites > 0 && ev.Type == watch.Modified {
			restorations++ // meshguard took it back
		}
		// The other controller: a merge patch under its own field manager, at once.
		if _, err := pas.Patch(ctx, name, types.MergePatchType, []byte(`{"spec":{"mtls":{"mode":"PERMISSIVE"}}}`),
			metav1.PatchOptions{FieldManager: "fighter"}); err != nil {
			t.Fatalf("the other controller's patch: %v", err)
		}
		fighterWrites++
	}
	fought := time.Since(start)
	w.Stop()

	res := expectExact(ctx, t) // STRICT again once meshguard's next restoration is due
	expectAlive(t, m)
	writes := last.GetGeneration() - first.GetGeneration()
	figs.add("7 another controller rewrote the PeerAuthentication's mode %d times in %s: meshguard restored it %d times (%d spec writes in all), then converged: exact (%d profiles, %d objects)",
		fighterWrites, fought.Round(time.Second), restorations, writes, res.profiles, res.objects)

	// The bound from the back-off: the free corrections, then one after each doubling wait
	// (2 s, 4 s, 8 s, ...) that fits into the fight, plus one in flight when it started.
	bound := fightFreeCorrections + 1 + int(math.Ceil(math.Log2(float64(fought/fightBaseDelay)+1)))
	if restorations > bound {
		t.Errorf("meshguard restored the fought-over object %d times in %s: more than the back-off's bound %d", restorations, fought, bound)
	}
	if restorations < fightFreeCorrections {
		t.Errorf("meshguard restored the fought-over object only %d times: the first %d corrections are immediate", restorations, fightFreeCorrections)
	}
	if err := m.Stop(); err != nil {
		t.Error(err)
	}
}
