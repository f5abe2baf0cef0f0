package suggest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/explain"
)

// Options say what to propose.
type Options struct {
	// Mesh is the mesh the profiles are for.
	Mesh v1alpha1.Mesh
	// ProfileName is the name of every proposed profile (default "suggested").
	ProfileName string
	// Namespaces limits the proposal to these destination namespaces; empty: every namespace
	// that received traffic, except Skip.
	Namespaces []string
	// Skip are namespaces no profile may be proposed for (the mesh's control plane and root
	// namespaces, where meshguard refuses profiles, and kube-system).
	Skip []string
	// Shadow proposes authorization.enforcement: Shadow, so that the mesh reports what the
	// profile would deny before it denies anything (docs/adoption.md).
	Shadow bool
}

// Proposal is one proposed profile and what the reader must know about it.
type Proposal struct {
	Profile *v1alpha1.MeshSecurityProfile
	// Notes say where the proposal is wider or narrower than the traffic, or what it leaves out.
	Notes []string
}

// unobservedAddress stands for "any address" in the expectations of plaintext flows: TEST-NET-1
// (RFC 5737), an address no real client has.
const unobservedAddress = "192.0.2.10"

// maxRuleName is the longest rule name the API accepts (rules[].name, ingress[].name MaxLength).
const maxRuleName = 40

// Suggest proposes one profile per destination namespace of the observation. Every destination
// workload must be among the workloads (its real labels are the rule's selector); a missing one is
// an error naming it, never a selector guessed from a name.
func Suggest(obs *Observation, workloads []Workload, opts Options) ([]Proposal, error) {
	if opts.ProfileName == "" {
		opts.ProfileName = "suggested"
	}
	if opts.Mesh == "" {
		opts.Mesh = v1alpha1.MeshIstio
	}
	wl := map[string]Workload{}
	for _, w := range workloads {
		wl[w.Namespace+"/"+w.Name] = w
	}
	want := map[string]bool{}
	for _, n := range opts.Namespaces {
		want[n] = true
	}
	skip := map[string]bool{}
	for _, n := range opts.Skip {
		skip[n] = true
	}
	flows := dropCarriers(resolveClients(obs.Flows, workloads))
	byNS := map[string][]Flow{}
	var missing []string
	for _, f := range flows {
		if skip[f.DestNamespace] || (len(want) > 0 && !want[f.DestNamespace]) {
			continue
		}
		if _, ok := wl[f.DestNamespace+"/"+f.DestWorkload]; !ok {
			missing = append(missing, f.DestNamespace+"/"+f.DestWorkload)
			continue
		}
		byNS[f.DestNamespace] = append(byNS[f.DestNamespace], f)
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, fmt.Errorf("no labels for the receiving workloads %s: give their Deployments, StatefulSets, DaemonSets or Pods (--workloads) or read them from the cluster (--kubeconfig)", strings.Join(slices.Compact(missing), ", "))
	}
	var out []Proposal
	for _, ns := range slices.Sorted(maps.Keys(byNS)) {
		b := &builder{ns: ns, opts: opts, wl: wl}
		p, err := b.build(byNS[ns], flows, obs)
		if err != nil {
			return nil, fmt.Errorf("namespace %s: %w", ns, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// dropCarriers removes a connection flow when requests of the same client to the same port were
// seen: Linkerd's tcp_open_total counts the connections that carry HTTP requests too, and a
// port-wide rule next to the HTTP rules would allow every method and path.
func dropCarriers(in []Flow) []Flow {
	http := map[string]bool{}
	for _, f := range in {
		if f.HTTP {
			http[carrierKey(f)] = true
		}
	}
	var out []Flow
	for _, f := range in {
		if !f.HTTP && http[carrierKey(f)] {
			continue
		}
		out = append(out, f)
	}
	return out
}

// resolveClients names the client's workload of flows whose metrics only give its identity
// (Linkerd): the one workload of its namespace that runs as its service account. When several do,
// the client stays a whole namespace (never a guess).
func resolveClients(in []Flow, workloads []Workload) []Flow {
	bySA := map[string][]string{}
	for _, w := range workloads {
		k := w.Namespace + "/" + w.ServiceAccount
		bySA[k] = append(bySA[k], w.Name)
	}
	out := make([]Flow, len(in))
	for i, f := range in {
		if f.Meshed() && f.SourceWorkload == "" {
			if names := bySA[f.SourceNamespace+"/"+f.SourceServiceAccount]; len(names) == 1 {
				f.SourceWorkload = names[0]
			}
		}
		out[i] = f
	}
	return out
}

func carrierKey(f Flow) string {
	return strings.Join([]string{f.DestNamespace, f.DestWorkload, f.SourceNamespace, f.SourceServiceAccount, strconv.Itoa(int(f.Port))}, "\x00")
}

type builder struct {
	ns    string
	opts  Options
	wl    map[string]Workload
	notes []string
}

// group is the flows of one client to one port of one workload.
type group struct {
	dest   Workload
	srcNS  string
	srcSA  string
	srcWL  string
	port   int32
	flows  []Flow
	meshed bool
}

func (b *builder) build(flows, all []Flow, obs *Observation) (Proposal, error) {
	groups := map[string]*group{}
	for _, f := range flows {
		k := strings.Join([]string{f.DestWorkload, f.SourceNamespace, f.SourceServiceAccount, strconv.Itoa(int(f.Port))}, "\x00")
		g, ok := groups[k]
		if !ok {
			g = &group{dest: b.wl[f.DestNamespace+"/"+f.DestWorkload], srcNS: f.SourceNamespace, srcSA: f.SourceServiceAccount, port: f.Port, meshed: f.Meshed()}
			groups[k] = g
		}
		if f.SourceWorkload != "" {
			g.srcWL = f.SourceWorkload
		}
		g.flows = append(g.flows, f)
	}
	keys := slices.Sorted(maps.Keys(groups))

	spec := v1alpha1.MeshSecurityProfileSpec{
		Mesh:          b.opts.Mesh,
		Enforcement:   v1alpha1.EnforcementEnforce,
		MTLS:          &v1alpha1.MTLSSpec{Mode: v1alpha1.MTLSStrict},
		Authorization: &v1alpha1.AuthorizationSpec{DefaultDeny: true},
		NetworkPolicy: &v1alpha1.NetworkPolicySpec{
			DefaultDeny:           []v1alpha1.PolicyDirection{v1alpha1.DirectionIngress, v1alpha1.DirectionEgress},
			AllowDNS:              true,
			AllowMeshControlPlane: true,
		},
	}
	if b.opts.Shadow {
		spec.Authorization.Enforcement = v1alpha1.RuleEnforcementShadow
	}
	var allowed []v1alpha1.Expectation
	plaintext := map[string][]int32{} // workload name → ports with plaintext clients
	ruleNames := map[string]bool{}
	for _, k := range keys {
		g := groups[k]
		if !g.meshed {
			if g.port == 0 {
				b.note(fmt.Sprintf("plaintext clients of %s seen on a port the metrics do not name: not allowed (mTLS stays Strict)", g.dest.Name))
				continue
			}
			plaintext[g.dest.Name] = append(plaintext[g.dest.Name], g.port)
		}
		for _, r := range b.rules(g) {
			r.Name = uniqueName(r.Name, ruleNames)
			spec.Authorization.Rules = append(spec.Authorization.Rules, r.AuthorizationRule)
			if x, ok := b.allowedExpectation(g, r); ok {
				allowed = append(allowed, x)
			}
		}
	}
	if len(spec.Authorization.Rules) > 64 {
		return Proposal{}, fmt.Errorf("%d authorization rules are needed, more than the 64 a profile holds: split the namespace's traffic by --namespace or shorten the window", len(spec.Authorization.Rules))
	}
	for _, name := range slices.Sorted(maps.Keys(plaintext)) {
		w := b.wl[b.ns+"/"+name]
		o := v1alpha1.MTLSOverride{Name: shorten("plaintext-" + name), Selector: v1alpha1.WorkloadSelector{MatchLabels: w.Labels}}
		ports := plaintext[name]
		slices.Sort(ports)
		for _, p := range slices.Compact(ports) {
			o.Ports = append(o.Ports, v1alpha1.PortMTLS{Port: p, Mode: v1alpha1.MTLSPermissive})
		}
		spec.MTLS.Overrides = append(spec.MTLS.Overrides, o)
		b.note(fmt.Sprintf("plaintext clients of %s seen: port(s) %s stay Permissive and any address may reach them (narrow with from.ipBlocks, or mesh the clients)", name, joinPorts(o.Ports)))
	}
	spec.NetworkPolicy.Ingress = b.ingress(groups, keys)
	spec.NetworkPolicy.Egress = b.egress(all)
	b.note("egress to destinations outside the mesh is not in the mesh's inbound metrics: add networkPolicy.egress rules for them before enforcing")

	denied := b.deniedExpectations(groups, keys, obs)
	room := 32 - len(denied)
	if len(allowed) > room {
		b.note(fmt.Sprintf("%d observed flows are not written as expectations: a profile holds 32", len(allowed)-room))
		allowed = allowed[:room]
	}
	spec.Expectations = append(allowed, denied...)
	names := map[string]bool{}
	for i := range spec.Expectations {
		spec.Expectations[i].Name = uniqueName(spec.Expectations[i].Name, names)
	}

	p := &v1alpha1.MeshSecurityProfile{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "MeshSecurityProfile"},
		ObjectMeta: metav1.ObjectMeta{Name: b.opts.ProfileName, Namespace: b.ns},
		Spec:       spec,
	}
	return Proposal{Profile: p, Notes: b.notes}, nil
}

func (b *builder) note(s string) { b.notes = append(b.notes, s) }

// networkPolicyPort is the port a NetworkPolicy sees for a flow to port. On Linkerd,
// "communication between two meshed pods will always have its original target port replaced
// with the proxy's inbound port" (linkerd.io/2/common-errors/network-policy; explain models the
// same, audit finding E1), so a meshed flow is admitted on that port, and Linkerd's Server and
// AuthorizationPolicy keep it to the observed port; a plaintext flow arrives on port itself.
func (b *builder) networkPolicyPort(meshed bool, port int32) int32 {
	if meshed && port != 0 && b.opts.Mesh == v1alpha1.MeshLinkerd {
		return explain.DefaultLinkerdProxyInboundPort
	}
	return port
}

// rule is a proposed rule and the flow its expectation is written from.
type rule struct {
	v1alpha1.AuthorizationRule
	example Flow
}

// rules proposes the Allow rules of one group: one per set of methods that share the same paths,
// so that the rules allow exactly the observed (method, path prefix) pairs and nothing crossed
// (from/to lists AND, entries OR: methods [GET, POST] with paths [/a/*, /b/*] would also allow
// POST /a/...).
func (b *builder) rules(g *group) []rule {
	base := "plaintext"
	var from *v1alpha1.RuleSource
	if g.meshed {
		base = g.srcSA + "-" + g.srcNS
		from = &v1alpha1.RuleSource{ServiceAccounts: []v1alpha1.ServiceAccountRef{v1alpha1.ServiceAccountRef(g.srcNS + "/" + g.srcSA)}}
	}
	base += "-to-" + g.dest.Name
	if g.port != 0 {
		base += "-" + strconv.Itoa(int(g.port))
	}
	var ports []int32
	if g.port != 0 {
		ports = []int32{g.port}
	}
	// method → path prefixes; "" is "any" (the metrics did not say).
	paths := map[string]map[string]bool{}
	examples := map[string]Flow{}
	anything := false
	for _, f := range g.flows {
		if !f.HTTP || (f.Method == "" && f.Path == "") {
			anything = true
			if e, ok := examples[""]; !ok || f.Count > e.Count {
				examples[""] = f
			}
			continue
		}
		if paths[f.Method] == nil {
			paths[f.Method] = map[string]bool{}
		}
		if e, ok := examples[f.Method]; !ok || f.Count > e.Count {
			examples[f.Method] = f
		}
		paths[f.Method][pathPrefix(f.Path)] = true
	}
	mk := func(name string, methods, ps []string, ex Flow) rule {
		r := rule{AuthorizationRule: v1alpha1.AuthorizationRule{
			Name:     shorten(name),
			Action:   v1alpha1.ActionAllow,
			Selector: &v1alpha1.WorkloadSelector{MatchLabels: g.dest.Labels},
			From:     from,
		}, example: ex}
		if len(ports)+len(methods)+len(ps) > 0 {
			r.To = &v1alpha1.RuleTarget{Ports: ports, Methods: methods, Paths: ps}
		}
		return r
	}
	if anything || len(paths) == 0 {
		return []rule{mk(base, nil, nil, examples[""])}
	}
	// Methods with the same path set share a rule.
	bySet := map[string][]string{}
	for m, ps := range paths {
		if ps[""] {
			ps = map[string]bool{}
		}
		k := strings.Join(slices.Sorted(maps.Keys(ps)), "\x00")
		bySet[k] = append(bySet[k], m)
	}
	var out []rule
	for i, k := range slices.Sorted(maps.Keys(bySet)) {
		ms := bySet[k]
		slices.Sort(ms)
		var ps []string
		if k != "" {
			ps = strings.Split(k, "\x00")
		}
		if slices.Contains(ms, "") {
			ms = nil
		}
		name := base
		if len(bySet) > 1 {
			name += "-" + strconv.Itoa(i+1)
		}
		ex := examples[bySet[k][0]]
		out = append(out, mk(name, ms, ps, ex))
	}
	return out
}

// pathPrefix is the prefix a rule allows for an observed path: its first segment and everything
// below ("/api/items/42" → "/api/*"), or the path itself when it has one segment ("/healthz").
// "" (unknown) stays "".
func pathPrefix(p string) string {
	if p == "" || p == "/" {
		return p
	}
	rest := strings.TrimPrefix(p, "/")
	if i := strings.Index(rest, "/"); i >= 0 {
		return "/" + rest[:i] + "/*"
	}
	return p
}

func (b *builder) allowedExpectation(g *group, r rule) (v1alpha1.Expectation, bool) {
	if g.port == 0 {
		b.note(fmt.Sprintf("rule %s has no port (the metrics do not name it): no expectation is written for it", r.Name))
		return v1alpha1.Expectation{}, false
	}
	x := v1alpha1.Expectation{
		Name: shortenTo(r.Name, 63),
		From: b.source(g),
		To:   v1alpha1.ExpectationTarget{PodLabels: g.dest.Labels, Port: g.port},
		Want: v1alpha1.ExpectAllowed,
	}
	if r.To != nil {
		if len(r.To.Methods) > 0 {
			x.To.Method = r.example.Method
		}
		if len(r.To.Paths) > 0 {
			x.To.Path = r.example.Path
		}
	}
	return x, true
}

// source is the expectation's sender for a group: the client's service account, with its pod
// labels when its workload is known (NetworkPolicies select senders by label), or, for a
// plaintext client, an address standing for any.
func (b *builder) source(g *group) v1alpha1.ExpectationSource {
	if !g.meshed {
		return v1alpha1.ExpectationSource{IPBlock: unobservedAddress}
	}
	s := v1alpha1.ExpectationSource{ServiceAccount: v1alpha1.ServiceAccountRef(g.srcNS + "/" + g.srcSA)}
	if w, ok := b.wl[g.srcNS+"/"+g.srcWL]; ok && g.srcWL != "" {
		s.PodLabels = w.Labels
	}
	return s
}

// ingress proposes one NetworkPolicy ingress rule per client and receiving workload, on the
// observed ports. A client whose workload labels are known is selected by them in its namespace;
// otherwise its whole namespace is; a plaintext client by any address.
func (b *builder) ingress(groups map[string]*group, keys []string) []v1alpha1.IngressRule {
	type acc struct {
		rule  v1alpha1.IngressRule
		ports map[int32]bool
		all   bool
	}
	byName := map[string]*acc{}
	for _, k := range keys {
		g := groups[k]
		if !g.meshed && g.port == 0 {
			continue
		}
		var peer v1alpha1.NetworkPeer
		name := "from-"
		switch {
		case !g.meshed:
			peer = v1alpha1.NetworkPeer{IPBlock: &v1alpha1.IPBlock{CIDR: "0.0.0.0/0"}}
			name += "any"
		default:
			peer = v1alpha1.NetworkPeer{Namespaces: []string{g.srcNS}}
			name += g.srcNS
			if w, ok := b.wl[g.srcNS+"/"+g.srcWL]; ok && g.srcWL != "" {
				peer.PodSelector = &v1alpha1.LabelSelector{MatchLabels: w.Labels}
				name += "-" + g.srcWL
			}
		}
		name += "-to-" + g.dest.Name
		a, ok := byName[name]
		if !ok {
			a = &acc{rule: v1alpha1.IngressRule{
				Name:     name,
				Selector: &v1alpha1.LabelSelector{MatchLabels: g.dest.Labels},
				From:     []v1alpha1.NetworkPeer{peer},
			}, ports: map[int32]bool{}}
			byName[name] = a
		}
		if g.port == 0 {
			a.all = true
		}
		a.ports[b.networkPolicyPort(g.meshed, g.port)] = true
	}
	var out []v1alpha1.IngressRule
	names := map[string]bool{}
	for _, n := range slices.Sorted(maps.Keys(byName)) {
		a := byName[n]
		if !a.all {
			for _, p := range slices.Sorted(maps.Keys(a.ports)) {
				a.rule.Ports = append(a.rule.Ports, v1alpha1.NetworkPort{Port: p, Protocol: "TCP"})
			}
		}
		a.rule.Name = uniqueName(shorten(a.rule.Name), names)
		out = append(out, a.rule)
	}
	return out
}

// egress proposes one NetworkPolicy egress rule per sending workload of the namespace and
// receiving workload elsewhere (or here), from every observed flow whose client is in the
// namespace, whatever namespace received it. A sender whose workload the metrics do not name
// (Linkerd) is every pod of the namespace.
func (b *builder) egress(all []Flow) []v1alpha1.EgressRule {
	type acc struct {
		rule  v1alpha1.EgressRule
		ports map[int32]bool
		all   bool
	}
	byName := map[string]*acc{}
	for _, f := range all {
		if f.SourceNamespace != b.ns || !f.Meshed() {
			continue
		}
		name := "to-" + f.DestNamespace + "-" + f.DestWorkload
		var sel *v1alpha1.LabelSelector
		if w, ok := b.wl[b.ns+"/"+f.SourceWorkload]; ok && f.SourceWorkload != "" {
			sel = &v1alpha1.LabelSelector{MatchLabels: w.Labels}
			name = f.SourceWorkload + "-" + name
		}
		peer := v1alpha1.NetworkPeer{Namespaces: []string{f.DestNamespace}}
		if w, ok := b.wl[f.DestNamespace+"/"+f.DestWorkload]; ok {
			peer.PodSelector = &v1alpha1.LabelSelector{MatchLabels: w.Labels}
		}
		a, ok := byName[name]
		if !ok {
			a = &acc{rule: v1alpha1.EgressRule{Name: name, Selector: sel, To: []v1alpha1.NetworkPeer{peer}}, ports: map[int32]bool{}}
			byName[name] = a
		}
		if f.Port == 0 {
			a.all = true
		}
		a.ports[b.networkPolicyPort(true, f.Port)] = true
	}
	var out []v1alpha1.EgressRule
	names := map[string]bool{}
	for _, n := range slices.Sorted(maps.Keys(byName)) {
		a := byName[n]
		if !a.all {
			for _, p := range slices.Sorted(maps.Keys(a.ports)) {
				a.rule.Ports = append(a.rule.Ports, v1alpha1.NetworkPort{Port: p, Protocol: "TCP"})
			}
		}
		a.rule.Name = uniqueName(shorten(a.rule.Name), names)
		out = append(out, a.rule)
	}
	return out
}

// candidatePorts are ports tried, in order, for the "an observed client on a port not observed"
// expectation.
var candidatePorts = []int32{22, 3306, 5432, 6379, 9999, 65000}

// deniedExpectations are a few flows that were not observed and must stay denied: an unknown
// client of the namespace to the first receiving workload, an observed client to a port it did
// not use, a method it did not use, and every flow the mesh already refused.
func (b *builder) deniedExpectations(groups map[string]*group, keys []string, obs *Observation) []v1alpha1.Expectation {
	var out []v1alpha1.Expectation
	var first *group
	for _, k := range keys {
		if g := groups[k]; g.meshed && g.port != 0 {
			first = g
			break
		}
	}
	if first == nil {
		return nil
	}
	// A service account never seen as a client of the workload, with labels no selector uses.
	sa := "default"
	for _, k := range keys {
		if g := groups[k]; g.dest.Name == first.dest.Name && g.srcNS == b.ns && g.srcSA == sa {
			sa = "unobserved-client"
		}
	}
	out = append(out, v1alpha1.Expectation{
		Name: shortenTo("unobserved-client-to-"+first.dest.Name, 63),
		From: v1alpha1.ExpectationSource{ServiceAccount: v1alpha1.ServiceAccountRef(b.ns + "/" + sa), PodLabels: map[string]string{"meshguard.dev/unobserved": "true"}},
		To:   v1alpha1.ExpectationTarget{PodLabels: first.dest.Labels, Port: first.port},
		Want: v1alpha1.ExpectDenied,
	})
	used := map[int32]bool{}
	for _, k := range keys {
		if g := groups[k]; g.dest.Name == first.dest.Name {
			used[g.port] = true
		}
	}
	// On Linkerd the NetworkPolicies admit a meshed client on the proxy's inbound port, whatever
	// port it asks for (networkPolicyPort): only authorization keeps it to the observed ports, so
	// in shadow nothing does.
	portsByAuthorizationOnly := b.networkPolicyPort(first.meshed, first.port) != first.port
	for _, p := range candidatePorts {
		if b.opts.Shadow && portsByAuthorizationOnly {
			break
		}
		if !used[p] {
			out = append(out, v1alpha1.Expectation{
				Name: shortenTo(fmt.Sprintf("%s-to-%s-%d-unobserved", first.srcSA, first.dest.Name, p), 63),
				From: b.source(first),
				To:   v1alpha1.ExpectationTarget{PodLabels: first.dest.Labels, Port: p},
				Want: v1alpha1.ExpectDenied,
			})
			break
		}
	}
	if b.opts.Shadow {
		// Authorization in shadow denies nothing: a flow only it would deny gets through, and
		// an expectation that it is Denied would fail (and keep the profile from Ready).
		b.note("authorization is in Shadow: expectations that only authorization would deny (an unobserved method, requests the mesh refused, on Linkerd an unobserved port) are left out; run suggest without --shadow for them before enforcing")
		return out
	}
	for _, k := range keys {
		g := groups[k]
		if !g.meshed || g.port == 0 {
			continue
		}
		methods := map[string]bool{}
		var ex Flow
		for _, f := range g.flows {
			if f.HTTP && f.Method != "" {
				methods[f.Method] = true
				ex = f
			}
		}
		if len(methods) == 0 || methods["DELETE"] {
			continue
		}
		out = append(out, v1alpha1.Expectation{
			Name: shortenTo(fmt.Sprintf("%s-delete-%s-unobserved", g.srcSA, g.dest.Name), 63),
			From: b.source(g),
			To:   v1alpha1.ExpectationTarget{PodLabels: g.dest.Labels, Port: g.port, Method: "DELETE", Path: ex.Path},
			Want: v1alpha1.ExpectDenied,
		})
		break
	}
	for _, f := range obs.Refused {
		if f.DestNamespace != b.ns || !f.Meshed() || f.Port == 0 {
			continue
		}
		w, ok := b.wl[f.DestNamespace+"/"+f.DestWorkload]
		if !ok {
			continue
		}
		g := &group{srcNS: f.SourceNamespace, srcSA: f.SourceServiceAccount, srcWL: f.SourceWorkload, meshed: true}
		out = append(out, v1alpha1.Expectation{
			Name: shortenTo(fmt.Sprintf("%s-%s-refused-to-%s", f.SourceServiceAccount, f.SourceNamespace, f.DestWorkload), 63),
			From: b.source(g),
			To:   v1alpha1.ExpectationTarget{PodLabels: w.Labels, Port: f.Port, Method: f.Method, Path: f.Path},
			Want: v1alpha1.ExpectDenied,
		})
		b.note(fmt.Sprintf("%s/%s was refused (403) by %s on port %d: not allowed, and expected Denied", f.SourceNamespace, f.SourceServiceAccount, f.DestWorkload, f.Port))
	}
	return out
}

// shorten keeps a rule name within maxRuleName: longer names are cut and end with 6 hex digits
// of their SHA-256, so that they stay distinct and deterministic.
func shorten(s string) string { return shortenTo(s, maxRuleName) }

func shortenTo(s string, n int) string {
	s = strings.Trim(strings.ToLower(s), "-")
	if len(s) <= n {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return strings.TrimRight(s[:n-7], "-.") + "-" + hex.EncodeToString(sum[:])[:6]
}

// uniqueName returns s, or s with a number when it is taken, and records it.
func uniqueName(s string, taken map[string]bool) string {
	n := s
	for i := 2; taken[n]; i++ {
		n = shorten(s + "-" + strconv.Itoa(i))
	}
	taken[n] = true
	return n
}

func joinPorts(ps []v1alpha1.PortMTLS) string {
	var s []string
	for _, p := range ps {
		s = append(s, strconv.Itoa(int(p.Port)))
	}
	sort.Strings(s)
	return strings.Join(s, ", ")
}
