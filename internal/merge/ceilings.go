package merge

import (
	"fmt"
	"net/netip"
	"strings"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/meshsem"
)

// This file holds what makes a floor a floor beyond its defaults: its ceilings (limits no
// namespace rule can go past), its requireToken kept to its own issuers, and the report of the
// namespace rules that open what the floor's default deny closes.

// ceilings enforce each floor's spec.ceilings.deniedIngressFrom. On Istio the merged profile gets
// one Deny rule per range, named <floor>-ceiling-<n>: "If there are any DENY policies that match
// the request, deny the request", before any ALLOW is looked at
// (https://istio.io/latest/docs/concepts/security/#implicit-enablement), so no Allow rule of the
// namespace can admit a sender in the range. NetworkPolicies cannot deny (they are additive
// allow-lists: https://kubernetes.io/docs/concepts/services-networking/network-policies/#the-two-sorts-of-pod-isolation)
// and Linkerd only allows, so there a namespace rule that admits addresses of a range is not
// generated and is held at the floor.
func (m *merger) ceilings() {
	type ceiling struct {
		floor string
		block v1alpha1.IPBlock
	}
	var all []ceiling
	for _, f := range m.floorSpecs {
		if f.Ceilings == nil {
			continue
		}
		for i, b := range f.Ceilings.DeniedIngressFrom {
			all = append(all, ceiling{floor: f.Name, block: b})
			if m.res.Spec.GetMesh() != v1alpha1.MeshIstio {
				continue
			}
			if m.res.Spec.Authorization == nil {
				m.res.Spec.Authorization = &v1alpha1.AuthorizationSpec{}
			}
			r := v1alpha1.AuthorizationRule{
				Name:   m.scoped(f.Name, fmt.Sprintf("ceiling-%d", i)),
				Action: v1alpha1.ActionDeny,
				From:   &v1alpha1.RuleSource{IPBlocks: []string{b.CIDR}, NotIPBlocks: append([]string(nil), b.Except...)},
			}
			m.res.Spec.Authorization.Rules = m.addRule(m.res.Spec.Authorization.Rules, r, source{cluster: f.Name})
		}
	}
	if len(all) == 0 || m.ns == nil {
		sortRules(m.res.Spec.Authorization)
		return
	}
	reaches := func(cidr string, except []string) (ceiling, bool) {
		for _, c := range all {
			if ReachesInto(cidr, except, c.block) {
				return c, true
			}
		}
		return ceiling{}, false
	}
	heldAt := func(c ceiling) string {
		s := "not generated: ceilings.deniedIngressFrom " + c.block.CIDR
		if len(c.block.Except) > 0 {
			s += " except " + strings.Join(c.block.Except, ", ")
		}
		return s
	}

	// NetworkPolicy ingress rules of the namespace: one ipBlock peer in a range refuses the whole
	// rule (dropping only the peer could leave a rule with fewer peers, never an empty one, but
	// the rule's meaning is the team's to fix).
	if np := m.ns.spec.NetworkPolicy; np != nil && m.res.Spec.NetworkPolicy != nil {
		for _, r := range np.Ingress {
			for _, peer := range r.From {
				if peer.IPBlock == nil {
					continue
				}
				if c, ok := reaches(peer.IPBlock.CIDR, peer.IPBlock.Except); ok {
					m.hold(fmt.Sprintf("spec.networkPolicy.ingress[name=%s]", r.Name), "from ipBlock "+peer.IPBlock.CIDR, heldAt(c), c.floor)
					m.res.Spec.NetworkPolicy.Ingress = removeNamed(m.res.Spec.NetworkPolicy.Ingress, r.Name)
					break
				}
			}
		}
	}

	// Linkerd Allow rules: the mesh cannot deny, so a rule admitting addresses of a range is
	// refused. A rule without senders admits every address when the namespace is not Strict
	// (internal/render/linkerd.go gives it a 0.0.0.0/0 and ::/0 NetworkAuthentication).
	if m.res.Spec.GetMesh() == v1alpha1.MeshLinkerd && m.ns.spec.Authorization != nil && m.res.Spec.Authorization != nil {
		for _, r := range m.ns.spec.Authorization.Rules {
			blocks := []string{}
			if r.From != nil {
				blocks = r.From.IPBlocks
			}
			if r.From == nil && !m.allStrict() {
				blocks = []string{"0.0.0.0/0", "::/0"}
			}
			for _, b := range blocks {
				if c, ok := reaches(b, nil); ok {
					m.hold(fmt.Sprintf("spec.authorization.rules[name=%s]", r.Name), "from ipBlocks "+strings.Join(blocks, ", "), heldAt(c), c.floor)
					m.res.Spec.Authorization.Rules = removeRule(m.res.Spec.Authorization.Rules, r.Name)
					break
				}
			}
		}
	}
	sortRules(m.res.Spec.Authorization)
}

// allStrict says whether the merged mTLS is Strict everywhere: namespace-wide, in every override
// and on every port.
func (m *merger) allStrict() bool {
	mt := m.res.Spec.MTLS
	if mt == nil {
		return true
	}
	if meshsem.Mode(mt.Mode) != v1alpha1.MTLSStrict {
		return false
	}
	for _, o := range mt.Overrides {
		if o.Mode != "" && meshsem.Mode(o.Mode) != v1alpha1.MTLSStrict {
			return false
		}
		for _, p := range o.Ports {
			if meshsem.Mode(p.Mode) != v1alpha1.MTLSStrict {
				return false
			}
		}
	}
	return true
}

// requireFloorIssuers keeps a floor's requireToken a floor: when the namespace profile adds JWT
// issuers that no floor lists, the merged profile gets a Deny rule, named <floor>-require-jwt, of
// every request whose principal is from none of the floors' issuers
// (notRequestPrincipals: ["<issuer>/*", …]; Istio's request principal is "<iss>/<sub>":
// https://istio.io/latest/docs/reference/config/security/authorization-policy/#Source). Istio
// merges the jwtRules of every RequestAuthentication of a workload and the generated
// require-jwt denies only requests without any valid token (notRequestPrincipals ["*"]), so
// without this rule a token of the team's own issuer would satisfy the floor's requirement.
func (m *merger) requireFloorIssuers() {
	ra := m.res.Spec.RequestAuthentication
	if ra == nil || !ra.RequireToken || m.res.Spec.GetMesh() != v1alpha1.MeshIstio {
		return
	}
	requireFrom := ""
	floorIssuers := map[string]bool{}
	for _, f := range m.floorSpecs {
		fra := f.RequestAuthentication
		if fra == nil {
			continue
		}
		if fra.RequireToken && requireFrom == "" {
			requireFrom = f.Name
		}
		for _, is := range fra.Issuers {
			floorIssuers[is.Issuer] = true
		}
	}
	if requireFrom == "" {
		return
	}
	var principals []string
	extra := false
	for _, is := range ra.Issuers {
		if floorIssuers[is.Issuer] {
			principals = append(principals, is.Issuer+"/*")
		} else {
			extra = true
		}
	}
	if !extra {
		return
	}
	if m.res.Spec.Authorization == nil {
		m.res.Spec.Authorization = &v1alpha1.AuthorizationSpec{}
	}
	r := v1alpha1.AuthorizationRule{
		Name:   m.scoped(requireFrom, "require-jwt"),
		Action: v1alpha1.ActionDeny,
		From:   &v1alpha1.RuleSource{NotRequestPrincipals: principals},
	}
	if ra.Selector != nil {
		r.Selector = ra.Selector.DeepCopy()
	}
	m.res.Spec.Authorization.Rules = m.addRule(m.res.Spec.Authorization.Rules, r, source{cluster: requireFrom})
	sortRules(m.res.Spec.Authorization)
}

// openings lists the namespace profile's rules that open what a floor's default deny closes and
// that no rule of the floors already allows: Allow rules under authorization.defaultDeny,
// NetworkPolicy rules (and allowDNS, allowMeshControlPlane) under networkPolicy.defaultDeny. They
// are applied (a default deny is a default); the list is a fact for the platform team. A rule is
// "already allowed" only when one floor rule admits everything it admits, compared list by list:
// the comparison may list a rule a floor covers in a way it does not see, never the reverse.
func (m *merger) openings() {
	if m.ns == nil {
		return
	}
	held := map[string]bool{}
	for _, h := range m.res.Held {
		held[h.Field] = true
	}
	add := func(field, floor, opens string) {
		if !held[field] {
			m.res.Opened = append(m.res.Opened, v1alpha1.FloorOpening{Field: field, ClusterProfile: floor, Opens: opens})
		}
	}
	if az := m.ns.spec.Authorization; az != nil {
		denyFrom := ""
		var floorRules []v1alpha1.AuthorizationRule
		for _, f := range m.floorSpecs {
			if f.Authorization == nil {
				continue
			}
			if f.Authorization.DefaultDeny && denyFrom == "" {
				denyFrom = f.Name
			}
			floorRules = append(floorRules, f.Authorization.Rules...)
		}
		for _, r := range az.Rules {
			if denyFrom == "" || r.Action == v1alpha1.ActionDeny || coveredRule(r, floorRules) {
				continue
			}
			add(fmt.Sprintf("spec.authorization.rules[name=%s]", r.Name), denyFrom, describeRule(r))
		}
	}
	np := m.ns.spec.NetworkPolicy
	if np == nil {
		return
	}
	dirFrom := map[v1alpha1.PolicyDirection]string{}
	var floorIn []v1alpha1.IngressRule
	var floorOut []v1alpha1.EgressRule
	floorDNS, floorCP := false, false
	for _, f := range m.floorSpecs {
		if f.NetworkPolicy == nil {
			continue
		}
		for _, d := range f.NetworkPolicy.DefaultDeny {
			if _, ok := dirFrom[d]; !ok {
				dirFrom[d] = f.Name
			}
		}
		floorIn = append(floorIn, f.NetworkPolicy.Ingress...)
		floorOut = append(floorOut, f.NetworkPolicy.Egress...)
		floorDNS = floorDNS || f.NetworkPolicy.AllowDNS
		floorCP = floorCP || f.NetworkPolicy.AllowMeshControlPlane
	}
	if from, ok := dirFrom[v1alpha1.DirectionIngress]; ok {
		for _, r := range np.Ingress {
			if !coveredPeers(r.Selector, r.From, r.Ports, ingressSites(floorIn)) {
				add(fmt.Sprintf("spec.networkPolicy.ingress[name=%s]", r.Name), from, "ingress from "+describePeers(r.From)+describePorts(r.Ports))
			}
		}
	}
	if from, ok := dirFrom[v1alpha1.DirectionEgress]; ok {
		for _, r := range np.Egress {
			if !coveredPeers(r.Selector, r.To, r.Ports, egressSites(floorOut)) {
				add(fmt.Sprintf("spec.networkPolicy.egress[name=%s]", r.Name), from, "egress to "+describePeers(r.To)+describePorts(r.Ports))
			}
		}
		if np.AllowDNS && !floorDNS {
			add("spec.networkPolicy.allowDNS", from, "egress to the cluster DNS")
		}
		if np.AllowMeshControlPlane && !floorCP {
			add("spec.networkPolicy.allowMeshControlPlane", from, "egress to the mesh control plane")
		}
	}
}

// coveredRule says whether one Allow rule of the floors admits every request r admits: its
// selector chooses every pod r's does, and each list it sets contains r's (which r must set).
func coveredRule(r v1alpha1.AuthorizationRule, floor []v1alpha1.AuthorizationRule) bool {
	for _, f := range floor {
		if f.Action == v1alpha1.ActionDeny {
			continue
		}
		if f.Selector != nil && (r.Selector == nil || !meshsem.Selects(f.Selector.MatchLabels, r.Selector.MatchLabels)) {
			continue
		}
		var ff, rf v1alpha1.RuleSource
		if f.From != nil {
			ff = *f.From
		}
		if r.From != nil {
			rf = *r.From
		}
		var ft, rt v1alpha1.RuleTarget
		if f.To != nil {
			ft = *f.To
		}
		if r.To != nil {
			rt = *r.To
		}
		if within(serviceAccountStrings(rf.ServiceAccounts), serviceAccountStrings(ff.ServiceAccounts)) &&
			within(rf.Namespaces, ff.Namespaces) && within(rf.RequestPrincipals, ff.RequestPrincipals) &&
			within(rf.IPBlocks, ff.IPBlocks) && within(rt.Methods, ft.Methods) && within(rt.Paths, ft.Paths) &&
			within(portStrings(rt.Ports), portStrings(ft.Ports)) {
			return true
		}
	}
	return false
}

// within: a floor list that is empty admits anything; else r's list must be set and inside it.
func within(r, floor []string) bool {
	if len(floor) == 0 {
		return true
	}
	if len(r) == 0 {
		return false
	}
	set := map[string]bool{}
	for _, s := range floor {
		set[s] = true
	}
	for _, s := range r {
		if !set[s] {
			return false
		}
	}
	return true
}

func serviceAccountStrings(in []v1alpha1.ServiceAccountRef) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		out = append(out, string(s))
	}
	return out
}

func portStrings(in []int32) []string {
	out := make([]string, 0, len(in))
	for _, p := range in {
		out = append(out, fmt.Sprint(p))
	}
	return out
}

// npSite is a floor NetworkPolicy rule reduced to what coverage compares.
type npSite struct {
	selector *v1alpha1.LabelSelector
	peers    []v1alpha1.NetworkPeer
	ports    []v1alpha1.NetworkPort
}

func ingressSites(rules []v1alpha1.IngressRule) []npSite {
	out := make([]npSite, 0, len(rules))
	for _, r := range rules {
		out = append(out, npSite{r.Selector, r.From, r.Ports})
	}
	return out
}

func egressSites(rules []v1alpha1.EgressRule) []npSite {
	out := make([]npSite, 0, len(rules))
	for _, r := range rules {
		out = append(out, npSite{r.Selector, r.To, r.Ports})
	}
	return out
}

// coveredPeers says whether one floor rule admits every connection a namespace rule admits: its
// selector is empty (or the same), every peer of the rule is one of its peers (or an ipBlock
// inside one of its ipBlocks without except), and its ports are empty or include each port.
func coveredPeers(sel *v1alpha1.LabelSelector, peers []v1alpha1.NetworkPeer, ports []v1alpha1.NetworkPort, floor []npSite) bool {
	for _, f := range floor {
		if !selectorCovers(f.selector, sel) || !portsCover(f.ports, ports) {
			continue
		}
		ok := true
		for _, p := range peers {
			if !peerCovered(p, f.peers) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func selectorCovers(floor, r *v1alpha1.LabelSelector) bool {
	if floor == nil || (len(floor.MatchLabels) == 0 && len(floor.MatchExpressions) == 0) {
		return true
	}
	if r == nil || len(floor.MatchExpressions) > 0 {
		return r != nil && fmt.Sprint(*floor) == fmt.Sprint(*r)
	}
	return meshsem.Selects(floor.MatchLabels, r.MatchLabels)
}

func portsCover(floor, r []v1alpha1.NetworkPort) bool {
	if len(floor) == 0 {
		return true
	}
	if len(r) == 0 {
		return false
	}
	for _, p := range r {
		found := false
		for _, f := range floor {
			found = found || fmt.Sprint(f) == fmt.Sprint(p)
		}
		if !found {
			return false
		}
	}
	return true
}

func peerCovered(p v1alpha1.NetworkPeer, floor []v1alpha1.NetworkPeer) bool {
	for _, f := range floor {
		if f.IPBlock != nil && p.IPBlock != nil && len(f.IPBlock.Except) == 0 {
			fp, err1 := netip.ParsePrefix(f.IPBlock.CIDR)
			pp, err2 := netip.ParsePrefix(p.IPBlock.CIDR)
			if err1 == nil && err2 == nil && fp.Bits() <= pp.Bits() && fp.Contains(pp.Masked().Addr()) {
				return true
			}
		}
		if fmt.Sprint(f) == fmt.Sprint(p) {
			return true
		}
	}
	return false
}

func describeRule(r v1alpha1.AuthorizationRule) string {
	var parts []string
	if f := r.From; f != nil {
		for _, l := range []struct {
			name string
			vals []string
		}{{"serviceAccounts", serviceAccountStrings(f.ServiceAccounts)}, {"namespaces", f.Namespaces}, {"requestPrincipals", f.RequestPrincipals}, {"ipBlocks", f.IPBlocks}} {
			if len(l.vals) > 0 {
				parts = append(parts, "from "+l.name+" "+strings.Join(l.vals, ", "))
			}
		}
	} else {
		parts = append(parts, "from any sender")
	}
	if t := r.To; t != nil {
		for _, l := range []struct {
			name string
			vals []string
		}{{"methods", t.Methods}, {"paths", t.Paths}, {"ports", portStrings(t.Ports)}} {
			if len(l.vals) > 0 {
				parts = append(parts, "to "+l.name+" "+strings.Join(l.vals, ", "))
			}
		}
	}
	if r.Selector != nil {
		parts = append(parts, "on pods "+selectorKey(*r.Selector))
	}
	return "allows requests " + strings.Join(parts, " ")
}

func describePeers(peers []v1alpha1.NetworkPeer) string {
	var out []string
	for _, p := range peers {
		switch {
		case p.IPBlock != nil:
			s := "ipBlock " + p.IPBlock.CIDR
			if len(p.IPBlock.Except) > 0 {
				s += " except " + strings.Join(p.IPBlock.Except, ", ")
			}
			out = append(out, s)
		case len(p.Namespaces) > 0 && p.PodSelector != nil:
			out = append(out, "selected pods of namespaces "+strings.Join(p.Namespaces, ", "))
		case len(p.Namespaces) > 0:
			out = append(out, "namespaces "+strings.Join(p.Namespaces, ", "))
		default:
			out = append(out, "selected pods of this namespace")
		}
	}
	return strings.Join(out, "; ")
}

func describePorts(ports []v1alpha1.NetworkPort) string {
	if len(ports) == 0 {
		return " on every port"
	}
	var out []string
	for _, p := range ports {
		s := fmt.Sprint(p.Port)
		if p.EndPort != nil {
			s += fmt.Sprintf("-%d", *p.EndPort)
		}
		out = append(out, s)
	}
	return " on ports " + strings.Join(out, ", ")
}

// ReachesInto says whether the addresses of cidr minus except include one of a ceiling's denied
// addresses (its cidr minus its except). A CIDR that does not parse reaches everywhere (fail
// closed: the rule is refused).
func ReachesInto(cidr string, except []string, c v1alpha1.IPBlock) bool {
	t, err := netip.ParsePrefix(cidr)
	if err != nil {
		return true
	}
	d, err := netip.ParsePrefix(c.CIDR)
	if err != nil {
		return true
	}
	t, d = t.Masked(), d.Masked()
	if t.Addr().Is4() != d.Addr().Is4() || !t.Overlaps(d) {
		return false
	}
	inter := t
	if d.Bits() > t.Bits() {
		inter = d
	}
	var holes []netip.Prefix
	for _, e := range append(append([]string(nil), except...), c.Except...) {
		p, err := netip.ParsePrefix(e)
		if err == nil {
			holes = append(holes, p.Masked())
		}
	}
	return !coveredBy(inter, holes)
}

// coveredBy says whether every address of p is in one of the prefixes.
func coveredBy(p netip.Prefix, set []netip.Prefix) bool {
	overlaps := false
	for _, s := range set {
		if s.Addr().Is4() != p.Addr().Is4() {
			continue
		}
		if s.Bits() <= p.Bits() && s.Contains(p.Addr()) {
			return true
		}
		overlaps = overlaps || s.Overlaps(p)
	}
	if !overlaps || p.Bits() == p.Addr().BitLen() {
		return false
	}
	lo := netip.PrefixFrom(p.Addr(), p.Bits()+1)
	hiAddr := p.Addr().AsSlice()
	bit := p.Bits()
	hiAddr[bit/8] |= 0x80 >> (bit % 8)
	hi, _ := netip.AddrFromSlice(hiAddr)
	return coveredBy(lo, set) && coveredBy(netip.PrefixFrom(hi, p.Bits()+1), set)
}

func removeNamed(rules []v1alpha1.IngressRule, name string) []v1alpha1.IngressRule {
	out := rules[:0:0]
	for _, r := range rules {
		if r.Name != name {
			out = append(out, r)
		}
	}
	return out
}

func removeRule(rules []v1alpha1.AuthorizationRule, name string) []v1alpha1.AuthorizationRule {
	out := rules[:0:0]
	for _, r := range rules {
		if r.Name != name {
			out = append(out, r)
		}
	}
	return out
}

func sortRules(az *v1alpha1.AuthorizationSpec) {
	if az == nil {
		return
	}
	sortByName(az.Rules)
}
