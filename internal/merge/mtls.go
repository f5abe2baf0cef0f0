package merge

import (
	"fmt"
	"sort"
	"strings"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/meshsem"
)

// nsMode is a profile's namespace-wide mode. The strictness order and the inheritance of modes
// (namespace → override → port) are meshsem's.
func nsMode(s *v1alpha1.MeshSecurityProfileSpec) v1alpha1.MTLSMode {
	return meshsem.NamespaceMode(s.MTLS)
}

// selectorKey identifies a workload selector independently of label order.
func selectorKey(sel v1alpha1.WorkloadSelector) string {
	pairs := make([]string, 0, len(sel.MatchLabels))
	for k, v := range sel.MatchLabels {
		pairs = append(pairs, k+"="+v)
	}
	sort.Strings(pairs)
	return strings.Join(pairs, ",")
}

// overrideAt returns a profile's override for exactly this selector, with its index.
func overrideAt(s *v1alpha1.MeshSecurityProfileSpec, key string) (*v1alpha1.MTLSOverride, int) {
	if s.MTLS == nil {
		return nil, -1
	}
	for i := range s.MTLS.Overrides {
		if selectorKey(s.MTLS.Overrides[i].Selector) == key {
			return &s.MTLS.Overrides[i], i
		}
	}
	return nil, -1
}

// workloadMode is what a profile asks for the workloads of a selector: its override's mode, else
// its namespace-wide mode (meshsem.WorkloadMode).
func workloadMode(s *v1alpha1.MeshSecurityProfileSpec, key string) v1alpha1.MTLSMode {
	o, _ := overrideAt(s, key)
	return meshsem.WorkloadMode(s.MTLS, o)
}

// portMode is what a profile asks for one port of a selector's workloads: the port's own mode,
// else the workloads' mode (meshsem.PortMode).
func portMode(s *v1alpha1.MeshSecurityProfileSpec, key string, port int32) v1alpha1.MTLSMode {
	o, _ := overrideAt(s, key)
	return meshsem.PortMode(s.MTLS, o, port)
}

// strictestFloor returns the strictest value among the floors and the first floor (by name)
// asking for it.
func (m *merger) strictestFloor(mode func(s *v1alpha1.MeshSecurityProfileSpec) v1alpha1.MTLSMode) (v1alpha1.MTLSMode, string) {
	best, from := v1alpha1.MTLSMode(""), ""
	for _, f := range m.floors {
		if got := mode(f.spec); best == "" || meshsem.Rank(got) > meshsem.Rank(best) {
			best, from = got, f.cluster
		}
	}
	return best, from
}

// mtls: the strictest mode namespace-wide, and for every workload selector and port that any
// profile names, the strictest of what each profile asks there. An override that ends up equal
// to what it would inherit is dropped. A namespace profile asking for less is held and reported.
func (m *merger) mtls() {
	floorNS, from := m.strictestFloor(nsMode)
	merged := floorNS
	if m.ns != nil {
		asked := nsMode(m.ns.spec)
		if meshsem.Rank(asked) < meshsem.Rank(floorNS) {
			m.hold("spec.mtls.mode", string(asked), string(floorNS), from)
		}
		merged = meshsem.Stricter(merged, asked)
	}
	out := &v1alpha1.MTLSSpec{Mode: merged}

	// Every selector any profile overrides, in a stable order: the namespace profile's first (its
	// names are kept), then each floor's.
	type site struct {
		key      string
		selector v1alpha1.WorkloadSelector
		name     string
		from     string // the floor that names it; "" for the namespace profile's
	}
	var sites []site
	seen := map[string]bool{}
	addSites := func(s source) {
		if s.spec.MTLS == nil {
			return
		}
		for _, o := range s.spec.MTLS.Overrides {
			k := selectorKey(o.Selector)
			if seen[k] {
				continue
			}
			seen[k] = true
			name := o.Name
			if name != "" && s.cluster != "" {
				name = m.scoped(s.cluster, name)
			}
			sites = append(sites, site{key: k, selector: *o.Selector.DeepCopy(), name: name, from: s.cluster})
		}
	}
	if m.ns != nil {
		addSites(*m.ns)
	}
	for _, f := range m.floors {
		addSites(f)
	}

	// Holds of overrides are written once every override is merged: the mode that applies to the
	// pods of a held selector may come from another override that selects them too.
	type pendingHold struct {
		field, asked, from string
		sel                map[string]string
		port               int32
	}
	var holds []pendingHold
	siteFrom := map[string]string{}
	for _, st := range sites {
		siteFrom[st.key] = st.from
	}
	for _, st := range sites {
		key := st.key
		floorWL, wlFrom := m.strictestFloor(func(s *v1alpha1.MeshSecurityProfileSpec) v1alpha1.MTLSMode { return workloadMode(s, key) })
		wl := floorWL
		var nsOverride *v1alpha1.MTLSOverride
		nsIndex := -1
		if m.ns != nil {
			nsOverride, nsIndex = overrideAt(m.ns.spec, key)
			asked := workloadMode(m.ns.spec, key)
			if nsOverride != nil && nsOverride.Mode != "" && meshsem.Rank(asked) < meshsem.Rank(floorWL) {
				holds = append(holds, pendingHold{field: fmt.Sprintf("spec.mtls.overrides[%d].mode", nsIndex), asked: string(asked), from: wlFrom, sel: st.selector.MatchLabels})
			}
			wl = meshsem.Stricter(wl, asked)
		}
		o := v1alpha1.MTLSOverride{Name: st.name, Selector: st.selector}
		if wl != merged {
			o.Mode = wl
		}
		for _, port := range m.portsAt(key) {
			floorPort, portFrom := m.strictestFloor(func(s *v1alpha1.MeshSecurityProfileSpec) v1alpha1.MTLSMode { return portMode(s, key, port) })
			pm := floorPort
			if m.ns != nil {
				asked := portMode(m.ns.spec, key, port)
				if nsOverride != nil && hasPort(nsOverride, port) && meshsem.Rank(asked) < meshsem.Rank(floorPort) {
					holds = append(holds, pendingHold{field: fmt.Sprintf("spec.mtls.overrides[%d].ports[port=%d].mode", nsIndex, port), asked: string(asked), from: portFrom, sel: st.selector.MatchLabels, port: port})
				}
				pm = meshsem.Stricter(pm, asked)
			}
			if pm != wl {
				o.Ports = append(o.Ports, v1alpha1.PortMTLS{Port: port, Mode: pm})
			}
		}
		if o.Mode != "" || len(o.Ports) > 0 {
			out.Overrides = append(out.Overrides, o)
		}
	}
	m.res.Spec.MTLS = out
	for _, h := range holds {
		mode, key := appliedMode(out, h.sel, h.port)
		from := h.from
		if f := siteFrom[key]; f != "" {
			from = f
		}
		m.hold(h.field, h.asked, string(mode), from)
	}
}

// appliedMode is the mode the merged mTLS gives the pods a selector chooses (on port, when not 0),
// and the key of the override that decides it ("" for the namespace-wide mode): the override of
// exactly that selector if the merge kept it, else the strictest kept override that selects all
// of those pods (its labels are a subset), else the namespace-wide mode. The hold message then
// names what really applies (audit C1: a floor override {app: db} Strict keeps pods
// {app: db, tier: x} Strict, not the floor's namespace-wide Permissive).
func appliedMode(out *v1alpha1.MTLSSpec, sel map[string]string, port int32) (v1alpha1.MTLSMode, string) {
	modeOf := func(o v1alpha1.MTLSOverride) v1alpha1.MTLSMode {
		if port != 0 {
			return meshsem.PortMode(out, &o, port)
		}
		return meshsem.WorkloadMode(out, &o)
	}
	key := selectorKey(v1alpha1.WorkloadSelector{MatchLabels: sel})
	for _, o := range out.Overrides {
		if selectorKey(o.Selector) == key {
			return modeOf(o), key
		}
	}
	best, bestKey := meshsem.Mode(out.Mode), ""
	for _, o := range out.Overrides {
		if meshsem.Selects(o.Selector.MatchLabels, sel) && meshsem.Rank(modeOf(o)) > meshsem.Rank(best) {
			best, bestKey = modeOf(o), selectorKey(o.Selector)
		}
	}
	return best, bestKey
}

// portsAt lists, sorted, every port any profile's override for this selector names.
func (m *merger) portsAt(key string) []int32 {
	set := map[int32]bool{}
	for _, s := range m.all() {
		if o, _ := overrideAt(s.spec, key); o != nil {
			for _, p := range o.Ports {
				set[p.Port] = true
			}
		}
	}
	out := make([]int32, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func hasPort(o *v1alpha1.MTLSOverride, port int32) bool {
	for _, p := range o.Ports {
		if p.Port == port {
			return true
		}
	}
	return false
}
