package explain

import (
	"encoding/json"
	"net/netip"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/meshguard/meshguard/internal/meshsem"
)

// tri is a three-valued match: a rule matches, does not, or depends on something unknown.
type tri int

const (
	no tri = iota
	unknown
	yes
)

func triOf(b bool) tri {
	if b {
		return yes
	}
	return no
}

// and of two matches: no wins, then unknown.
func (a tri) and(b tri) tri {
	if a < b {
		return a
	}
	return b
}

// or of two matches: yes wins, then unknown.
func (a tri) or(b tri) tri {
	if a > b {
		return a
	}
	return b
}

func (a tri) not() tri {
	switch a {
	case yes:
		return no
	case no:
		return yes
	}
	return unknown
}

// selectorMatches reports whether a Kubernetes label selector selects labels. A nil selector
// selects nothing (callers treat "absent" themselves); an empty one selects everything.
// An invalid selector selects nothing, as the API server would have refused it.
func selectorMatches(sel *metav1.LabelSelector, l map[string]string) bool {
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return s.Matches(labels.Set(l))
}

// inCIDR reports whether ip is in cidr (a bare address is a /32 or /128). An unparsable CIDR
// matches nothing.
func inCIDR(ip netip.Addr, cidr string) bool {
	if !strings.Contains(cidr, "/") {
		a, err := netip.ParseAddr(cidr)
		return err == nil && a == ip
	}
	p, err := netip.ParsePrefix(cidr)
	return err == nil && p.Contains(ip)
}

// decode converts an unstructured object into a typed or local struct through JSON.
func decode(u *unstructured.Unstructured, into any) error {
	b, err := json.Marshal(u.Object)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, into)
}

// oldestFirst sorts objects in Istio's order among PeerAuthentications of one level
// (meshsem.Older: creationTimestamp, then name; "the oldest one is used").
func oldestFirst(objs []*unstructured.Unstructured) {
	sort.SliceStable(objs, func(i, j int) bool { return meshsem.Older(objs[i], objs[j]) })
}

func refOf(u *unstructured.Unstructured) Ref {
	return Ref{Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName()}
}

func ruleRef(u *unstructured.Unstructured, i int) Ref {
	r := refOf(u)
	r.Rule = &i
	return r
}
