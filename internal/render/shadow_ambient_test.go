package render

import (
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

// With authorization.enforcement: Shadow nothing of the authorization part may be enforced,
// wherever its pods run: every AuthorizationPolicy rendered from spec.authorization (the selector
// policy, its waypoint copy with targetRefs, the ztunnel policy that admits only the waypoint, the
// waypoint's default deny, a placeholder) carries istio.io/dry-run. Waypoints are Envoy and build
// their RBAC filter with the same authz builder as sidecars, dry-run shadow engines included
// (pilot/pkg/security/authz/builder; a waypoint's config in istio/istio#43576 carries the
// istio_dry_run_*_shadow_engine_result tags). Only requestAuthentication.requireToken, which Shadow
// does not cover, stays enforced (with its waypoint and ztunnel policies, named <profile>-jwt-…).
func TestShadowAuthorizationIsDryRunAtEveryProxy(t *testing.T) {
	all, err := filepath.Glob("testdata/ambient/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, in := range all {
		if strings.HasSuffix(in, ".golden.yaml") || strings.HasSuffix(in, ".facts.yaml") {
			continue
		}
		p := loadProfile(t, in)
		if !AuthorizationShadow(p) {
			continue
		}
		t.Run(strings.TrimSuffix(filepath.Base(in), ".yaml"), func(t *testing.T) {
			g := NewWithT(t)
			res, err := Render(p, loadAmbientCase(t, in))
			g.Expect(err).NotTo(HaveOccurred())
			waypointCopies := 0
			for _, o := range res.Objects {
				if o.GetKind() != "AuthorizationPolicy" || strings.HasPrefix(o.GetName(), p.Name+"-require-jwt") || strings.HasPrefix(o.GetName(), p.Name+"-jwt") {
					continue
				}
				checked++
				if strings.HasSuffix(o.GetName(), "-waypoint") || strings.HasSuffix(o.GetName(), "-ztunnel") {
					waypointCopies++
				}
				g.Expect(o.GetAnnotations()).To(HaveKeyWithValue(IstioDryRunAnnotation, "true"),
					"AuthorizationPolicy %s is rendered from spec.authorization, which is in Shadow", o.GetName())
			}
			g.Expect(waypointCopies).To(BeNumerically(">", 0), "the case puts policies on a waypoint")
		})
	}
	if checked == 0 {
		t.Fatal("no ambient case with authorization in Shadow")
	}
}
