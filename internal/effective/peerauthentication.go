package effective

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
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

// profileMode reads a profile mode; "" is the API default, Strict.
func profileMode(m v1alpha1.MTLSMode) mode {
	switch m {
	case v1alpha1.MTLSPermissive:
		return modePermissive
	case v1alpha1.MTLSDisable:
		return modeDisable
	}
	return modeStrict
}

// istioSelector is an Istio WorkloadSelector.
type istioSelector struct {
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
}

// labels is the selector's labels; nil for no selector or an empty one, which Istio both reads
// as "every workload".
func (s *istioSelector) labels() map[string]string {
	if s == nil || len(s.MatchLabels) == 0 {
		return nil
	}
	return s.MatchLabels
}

type mutualTLS struct {
	Mode string `json:"mode,omitempty"`
}

// peerAuthenticationSpec is the part of security.istio.io PeerAuthentication that matters here.
type peerAuthenticationSpec struct {
	Selector      *istioSelector       `json:"selector,omitempty"`
	Mtls          *mutualTLS           `json:"mtls,omitempty"`
	PortLevelMtls map[string]mutualTLS `json:"portLevelMtls,omitempty"`
}

func (s *peerAuthenticationSpec) mode() mode {
	if s.Mtls == nil {
		return modeUnset
	}
	return istioMode(s.Mtls.Mode)
}

// peerAuthentication judges a PeerAuthentication of the profile's namespace or of the root
// namespace.
func (f *finder) peerAuthentication(u *unstructured.Unstructured) []v1alpha1.ExternalPolicy {
	var spec peerAuthenticationSpec
	if !decodeSpec(u, &spec) {
		return nil
	}
	ns := f.namespaceOf(u)
	sel := spec.Selector.labels()
	if sel == nil {
		// A mesh-wide policy (root namespace) never overrides meshguard's namespace-wide one. A
		// namespace-wide one competes with it: Istio applies the oldest, so it weakens the
		// profile whenever it is weaker, whatever its age. Istio ignores portLevelMtls here.
		if ns != f.p.Namespace {
			return nil
		}
		if m := spec.mode(); m != modeUnset && m < f.nsMode {
			return []v1alpha1.ExternalPolicy{f.report(u, fmt.Sprintf("%s: namespace-wide %s", f.nsModeField(), m))}
		}
		return nil
	}
	if ns != f.p.Namespace || ns == f.root {
		// Istio ignores PeerAuthentications with a workload selector in the root namespace.
		return nil
	}
	if w := f.weakerWorkloadMTLS(&spec, sel); w != "" {
		return []v1alpha1.ExternalPolicy{f.report(u, w)}
	}
	return nil
}

// weakerWorkloadMTLS compares a workload PeerAuthentication with what the profile wants for the
// workloads it selects, and says what is weaker ("" when nothing is).
//
// What the profile wants is the profile's override that covers every selected workload (the one
// with the same selector, else the most specific one whose labels the selector includes), or
// else the namespace mode. The foreign policy competes with meshguard's own workload policy for
// the same workloads (Istio applies the oldest), so what it leaves unset counts as inherited from
// the namespace, not from meshguard's override.
func (f *finder) weakerWorkloadMTLS(spec *peerAuthenticationSpec, sel map[string]string) string {
	field := f.nsModeField()
	want := f.nsMode
	wantPorts := map[uint32]mode{}
	if o := f.coveringOverride(sel); o != nil {
		field = overrideField(o)
		if o.Mode != "" {
			want = profileMode(o.Mode)
		}
		for _, pm := range o.Ports {
			if pm.Port > 0 && pm.Mode != "" {
				wantPorts[uint32(pm.Port)] = profileMode(pm.Mode)
			}
		}
	}

	var parts []string
	got, inherited := spec.mode(), false
	if got == modeUnset {
		got, inherited = f.nsMode, true
	}
	workloadWeaker := got < want
	if workloadWeaker {
		parts = append(parts, modeText(got, inherited))
	}

	gotPorts := map[uint32]mode{}
	for k, v := range spec.PortLevelMtls {
		port, err := strconv.ParseUint(k, 10, 32)
		if err != nil || port == 0 || port > 65535 {
			continue
		}
		if m := istioMode(v.Mode); m != modeUnset {
			gotPorts[uint32(port)] = m
		}
	}
	var ports []uint32
	for p := range gotPorts {
		ports = append(ports, p)
	}
	for p := range wantPorts {
		if _, ok := gotPorts[p]; !ok {
			ports = append(ports, p)
		}
	}
	sort.Slice(ports, func(i, j int) bool { return ports[i] < ports[j] })
	for _, p := range ports {
		wp, ok := wantPorts[p]
		if !ok {
			wp = want
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
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf("%s: %s for pods %s", field, strings.Join(parts, ", "), labelsText(sel))
}

// coveringOverride is the profile's override that applies to every workload sel selects: the
// one with the same selector, else the most specific one whose labels sel includes (the first in
// the profile on a tie).
func (f *finder) coveringOverride(sel map[string]string) *v1alpha1.MTLSOverride {
	if f.p.Spec.MTLS == nil {
		return nil
	}
	var best *v1alpha1.MTLSOverride
	for i := range f.p.Spec.MTLS.Overrides {
		o := &f.p.Spec.MTLS.Overrides[i]
		if len(o.Selector.MatchLabels) == 0 || !includes(sel, o.Selector.MatchLabels) {
			continue
		}
		if len(o.Selector.MatchLabels) == len(sel) {
			return o
		}
		if best == nil || len(o.Selector.MatchLabels) > len(best.Selector.MatchLabels) {
			best = o
		}
	}
	return best
}

func (f *finder) nsModeField() string {
	m := v1alpha1.MTLSStrict
	if f.p.Spec.MTLS != nil && f.p.Spec.MTLS.Mode != "" {
		m = f.p.Spec.MTLS.Mode
	}
	return "mtls.mode " + string(m)
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

// includes says whether every label of sub is in set.
func includes(set, sub map[string]string) bool {
	for k, v := range sub {
		if w, ok := set[k]; !ok || w != v {
			return false
		}
	}
	return true
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
