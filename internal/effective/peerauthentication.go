package effective

import (
	"fmt"
	"sort"
	"strings"

	securityv1beta1 "istio.io/api/security/v1beta1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/meshapi"
	"github.com/meshguard/meshguard/internal/meshsem"
)

// mode is an mTLS mode ranked by strength; modeUnset inherits from the level above.
type mode int

const (
	modeUnset mode = iota
	modeDisable
	modePermissive
	modeStrict
)

// String is the mode as Istio writes it.
func (m mode) String() string {
	switch m {
	case modeDisable:
		return "DISABLE"
	case modePermissive:
		return "PERMISSIVE"
	case modeStrict:
		return "STRICT"
	}
	return "UNSET"
}

// istioMode reads an Istio mode; anything unknown is read as UNSET (inherit), so that it is
// never reported as weaker than it is.
func istioMode(s string) mode {
	switch strings.ToUpper(s) {
	case "DISABLE":
		return modeDisable
	case "PERMISSIVE":
		return modePermissive
	case "STRICT":
		return modeStrict
	}
	return modeUnset
}

// profileMode reads a profile mode (meshsem.Mode: "" is the API default, Strict); a mode it does
// not know is read as Strict, so that nothing weaker is taken as enough.
func profileMode(m v1alpha1.MTLSMode) mode {
	switch meshsem.Mode(m) {
	case v1alpha1.MTLSPermissive:
		return modePermissive
	case v1alpha1.MTLSDisable:
		return modeDisable
	}
	return modeStrict
}

// paMode is a PeerAuthentication's mode (or a port's); UNSET when mtls is not set.
func paMode(m *securityv1beta1.PeerAuthentication_MutualTLS) mode {
	return istioMode(m.GetMode().String())
}

// peerAuthentication judges a PeerAuthentication of the profile's namespace or of the root
// namespace.
//
// Istio's precedence (PeerAuthentication reference; pilot/pkg/security/authn): a workload-level
// policy beats the namespace-level one, which beats the mesh-level one (namespace-wide in the
// root namespace); among several at one level, the oldest wins ("if there are more than one ...
// the oldest one is used"), whatever its mode. A foreign policy is reported when it would weaken
// what the profile wants if it won, whatever its age today: meshguard recreates a deleted object
// of its own, which then becomes the youngest and loses.
func (f *finder) peerAuthentication(u *unstructured.Unstructured) []v1alpha1.ExternalPolicy {
	ns := f.namespaceOf(u)
	spec, err := meshapi.PeerAuthentication(u)
	if err != nil {
		if ns != f.p.Namespace {
			// Root-namespace policies never override meshguard's (see below); the mesh-wide
			// mode they may set is what meshWideMode reads.
			return nil
		}
		return []v1alpha1.ExternalPolicy{f.notUnderstood(u, "mtls", err)}
	}
	sel := selectorLabels(spec.GetSelector())
	if sel == nil {
		// A mesh-wide policy (root namespace) never overrides meshguard's namespace-wide one. A
		// namespace-wide one competes with it. Istio ignores portLevelMtls here. UNSET (or no
		// mtls at all) inherits the mesh-wide mode, PERMISSIVE when the mesh sets none.
		if ns != f.p.Namespace {
			return nil
		}
		m, text := paMode(spec.GetMtls()), ""
		if m == modeUnset {
			m, text = f.meshMode, fmt.Sprintf("namespace-wide UNSET, which falls back to the mesh-wide %s", f.meshMode)
		} else {
			text = "namespace-wide " + m.String()
		}
		if m < f.nsMode {
			return []v1alpha1.ExternalPolicy{f.report(u, f.nsModeField()+": "+text)}
		}
		return nil
	}
	if ns != f.p.Namespace || ns == f.root {
		// Istio ignores PeerAuthentications with a workload selector in the root namespace.
		return nil
	}
	if w := f.weakerWorkloadMTLS(spec, sel); w != "" {
		return []v1alpha1.ExternalPolicy{f.report(u, w)}
	}
	return nil
}

// meshWideMode is the mode the root namespace's namespace-wide PeerAuthentications give the mesh:
// the oldest one's (Istio's precedence), PERMISSIVE when there is none or it leaves mtls UNSET
// ("If not set, the mode is inherited from its parent; the mesh default is PERMISSIVE").
func meshWideMode(foreign []*unstructured.Unstructured, root string) mode {
	var oldest *unstructured.Unstructured
	var oldestMode mode
	for _, u := range foreign {
		if u == nil || u.GetKind() != kindPeerAuthentication || u.GetNamespace() != root {
			continue
		}
		spec, err := meshapi.PeerAuthentication(u)
		if err != nil {
			// Not understood: its mode may be the weakest, DISABLE (fail closed: a
			// namespace-wide UNSET policy is then judged against it).
			if oldest == nil || meshsem.Older(u, oldest) {
				oldest, oldestMode = u, modeDisable
			}
			continue
		}
		if selectorLabels(spec.GetSelector()) != nil {
			continue
		}
		if oldest == nil || meshsem.Older(u, oldest) {
			oldest, oldestMode = u, paMode(spec.GetMtls())
		}
	}
	if oldestMode == modeUnset {
		return istioMode(meshsem.IstioMeshDefaultMTLS)
	}
	return oldestMode
}

// weakerWorkloadMTLS compares a workload PeerAuthentication with what the profile wants for the
// pods it may select, and says what is weaker ("" when nothing is).
//
// The pods it selects fall in classes: those of each profile override whose selector can select
// the same pods (the profile's overrides cannot overlap each other), and, unless one override
// selects all of them, the pods of no override, which want the namespace mode. For a pod of an
// override Istio applies the oldest of the two policies, so the foreign one is judged against
// every class it may win in. What it leaves unset counts as inherited from the namespace, not
// from meshguard's override, which it displaces.
func (f *finder) weakerWorkloadMTLS(spec *securityv1beta1.PeerAuthentication, sel map[string]string) string {
	type class struct {
		field     string
		want      mode
		wantPorts map[uint32]mode
	}
	var classes []class
	covered := false
	if f.p.Spec.MTLS != nil {
		for i := range f.p.Spec.MTLS.Overrides {
			o := &f.p.Spec.MTLS.Overrides[i]
			if len(o.Selector.MatchLabels) == 0 || !meshsem.MayOverlap(sel, o.Selector.MatchLabels) {
				continue
			}
			if meshsem.Selects(o.Selector.MatchLabels, sel) {
				covered = true
			}
			c := class{field: overrideField(o), want: profileMode(meshsem.WorkloadMode(f.p.Spec.MTLS, o)), wantPorts: map[uint32]mode{}}
			for _, pm := range o.Ports {
				if pm.Port > 0 {
					c.wantPorts[uint32(pm.Port)] = profileMode(meshsem.PortMode(f.p.Spec.MTLS, o, pm.Port))
				}
			}
			classes = append(classes, c)
		}
	}
	if !covered {
		classes = append([]class{{field: f.nsModeField(), want: f.nsMode}}, classes...)
	}

	got, inherited := paMode(spec.GetMtls()), false
	if got == modeUnset {
		got, inherited = f.nsMode, true
	}
	gotPorts := map[uint32]mode{}
	for port, v := range spec.GetPortLevelMtls() {
		if port == 0 || port > 65535 {
			continue
		}
		if m := paMode(v); m != modeUnset {
			gotPorts[port] = m
		}
	}

	var out []string
	for _, c := range classes {
		var parts []string
		workloadWeaker := got < c.want
		if workloadWeaker {
			parts = append(parts, modeText(got, inherited))
		}
		var ports []uint32
		for p := range gotPorts {
			ports = append(ports, p)
		}
		for p := range c.wantPorts {
			if _, ok := gotPorts[p]; !ok {
				ports = append(ports, p)
			}
		}
		sort.Slice(ports, func(i, j int) bool { return ports[i] < ports[j] })
		for _, p := range ports {
			wp, ok := c.wantPorts[p]
			if !ok {
				wp = c.want
			}
			gp, explicit := gotPorts[p]
			if workloadWeaker && (!explicit || gp == got) {
				// Already said: the port has the weaker workload mode.
				continue
			}
			if !explicit {
				gp = got
			}
			if gp < wp {
				parts = append(parts, fmt.Sprintf("port %d %s", p, modeText(gp, !explicit)))
			}
		}
		if len(parts) > 0 {
			out = append(out, c.field+": "+strings.Join(parts, ", "))
		}
	}
	if len(out) == 0 {
		return ""
	}
	return fmt.Sprintf("%s for pods %s", strings.Join(out, "; "), labelsText(sel))
}

func (f *finder) nsModeField() string {
	return "mtls.mode " + string(meshsem.NamespaceMode(f.p.Spec.MTLS))
}

// overrideField names an override by its name, else by its selector.
func overrideField(o *v1alpha1.MTLSOverride) string {
	id := o.Name
	if id == "" {
		id = labelsText(o.Selector.MatchLabels)
	}
	return "mtls.overrides[" + id + "]"
}

func modeText(m mode, inherited bool) string {
	if inherited {
		return m.String() + " (inherited)"
	}
	return m.String()
}

// labelsText writes labels as sorted k=v pairs joined by commas.
func labelsText(l map[string]string) string {
	pairs := make([]string, 0, len(l))
	for k, v := range l {
		pairs = append(pairs, k+"="+v)
	}
	sort.Strings(pairs)
	return strings.Join(pairs, ",")
}
