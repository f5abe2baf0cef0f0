package explain

import (
	"net/netip"
	"sort"
	"strings"
)

// boundaries are the address blocks any policy among objs (or a network of opts) names: every
// string of a policy object that is a CIDR or an address (NetworkPolicy ipBlock cidr and except,
// Istio ipBlocks, remoteIpBlocks and their negations and source.ip/remote.ip conditions,
// Linkerd networks and excepts, admin network policy networks), and Linkerd's cluster and probe
// networks. Reading every string over-approximates the boundaries, which only adds pieces.
func boundaries(objs *objects, opts Options) []netip.Prefix {
	var out []netip.Prefix
	add := func(s string) {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
		} else if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			add(x)
		case []any:
			for _, y := range x {
				walk(y)
			}
		case map[string]any:
			for k, y := range x {
				if k != "metadata" && k != "status" {
					walk(y)
				}
			}
		}
	}
	for gk, us := range objs.byKind {
		if gk.Group == "" {
			continue // Pods: their IPs are not policy boundaries
		}
		for _, u := range us {
			walk(u.Object)
		}
	}
	for _, n := range append(append([]string{}, opts.ClusterNetworks...), opts.LinkerdProbeNetworks...) {
		add(n)
	}
	return out
}

// pieces splits block at every boundary inside it and returns the first address of each piece,
// sorted: every boundary's membership is the same for all addresses of a piece, so one address
// stands for the piece.
func pieces(block netip.Prefix, bounds []netip.Prefix) []netip.Addr {
	first, last := block.Addr(), lastAddr(block)
	set := map[netip.Addr]bool{first: true}
	for _, b := range bounds {
		if b.Addr().Is4() != first.Is4() || !block.Overlaps(b) || b.Bits() <= block.Bits() {
			continue // another family, outside, or containing the whole block
		}
		set[b.Addr()] = true
		if n := lastAddr(b).Next(); n.IsValid() && n.Compare(last) <= 0 {
			set[n] = true
		}
	}
	out := make([]netip.Addr, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}

// lastAddr is the last address of a prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	p = p.Masked()
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
