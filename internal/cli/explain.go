package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/meshguard/meshguard/internal/explain"
	"github.com/meshguard/meshguard/internal/render"
	"github.com/meshguard/meshguard/internal/validation"
)

// Exit codes of Explain.
const (
	// ExplainAllowed: every layer lets the request through.
	ExplainAllowed = 0
	// ExplainError: the command line, an input or the cluster could not be read.
	ExplainError = 1
	// ExplainDenied: a layer stops the request.
	ExplainDenied = 3
	// ExplainUnknown: no layer denies, but one depends on something not modelled or not given
	// (the output says what); CI should not read it as allowed.
	ExplainUnknown = 4
)

const explainUsage = `Usage:
  manager explain -f profile.yaml [-f other-policies.yaml...] --from NS/SA --to-labels app=api --port 8080 [flags]
  manager explain --kubeconfig ~/.kube/config --from NS/SA --to-namespace shop --to-labels app=api --port 8080 [flags]
  manager explain --expectations -f profile.yaml [-f other-policies.yaml...] [--kubeconfig ~/.kube/config] [flags]

Say whether a request gets through, layer by layer — egress NetworkPolicy of the source,
ingress NetworkPolicy of the destination, mTLS, request authentication (JWT), authorization —
and which object and rule decides each layer.

Offline (-f): MeshSecurityProfiles are validated and rendered as "manager render" does, and
evaluated together with every other object of the inputs (NetworkPolicies, Istio and Linkerd
policies, Namespaces for their labels and annotations). Live (--kubeconfig): the cluster's
policies of the source and destination namespaces and of Istio's root namespace are read
(list only; nothing is written).

Exit code: 0 allowed, 3 denied, 4 undetermined (a layer depends on something not modelled or
not given, named in the output), 1 error.

With --expectations, every spec.expectations entry of the profiles among the -f inputs is
checked against the profile's render and the other inputs (and, with --kubeconfig, the
cluster's policies, the profile's currently applied objects replaced by its render), as the
controller checks them in status.expectations. Exit code: 0 every expectation met, 3 at least
one not met (an undetermined answer is never met), 1 error.

Flags:
`

// requestFlags describe the one request of an explain without --expectations.
var requestFlags = []string{"from", "from-namespace", "from-sa", "from-labels", "from-ip", "from-unmeshed",
	"to-namespace", "to-labels", "to-ip", "port", "port-name", "protocol", "to-unmeshed", "opaque-tcp", "method", "path", "host", "principal"}

// explainOptions are the parsed flags.
type explainOptions struct {
	files        []string
	expectations bool
	kubeconfig   string
	context      string
	output       string

	from, fromNamespace, fromSA, fromLabels, fromIP string
	fromUnmeshed                                    bool
	toNamespace, toLabels, toIP, portName, protocol string
	port                                            int32
	toUnmeshed, opaqueTCP                           bool
	method, path, host, principal                   string

	// fromLabelsSet and toLabelsSet: the flags were given (an empty value is a pod without labels).
	fromLabelsSet, toLabelsSet bool

	mesh            string
	cniEnforces     string
	render          render.Options
	engine          explain.Options
	linkerdPolicy   string
	clusterNetworks []string
	proxyPort       int
	// nsLabels are the labels of namespaces given with --namespace-labels.
	nsLabels    map[string]map[string]string
	nsLabelArgs []string
}

// ClusterReader lists the policy objects a live explain needs. Tests pass a fake; Explain
// builds one from --kubeconfig.
type ClusterReader interface {
	// Policies returns the policy objects and Namespace objects of the namespaces, and notes
	// (kinds not installed).
	Policies(ctx context.Context, namespaces []string) ([]*unstructured.Unstructured, []string, error)
	// Served returns those of kinds (Kind.group) the cluster serves.
	Served(kinds []string) []string
}

// Explain runs `manager explain` with args (the arguments after "explain") and returns the exit
// code.
func Explain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runExplain(args, stdin, stdout, stderr, newClusterReader)
}

type readerFactory func(kubeconfig, context string) (ClusterReader, error)

func runExplain(args []string, stdin io.Reader, stdout, stderr io.Writer, newReader readerFactory) int {
	o, ok := parseExplainFlags(args, stderr)
	if !ok {
		return ExplainError
	}
	if o == nil {
		return ExplainAllowed // --help
	}
	if o.expectations {
		return runExpectations(o, stdin, stdout, stderr, newReader)
	}
	var objs []*unstructured.Unstructured
	var notes []string
	in := &explainInputs{floorObjects: map[string]string{}}
	if len(o.files) > 0 {
		var err error
		if in, err = readExplainInputs(o, stdin); err != nil {
			fmt.Fprintf(stderr, "explain: %v\n", err)
			return ExplainError
		}
	}
	req, err := o.request(in.namespace)
	if err != nil {
		fmt.Fprintf(stderr, "explain: %v (see manager explain --help)\n", err)
		return ExplainError
	}
	opts := o.engine
	var live []*unstructured.Unstructured
	if o.kubeconfig != "" {
		r, err := newReader(o.kubeconfig, o.context)
		if err != nil {
			fmt.Fprintf(stderr, "explain: %v\n", err)
			return ExplainError
		}
		nss := []string{req.To.Namespace, req.From.Namespace, opts.RootNamespace()}
		l, n, err := r.Policies(context.Background(), nss)
		if err != nil {
			fmt.Fprintf(stderr, "explain: read the cluster's policies: %v\n", err)
			return ExplainError
		}
		if wns := waypointNamespaces(l, req.To.Namespace, nss); len(wns) > 0 {
			// explain_ambient.go: waypoints of other namespaces and the policies bound to them.
			wl, wn, err := r.Policies(context.Background(), wns)
			if err != nil {
				fmt.Fprintf(stderr, "explain: read the cluster's policies: %v\n", err)
				return ExplainError
			}
			l, n = append(l, wl...), append(n, wn...)
		}
		live, notes = l, n
		opts.CNIPolicyKinds = append(opts.CNIPolicyKinds, r.Served(explain.CNIPolicyKinds)...)
	}
	if len(o.files) > 0 {
		// Live, the floors of namespaces without a profile are applied already: only offline
		// are they rendered here.
		var extra, sources []string
		if o.kubeconfig == "" {
			extra, sources = []string{req.To.Namespace}, []string{req.From.Namespace}
		}
		if err := in.complete(o, live, extra, sources); err != nil {
			fmt.Fprintf(stderr, "explain: %v\n", err)
			return ExplainError
		}
		objs, notes = in.objects, append(notes, in.notes...)
	}
	if err := checkMesh(o.engine.Mesh, in.mesh); err != nil {
		fmt.Fprintf(stderr, "explain: %v\n", err)
		return ExplainError
	}
	objs = append(objs, live...)
	if opts.Mesh == explain.MeshAuto {
		opts.Mesh = in.mesh
	}
	if o.kubeconfig == "" {
		warnEmptyNamespaces(stderr, objs, req)
	}
	res, err := explain.Evaluate(objs, req, opts)
	if err != nil {
		fmt.Fprintf(stderr, "explain: %v\n", err)
		return ExplainError
	}
	if o.output == "json" {
		out := struct {
			Request explain.Request `json:"request"`
			*explain.Result
			Notes []string `json:"notes,omitempty"`
		}{req, res, notes}
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Fprintln(stdout, string(b))
	} else {
		printTable(stdout, req, res, notes)
	}
	switch res.Decision {
	case explain.Allowed:
		return ExplainAllowed
	case explain.Denied:
		return ExplainDenied
	}
	return ExplainUnknown
}

func parseExplainFlags(args []string, stderr io.Writer) (*explainOptions, bool) {
	o := &explainOptions{}
	var port int
	fs := pflag.NewFlagSet("explain", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, explainUsage)
		fs.PrintDefaults()
	}
	fs.StringArrayVarP(&o.files, "filename", "f", nil, "a manifest: profiles and other policy objects; file, directory or - for stdin (repeatable)")
	fs.BoolVar(&o.expectations, "expectations", false, "check the spec.expectations of every profile among the -f inputs instead of one request (exit 0 all met, 3 one not met)")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "read the policies of a live cluster with this kubeconfig (read-only)")
	fs.StringVar(&o.context, "context", "", "kubeconfig context (default: the current one)")
	fs.StringVarP(&o.output, "output", "o", "table", "output format: table or json")
	fs.StringVar(&o.from, "from", "", "the source as NAMESPACE/SERVICEACCOUNT (short for --from-namespace and --from-sa)")
	fs.StringVar(&o.fromNamespace, "from-namespace", "", "namespace of the source pod")
	fs.StringVar(&o.fromSA, "from-sa", "", "service account of the source pod (its mesh identity)")
	fs.StringVar(&o.fromLabels, "from-labels", "", "labels of the source pod, k=v,k=v; when not given they are unknown and NetworkPolicy selectors on them make the answer undetermined (--from-labels '' for a pod without labels)")
	fs.StringVar(&o.fromIP, "from-ip", "", "IP of the source: an address outside the cluster's pods, or the source pod's IP")
	fs.BoolVar(&o.fromUnmeshed, "from-unmeshed", false, "the source has no mesh proxy (plaintext, no identity); implied for --from-ip without a namespace")
	fs.StringVar(&o.toNamespace, "to-namespace", "", "namespace of the destination pod (default: the profile's)")
	fs.StringVar(&o.toLabels, "to-labels", "", "labels of the destination pod, k=v,k=v (required for a pod; --to-labels '' for a pod without labels)")
	fs.StringVar(&o.toIP, "to-ip", "", "IP of the destination pod, or with no --to-namespace an address outside the cluster")
	fs.IntVar(&port, "port", 0, "destination (container) port (required)")
	fs.StringVar(&o.portName, "port-name", "", "name of the destination container port (named ports in NetworkPolicies and Linkerd Servers)")
	fs.StringVar(&o.protocol, "protocol", "TCP", "TCP, UDP or SCTP")
	fs.BoolVar(&o.toUnmeshed, "to-unmeshed", false, "the destination has no mesh proxy (no mesh layer applies)")
	fs.BoolVar(&o.opaqueTCP, "opaque-tcp", false, "the destination port does not speak HTTP (Istio: a Service port named tcp-* or appProtocol tcp): without --method/--path the request is raw TCP; otherwise rules with HTTP conditions make a TCP question undetermined")
	fs.StringVar(&o.method, "method", "", "HTTP method; with --path or --principal the request is HTTP, otherwise plain TCP")
	fs.StringVar(&o.path, "path", "", "HTTP path")
	fs.StringVar(&o.host, "host", "", "HTTP Host header")
	fs.StringVar(&o.principal, "principal", "", "the request carries a valid JWT with this principal, ISSUER/SUBJECT (Istio's request principal)")
	fs.StringVar(&o.mesh, "mesh", "", "Istio, Linkerd or None (default: the profile's mesh, else detected from the objects)")
	fs.StringSliceVar(&o.engine.CNIPolicyKinds, "cni-policy-kinds", nil, "CNI-specific policy kinds the cluster serves, Kind.group (for example CiliumNetworkPolicy.cilium.io); with any, a NetworkPolicy layer that denies is undetermined (live: read from the cluster)")
	fs.StringVar(&o.cniEnforces, "cni-enforces-networkpolicy", "", "true or false when known: whether the cluster's CNI enforces NetworkPolicy")
	o.engine.Bind(fs)
	fs.StringVar(&o.linkerdPolicy, "linkerd-default-policy", "all-unauthenticated", "Linkerd's cluster-wide default inbound policy (proxy.defaultInboundPolicy)")
	fs.StringArrayVar(&o.nsLabelArgs, "namespace-labels", nil, "NAME:key=value,key=value: the labels of a namespace (cluster profiles and namespaceSelectors select on them), as Namespace documents give them (repeatable)")
	fs.StringSliceVar(&o.clusterNetworks, "linkerd-cluster-networks", explain.DefaultLinkerdClusterNetworks, "Linkerd's clusterNetworks (linkerd-config), used by the cluster-* default policies; comma-separated CIDRs")
	fs.IntVar(&o.proxyPort, "linkerd-proxy-inbound-port", explain.DefaultLinkerdProxyInboundPort, "Linkerd's proxy inbound port (proxy.ports.inbound): meshed-to-meshed traffic meets NetworkPolicies on it")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil, true
		}
		fmt.Fprintf(stderr, "explain: %v (see manager explain --help)\n", err)
		return nil, false
	}
	fail := func(format string, a ...any) (*explainOptions, bool) {
		fmt.Fprintf(stderr, "explain: "+format+" (see manager explain --help)\n", a...)
		return nil, false
	}
	if fs.NArg() > 0 {
		return fail("unexpected argument %q", fs.Arg(0))
	}
	if len(o.files) == 0 && o.kubeconfig == "" {
		return fail("give manifests with -f, or a cluster with --kubeconfig")
	}
	if o.expectations {
		// The requests are the profiles' expectations: flags describing one request do not apply.
		for _, f := range requestFlags {
			if fs.Changed(f) {
				return fail("--%s describes one request; with --expectations the requests are the profiles' spec.expectations", f)
			}
		}
		if len(o.files) == 0 {
			return fail("--expectations needs the profiles with -f")
		}
		port = 1
	}
	if port < 1 || port > 65535 {
		return fail("--port %d: a port between 1 and 65535 is required", port)
	}
	o.port = int32(port)
	o.fromLabelsSet, o.toLabelsSet = fs.Changed("from-labels"), fs.Changed("to-labels")
	switch o.output {
	case "table", "json":
	default:
		return fail("-o %q: table or json", o.output)
	}
	switch strings.ToLower(o.mesh) {
	case "":
	case "istio":
		o.engine.Mesh = explain.MeshIstio
	case "linkerd":
		o.engine.Mesh = explain.MeshLinkerd
	case "none":
		o.engine.Mesh = explain.MeshNone
	default:
		return fail("--mesh %q: Istio, Linkerd or None", o.mesh)
	}
	switch o.cniEnforces {
	case "":
	case "true", "false":
		b := o.cniEnforces == "true"
		o.engine.NetworkPolicyEnforced = &b
	default:
		return fail("--cni-enforces-networkpolicy %q: true or false", o.cniEnforces)
	}
	if o.from != "" {
		ns, sa, ok := strings.Cut(o.from, "/")
		if !ok || ns == "" || sa == "" || o.fromNamespace != "" || o.fromSA != "" {
			return fail("--from %q: write NAMESPACE/SERVICEACCOUNT, and not together with --from-namespace or --from-sa", o.from)
		}
		o.fromNamespace, o.fromSA = ns, sa
	}
	o.engine.LinkerdDefaultPolicy = o.linkerdPolicy
	nsl, err := parseNamespaceLabels(o.nsLabelArgs)
	if err != nil {
		return fail("--namespace-labels %v", err)
	}
	o.nsLabels = nsl
	for _, c := range o.clusterNetworks {
		if _, err := netip.ParsePrefix(strings.TrimSpace(c)); err != nil {
			return fail("--linkerd-cluster-networks %q: not a CIDR", c)
		}
	}
	o.engine.ClusterNetworks = o.clusterNetworks
	if o.proxyPort < 1 || o.proxyPort > 65535 {
		return fail("--linkerd-proxy-inbound-port %d: a port between 1 and 65535", o.proxyPort)
	}
	o.engine.LinkerdProxyInboundPort = int32(o.proxyPort)
	if err := o.engine.Validate(); err != nil {
		return fail("%v", err)
	}
	// One set of cluster facts: what the profiles render to and how the requests are judged.
	o.render = render.Options{Facts: o.engine.Facts}
	return o, true
}

// request builds the request; the destination namespace defaults to the profile's.
func (o *explainOptions) request(profileNS string) (explain.Request, error) {
	fromLabels, err := parseLabels(o.fromLabels, "--from-labels")
	if err != nil {
		return explain.Request{}, err
	}
	toLabels, err := parseLabels(o.toLabels, "--to-labels")
	if err != nil {
		return explain.Request{}, err
	}
	toNS := o.toNamespace
	if toNS == "" && o.toIP == "" {
		toNS = profileNS
	}
	if toNS == "" && o.toIP == "" {
		return explain.Request{}, errors.New("--to-namespace is required (no profile among the inputs gives one)")
	}
	if toNS != "" && !o.toLabelsSet {
		return explain.Request{}, errors.New("--to-labels is required for a destination pod (--to-labels '' for a pod without labels): Istio, Linkerd and NetworkPolicy selectors look at them")
	}
	req := explain.Request{
		From: explain.Source{Namespace: o.fromNamespace, ServiceAccount: o.fromSA, PodLabels: fromLabels, IP: o.fromIP,
			LabelsUnknown: o.fromNamespace != "" && !o.fromLabelsSet, Unmeshed: o.fromUnmeshed || o.fromNamespace == ""},
		To: explain.Destination{Namespace: toNS, PodLabels: toLabels, IP: o.toIP, Port: o.port, PortName: o.portName,
			Protocol: strings.ToUpper(o.protocol), Unmeshed: o.toUnmeshed, OpaqueTCP: o.opaqueTCP},
	}
	if o.method != "" || o.path != "" || o.principal != "" || o.host != "" {
		req.HTTP = &explain.HTTP{Method: strings.ToUpper(o.method), Path: o.path, Host: o.host, Principal: o.principal}
	}
	return req, nil
}

func parseLabels(s, flag string) (map[string]string, error) {
	m := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return m, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%s: %q is not key=value", flag, kv)
		}
		m[k] = v
	}
	return m, nil
}

// clusterScoped are the cluster-scoped kinds among explain's inputs: they keep no namespace.
var clusterScoped = map[schema.GroupKind]bool{
	{Group: "", Kind: "Namespace"}:                                          true,
	{Group: "policy.networking.k8s.io", Kind: "AdminNetworkPolicy"}:         true,
	{Group: "policy.networking.k8s.io", Kind: "BaselineAdminNetworkPolicy"}: true,
	{Group: "policy.networking.k8s.io", Kind: "ClusterNetworkPolicy"}:       true,
	{Group: "cilium.io", Kind: "CiliumClusterwideNetworkPolicy"}:            true,
	{Group: "crd.projectcalico.org", Kind: "GlobalNetworkPolicy"}:           true,
	{Group: "projectcalico.org", Kind: "GlobalNetworkPolicy"}:               true,
	{Group: "crd.antrea.io", Kind: "ClusterNetworkPolicy"}:                  true,
}

type document struct {
	where string
	data  []byte
}

// readPath reads a file, a directory's *.yaml/*.yml/*.json files, or - (stdin) into documents.
func readPath(path string, stdin io.Reader, stdinRead *bool) ([]document, error) {
	split := func(src string, b []byte) ([]document, error) {
		docs, err := validation.SplitDocuments(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", src, err)
		}
		out := make([]document, len(docs))
		for i, d := range docs {
			out[i] = document{where: fmt.Sprintf("%s: document %d", src, i+1), data: d}
		}
		return out, nil
	}
	if path == "-" {
		if *stdinRead || stdin == nil {
			return nil, errors.New("-f - can be given once, with standard input")
		}
		*stdinRead = true
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", stdinName, err)
		}
		return split(stdinName, b)
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, unwrapPathError(err))
	}
	if !info.IsDir() {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, unwrapPathError(err))
		}
		return split(path, b)
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, unwrapPathError(err))
	}
	var out []document
	for _, e := range entries {
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".yaml", ".yml", ".json":
			if e.IsDir() || isKustomization(e.Name()) {
				continue
			}
			docs, err := readPath(filepath.Join(path, e.Name()), stdin, stdinRead)
			if err != nil {
				return nil, err
			}
			out = append(out, docs...)
		}
	}
	return out, nil
}

// printTable writes the request, one row per layer, the result and the notes.
func printTable(w io.Writer, req explain.Request, res *explain.Result, notes []string) {
	fmt.Fprintf(w, "Request: %s -> %s", describeSource(req.From), describeDestination(req.To))
	if req.HTTP != nil {
		fmt.Fprintf(w, " %s %s", req.HTTP.Method, req.HTTP.Path)
		if req.HTTP.Principal != "" {
			fmt.Fprintf(w, " (JWT principal %s)", req.HTTP.Principal)
		} else {
			fmt.Fprint(w, " (no JWT)")
		}
	}
	fmt.Fprintf(w, "\nMesh: %s\n\n", meshName(res.Mesh))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LAYER\tDECISION\tDECIDED BY\tWHY")
	var allNotes []string
	for _, l := range res.Layers {
		refs := make([]string, 0, len(l.Deciding))
		for _, r := range l.Deciding {
			refs = append(refs, r.String())
		}
		by := strings.Join(refs, ", ")
		if by == "" {
			by = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", l.Layer, l.Decision, by, l.Reason)
		for _, n := range l.Notes {
			allNotes = append(allNotes, l.Layer+": "+n)
		}
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	switch res.Decision {
	case explain.Denied:
		d := res.Denier()
		fmt.Fprintf(w, "Result: Denied by the %s layer\n", d.Layer)
	case explain.Unknown:
		fmt.Fprintln(w, "Result: Undetermined (no layer denies; see the Unknown layer for what is missing)")
	default:
		fmt.Fprintln(w, "Result: Allowed")
	}
	for _, n := range append(notes, allNotes...) {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

func describeSource(s explain.Source) string {
	var parts []string
	if s.Namespace != "" {
		id := "namespace " + s.Namespace
		if s.ServiceAccount != "" {
			id = s.Namespace + "/" + s.ServiceAccount
		}
		parts = append(parts, id)
		if len(s.PodLabels) > 0 {
			parts = append(parts, "pod "+formatLabels(s.PodLabels))
		}
	}
	if s.IP != "" {
		parts = append(parts, s.IP)
	}
	if s.Unmeshed {
		parts = append(parts, "(no mesh proxy)")
	}
	return strings.Join(parts, " ")
}

func describeDestination(d explain.Destination) string {
	var parts []string
	if d.Namespace != "" {
		parts = append(parts, "namespace "+d.Namespace)
		if len(d.PodLabels) > 0 {
			parts = append(parts, "pod "+formatLabels(d.PodLabels))
		}
	}
	if d.IP != "" {
		parts = append(parts, d.IP)
	}
	port := fmt.Sprintf("port %d/%s", d.Port, d.Protocol)
	if d.PortName != "" {
		port += " (" + d.PortName + ")"
	}
	parts = append(parts, port)
	if d.Unmeshed {
		parts = append(parts, "(no mesh proxy)")
	}
	return strings.Join(parts, " ")
}

func formatLabels(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + m[k]
	}
	return strings.Join(keys, ",")
}

func meshName(m explain.Mesh) string {
	if m == explain.MeshAuto || m == explain.MeshNone {
		return "none (NetworkPolicy layers only)"
	}
	return string(m)
}
