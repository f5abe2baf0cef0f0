package crosscheck

import (
	"fmt"
	"math/rand/v2"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// The generator draws from small pools so that rules, pods and sampled connections meet often.
var (
	apps       = []string{"api", "backend", "web", "db"}
	peerNSPool = []string{profileNS, "frontend", "other", "kube-system"}
	portPool   = []int32{53, 80, 8080, 8086, 9090, 15012}
	// cidrs are the generated ipBlocks; none overlaps the pods' 10.244.0.0/16.
	cidrs = []v1alpha1.IPBlock{
		{CIDR: "192.0.2.0/24"},
		{CIDR: "192.0.2.0/24", Except: []string{"192.0.2.128/25"}},
		{CIDR: "198.51.100.0/25"},
		{CIDR: "203.0.113.0/24"},
		{CIDR: "172.20.0.0/16", Except: []string{"172.20.200.0/24"}},
	}
)

// genProfile draws a valid profile with a random networkPolicy section.
func genProfile(r *rand.Rand, i int) *v1alpha1.MeshSecurityProfile {
	p := &v1alpha1.MeshSecurityProfile{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", i), Namespace: profileNS},
		Spec:       v1alpha1.MeshSecurityProfileSpec{Mesh: v1alpha1.MeshIstio},
	}
	if r.IntN(2) == 0 {
		p.Spec.Mesh = v1alpha1.MeshLinkerd
	}
	np := &v1alpha1.NetworkPolicySpec{AllowDNS: r.IntN(2) == 0, AllowMeshControlPlane: r.IntN(3) == 0}
	if r.IntN(3) > 0 {
		np.DefaultDeny = append(np.DefaultDeny, v1alpha1.DirectionIngress)
	}
	if r.IntN(2) == 0 {
		np.DefaultDeny = append(np.DefaultDeny, v1alpha1.DirectionEgress)
	}
	for j, n := 0, r.IntN(4); j < n; j++ {
		np.Ingress = append(np.Ingress, v1alpha1.IngressRule{Name: fmt.Sprintf("in%d", j), Selector: genSelector(r, true), From: genPeers(r), Ports: genPorts(r)})
	}
	for j, n := 0, r.IntN(4); j < n; j++ {
		np.Egress = append(np.Egress, v1alpha1.EgressRule{Name: fmt.Sprintf("out%d", j), Selector: genSelector(r, true), To: genPeers(r), Ports: genPorts(r)})
	}
	p.Spec.NetworkPolicy = np
	return p
}

// genSelector: nil (when allowed), empty, matchLabels or matchExpressions.
func genSelector(r *rand.Rand, nilOK bool) *v1alpha1.LabelSelector {
	switch r.IntN(5) {
	case 0:
		if nilOK {
			return nil
		}
		return &v1alpha1.LabelSelector{}
	case 1:
		return &v1alpha1.LabelSelector{}
	case 2:
		s := &v1alpha1.LabelSelector{MatchLabels: map[string]string{"app": pick(r, apps)}}
		if r.IntN(2) == 0 {
			s.MatchLabels["tier"] = pick(r, []string{"a", "b"})
		}
		return s
	default:
		exprs := []v1alpha1.LabelSelectorRequirement{
			{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{pick(r, apps), pick(r, apps)}},
			{Key: "tier", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"a"}},
			{Key: "tier", Operator: metav1.LabelSelectorOpExists},
			{Key: "app", Operator: metav1.LabelSelectorOpDoesNotExist},
		}
		s := &v1alpha1.LabelSelector{MatchExpressions: []v1alpha1.LabelSelectorRequirement{exprs[r.IntN(len(exprs))]}}
		if v := s.MatchExpressions[0].Values; len(v) == 2 && v[0] == v[1] {
			s.MatchExpressions[0].Values = s.MatchExpressions[0].Values[:1]
		}
		return s
	}
}

func genPeers(r *rand.Rand) []v1alpha1.NetworkPeer {
	var out []v1alpha1.NetworkPeer
	for j, n := 0, 1+r.IntN(2); j < n; j++ {
		var p v1alpha1.NetworkPeer
		switch r.IntN(4) {
		case 0:
			p.Namespaces = genNamespaces(r)
		case 1:
			p.PodSelector = genSelector(r, false)
		case 2:
			p.Namespaces = genNamespaces(r)
			p.PodSelector = genSelector(r, false)
		default:
			b := cidrs[r.IntN(len(cidrs))]
			p.IPBlock = &v1alpha1.IPBlock{CIDR: b.CIDR, Except: append([]string(nil), b.Except...)}
		}
		out = append(out, p)
	}
	return out
}

func genNamespaces(r *rand.Rand) []string {
	var out []string
	for _, ns := range peerNSPool {
		if r.IntN(3) == 0 {
			out = append(out, ns)
		}
	}
	if len(out) == 0 {
		out = []string{pick(r, peerNSPool)}
	}
	return out
}

func genPorts(r *rand.Rand) []v1alpha1.NetworkPort {
	var out []v1alpha1.NetworkPort
	for j, n := 0, r.IntN(3); j < n; j++ {
		p := v1alpha1.NetworkPort{Port: portPool[r.IntN(len(portPool))], Protocol: "TCP"}
		if r.IntN(4) == 0 {
			p.Protocol = "UDP"
		}
		if r.IntN(4) == 0 {
			p.EndPort = ptr.To(p.Port + int32(r.IntN(20)))
		}
		out = append(out, p)
	}
	return out
}

func pick(r *rand.Rand, from []string) string { return from[r.IntN(len(from))] }
