package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/render"
	"github.com/meshguard/meshguard/internal/suggest"
)

const suggestUsage = `Usage:
  manager suggest --mesh Istio -f metrics.prom --workloads deployments.yaml [flags]
  manager suggest --mesh Linkerd --prometheus-url http://prometheus:9090 --window 24h --kubeconfig ~/.kube/config [flags]

Propose one MeshSecurityProfile per namespace from the traffic the mesh observed: rules that
allow exactly the observed flows (client service account, receiving workload, port and, where
the metrics carry them, HTTP methods and path prefixes), default deny, mTLS Strict with a named
Permissive override where plaintext clients were seen, DNS and the mesh control plane, and the
observed flows as expectations (want: Allowed) with a few unobserved ones (want: Denied). Review
the output, check it with "manager explain --expectations -f FILE", commit it with --shadow
first (docs/adoption.md).

Metrics: Istio's istio_requests_total and istio_tcp_connections_opened_total (reporter
destination), or Linkerd's request_total and tcp_open_total (direction inbound), from a file in
the Prometheus text format (-f) or a Prometheus server's HTTP API (--prometheus-url: the
increase over --window). Workloads: their Deployments, StatefulSets, DaemonSets or Pods as YAML
(--workloads), or read from the cluster (--kubeconfig); their selectors become the rules'.

Notes on what the metrics could not tell are printed as comments and on stderr.
Exit code: 0 profiles printed, 1 error, 2 wrong command line.

Flags:
`

// suggestOptions are the parsed flags of `manager suggest`.
type suggestOptions struct {
	mesh       string
	files      []string
	promURL    string
	window     time.Duration
	end        string
	workloads  []string
	kubeconfig string
	context    string
	namespaces []string
	name       string
	shadow     bool
	report     bool
	render     render.Options
	timeout    time.Duration
}

// Suggest runs `manager suggest` with args (the arguments after "suggest") and returns the exit
// code.
func Suggest(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, code := parseSuggestFlags(args, stderr)
	if o == nil {
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	if o.report {
		return o.shadowReport(ctx, stdin, stdout, stderr)
	}
	samples, err := o.samples(ctx, stdin)
	if err != nil {
		fmt.Fprintf(stderr, "suggest: %v\n", err)
		return ExitInvalid
	}
	mesh := v1alpha1.Mesh(o.mesh)
	obs, err := suggest.Observe(mesh, samples)
	if err != nil {
		fmt.Fprintf(stderr, "suggest: %v\n", err)
		return ExitInvalid
	}
	if len(obs.Flows) == 0 {
		fmt.Fprintf(stderr, "suggest: no %s traffic in the metrics (series of other meshes, or all zero?)\n", mesh)
		return ExitInvalid
	}
	wls, err := o.readWorkloads(ctx, obs)
	if err != nil {
		fmt.Fprintf(stderr, "suggest: %v\n", err)
		return ExitInvalid
	}
	r := render.DefaultOptions()
	root := o.render.IstioRootNamespace
	if root == "" {
		root = o.render.IstioNamespace
	}
	props, err := suggest.Suggest(obs, wls, suggest.Options{
		Mesh: mesh, ProfileName: o.name, Namespaces: o.namespaces, Shadow: o.shadow,
		Skip: []string{o.render.IstioNamespace, root, o.render.LinkerdNamespace, r.DNSNamespace, "kube-public", "kube-node-lease"},
	})
	if err != nil {
		fmt.Fprintf(stderr, "suggest: %v\n", err)
		return ExitInvalid
	}
	if len(props) == 0 {
		fmt.Fprintln(stderr, "suggest: no namespace to propose a profile for (every receiving namespace was skipped or filtered)")
		return ExitInvalid
	}
	out, err := suggest.Marshal(props)
	if err != nil {
		fmt.Fprintf(stderr, "suggest: %v\n", err)
		return ExitInvalid
	}
	for _, n := range obs.Notes {
		fmt.Fprintf(stderr, "suggest: note: %s\n", n)
	}
	for _, p := range props {
		for _, n := range p.Notes {
			fmt.Fprintf(stderr, "suggest: %s: note: %s\n", p.Profile.Namespace, n)
		}
	}
	if len(obs.Notes) > 0 {
		var hdr bytes.Buffer
		for _, n := range obs.Notes {
			fmt.Fprintf(&hdr, "# note: %s\n", n)
		}
		out = append(hdr.Bytes(), out...)
	}
	_, _ = stdout.Write(out)
	return ExitOK
}

func parseSuggestFlags(args []string, stderr io.Writer) (*suggestOptions, int) {
	o := &suggestOptions{render: render.DefaultOptions()}
	fs := pflag.NewFlagSet("suggest", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, suggestUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.mesh, "mesh", string(v1alpha1.MeshIstio), "Istio or Linkerd: whose metrics to read and whose profiles to propose")
	fs.StringArrayVarP(&o.files, "filename", "f", nil, "metrics in the Prometheus text exposition format: a file or - for stdin (repeatable)")
	fs.StringVar(&o.promURL, "prometheus-url", "", "read the metrics from this Prometheus server's HTTP API instead of -f")
	fs.DurationVar(&o.window, "window", 24*time.Hour, "with --prometheus-url: the traffic of this long a window, ending at --end")
	fs.StringVar(&o.end, "end", "", "with --prometheus-url: end of the window, RFC 3339 (default: now)")
	fs.StringArrayVar(&o.workloads, "workloads", nil, "Deployments, StatefulSets, DaemonSets or Pods as YAML: a file or - for stdin (repeatable)")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "read the workloads from the cluster with this kubeconfig (read-only) instead of --workloads")
	fs.StringVar(&o.context, "context", "", "kubeconfig context (default: the current one)")
	fs.StringArrayVarP(&o.namespaces, "namespace", "n", nil, "propose profiles only for this namespace (repeatable; default: every namespace that received traffic)")
	fs.StringVar(&o.name, "name", "suggested", "name of the proposed profiles")
	fs.BoolVar(&o.report, "shadow-report", false, "instead of proposing profiles, count per workload the requests that rules in shadow would have denied (Istio dry-run results, Linkerd audit), from the same metrics sources; no workloads needed")
	fs.BoolVar(&o.shadow, "shadow", false, "propose authorization.enforcement: Shadow: the mesh reports what the profile would deny and denies nothing (docs/adoption.md)")
	fs.StringVar(&o.render.IstioNamespace, "istio-namespace", o.render.IstioNamespace, "namespace where istiod runs (no profile is proposed for it)")
	fs.StringVar(&o.render.IstioRootNamespace, "istio-root-namespace", "", "Istio's meshConfig.rootNamespace (default: --istio-namespace; no profile is proposed for it)")
	fs.StringVar(&o.render.LinkerdNamespace, "linkerd-namespace", o.render.LinkerdNamespace, "namespace of the Linkerd control plane (no profile is proposed for it)")
	fs.DurationVar(&o.timeout, "timeout", time.Minute, "longest time for the Prometheus queries and the cluster reads")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil, ExitOK
		}
		fmt.Fprintf(stderr, "suggest: %v (see manager suggest --help)\n", err)
		return nil, ExitUsage
	}
	fail := func(format string, a ...any) (*suggestOptions, int) {
		fmt.Fprintf(stderr, "suggest: "+format+" (see manager suggest --help)\n", a...)
		return nil, ExitUsage
	}
	switch {
	case fs.NArg() > 0:
		return fail("unexpected argument %q", fs.Arg(0))
	case o.mesh != string(v1alpha1.MeshIstio) && o.mesh != string(v1alpha1.MeshLinkerd):
		return fail("--mesh %q: must be Istio or Linkerd", o.mesh)
	case (len(o.files) == 0) == (o.promURL == ""):
		return fail("give the metrics with exactly one of -f or --prometheus-url")
	case !o.report && (len(o.workloads) == 0) == (o.kubeconfig == ""):
		return fail("give the workloads with exactly one of --workloads or --kubeconfig")
	case o.window <= 0:
		return fail("--window must be positive")
	}
	if o.end != "" {
		if _, err := time.Parse(time.RFC3339, o.end); err != nil {
			return fail("--end %q: %v", o.end, err)
		}
	}
	return o, ExitOK
}

// samples reads the metrics from the files or the Prometheus server.
func (o *suggestOptions) samples(ctx context.Context, stdin io.Reader) ([]suggest.Sample, error) {
	if o.promURL != "" {
		end := time.Now()
		if o.end != "" {
			end, _ = time.Parse(time.RFC3339, o.end)
		}
		return QueryPrometheus(ctx, o.promURL, v1alpha1.Mesh(o.mesh), o.window, end)
	}
	var out []suggest.Sample
	stdinRead := false
	for _, f := range o.files {
		b, err := readInput(f, stdin, &stdinRead)
		if err != nil {
			return nil, err
		}
		s, err := suggest.ParseExposition(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		out = append(out, s...)
	}
	return out, nil
}

// readInput reads a file, or stdin for "-" (once).
func readInput(path string, stdin io.Reader, stdinRead *bool) ([]byte, error) {
	if path != "-" {
		return os.ReadFile(path)
	}
	if *stdinRead {
		return nil, errors.New("standard input (-) can be given only once")
	}
	*stdinRead = true
	return io.ReadAll(stdin)
}

// metricLabels are the labels the queries keep per mesh: those suggest reads
// (internal/suggest/doc.go cites their definitions).
var metricLabels = map[v1alpha1.Mesh]map[string][]string{
	v1alpha1.MeshIstio: {
		"istio_requests_total": {"reporter", "source_workload", "source_workload_namespace", "source_principal",
			"destination_workload", "destination_workload_namespace", "connection_security_policy", "response_code",
			"destination_port", "request_method", "request_url_path"},
		"istio_tcp_connections_opened_total": {"reporter", "source_workload", "source_workload_namespace", "source_principal",
			"destination_workload", "destination_workload_namespace", "connection_security_policy", "destination_port"},
	},
	v1alpha1.MeshLinkerd: {
		"request_total": {"direction", "namespace", "deployment", "statefulset", "daemonset", "k8s_job", "replicationcontroller",
			"tls", "client_id", "target_port", "target_addr"},
		"tcp_open_total": {"direction", "peer", "namespace", "deployment", "statefulset", "daemonset", "k8s_job", "replicationcontroller",
			"tls", "client_id", "target_port", "target_addr"},
	},
}

// QueryPrometheus asks a Prometheus server (its HTTP API, /api/v1/query) for the increase of the
// mesh's traffic counters over the window ending at end, summed over pods and instances.
func QueryPrometheus(ctx context.Context, url string, mesh v1alpha1.Mesh, window time.Duration, end time.Time) ([]suggest.Sample, error) {
	c, err := api.NewClient(api.Config{Address: url})
	if err != nil {
		return nil, fmt.Errorf("--prometheus-url %s: %w", url, err)
	}
	papi := promv1.NewAPI(c)
	var out []suggest.Sample
	metrics := metricLabels[mesh]
	names := make([]string, 0, len(metrics))
	for n := range metrics {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		q := fmt.Sprintf("sum by (%s) (increase(%s[%s]))", strings.Join(metrics[n], ", "), n, model.Duration(window))
		v, warnings, _, err := papi.Query(ctx, q, end)
		if err != nil {
			return nil, fmt.Errorf("query %s at %s: %w", q, url, err)
		}
		for _, w := range warnings {
			fmt.Fprintf(os.Stderr, "suggest: Prometheus warns: %s\n", w)
		}
		vec, ok := v.(model.Vector)
		if !ok {
			return nil, fmt.Errorf("query %s: Prometheus answered a %s, not a vector", q, v.Type())
		}
		for _, s := range vec {
			l := make(map[string]string, len(s.Metric))
			for k, val := range s.Metric {
				l[string(k)] = string(val)
			}
			out = append(out, suggest.Sample{Metric: n, Labels: l, Value: float64(s.Value)})
		}
	}
	return out, nil
}

// workloadKinds are the kinds read from the cluster for the workloads' labels.
var workloadKinds = []schema.GroupVersionResource{
	{Group: "apps", Version: "v1", Resource: "deployments"},
	{Group: "apps", Version: "v1", Resource: "statefulsets"},
	{Group: "apps", Version: "v1", Resource: "daemonsets"},
}

// readWorkloads reads the workloads from the files, or lists them in the namespaces of the flows.
func (o *suggestOptions) readWorkloads(ctx context.Context, obs *suggest.Observation) ([]suggest.Workload, error) {
	var objs []*unstructured.Unstructured
	if o.kubeconfig == "" {
		stdinRead := false
		for _, f := range o.workloads {
			b, err := readInput(f, os.Stdin, &stdinRead)
			if err != nil {
				return nil, err
			}
			d := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
			for {
				u := &unstructured.Unstructured{}
				if err := d.Decode(&u.Object); err != nil {
					if errors.Is(err, io.EOF) {
						break
					}
					return nil, fmt.Errorf("%s: %w", f, err)
				}
				if u.IsList() {
					l, err := u.ToList()
					if err != nil {
						return nil, fmt.Errorf("%s: %w", f, err)
					}
					for i := range l.Items {
						objs = append(objs, &l.Items[i])
					}
					continue
				}
				if len(u.Object) > 0 {
					objs = append(objs, u)
				}
			}
		}
		return suggest.WorkloadsFromObjects(objs)
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: o.kubeconfig},
		&clientcmd.ConfigOverrides{CurrentContext: o.context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("--kubeconfig %s: %w", o.kubeconfig, err)
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	var nss []string
	for _, f := range obs.Flows {
		nss = append(nss, f.DestNamespace)
		if f.SourceNamespace != "" {
			nss = append(nss, f.SourceNamespace)
		}
	}
	slices.Sort(nss)
	for _, ns := range slices.Compact(nss) {
		for _, gvr := range workloadKinds {
			l, err := dc.Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, fmt.Errorf("list %s in %s: %w", gvr.Resource, ns, err)
			}
			for i := range l.Items {
				objs = append(objs, &l.Items[i])
			}
		}
	}
	return suggest.WorkloadsFromObjects(objs)
}

// shadowReport prints, per workload, how many requests the rules in shadow would have denied.
func (o *suggestOptions) shadowReport(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) int {
	mesh := v1alpha1.Mesh(o.mesh)
	var samples []suggest.Sample
	var err error
	if o.promURL != "" {
		end := time.Now()
		if o.end != "" {
			end, _ = time.Parse(time.RFC3339, o.end)
		}
		samples, err = queryShadow(ctx, o.promURL, mesh, o.window, end)
	} else {
		samples, err = o.samples(ctx, stdin)
	}
	if err != nil {
		fmt.Fprintf(stderr, "suggest: %v\n", err)
		return ExitInvalid
	}
	counts := suggest.ShadowReport(mesh, samples)
	if len(counts) == 0 {
		fmt.Fprintln(stdout, "No request would have been denied by rules in shadow.")
		return ExitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tWORKLOAD\tENGINE\tWOULD DENY")
	for _, c := range counts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.0f\n", c.Namespace, c.Workload, c.Engine, c.Count)
	}
	_ = tw.Flush()
	return ExitOK
}

// queryShadow asks Prometheus for the increase over the window of the series ShadowReport reads.
func queryShadow(ctx context.Context, url string, mesh v1alpha1.Mesh, window time.Duration, end time.Time) ([]suggest.Sample, error) {
	c, err := api.NewClient(api.Config{Address: url})
	if err != nil {
		return nil, fmt.Errorf("--prometheus-url %s: %w", url, err)
	}
	papi := promv1.NewAPI(c)
	var out []suggest.Sample
	for _, q := range suggest.ShadowQueries[mesh] {
		expr := fmt.Sprintf("increase(%s[%s])", q.Selector, model.Duration(window))
		v, _, _, err := papi.Query(ctx, expr, end)
		if err != nil {
			return nil, fmt.Errorf("query %s at %s: %w", expr, url, err)
		}
		vec, ok := v.(model.Vector)
		if !ok {
			return nil, fmt.Errorf("query %s: Prometheus answered a %s, not a vector", expr, v.Type())
		}
		for _, s := range vec {
			l := make(map[string]string, len(s.Metric))
			for k, val := range s.Metric {
				l[string(k)] = string(val)
			}
			out = append(out, suggest.Sample{Metric: q.Metric, Labels: l, Value: float64(s.Value)})
		}
	}
	return out, nil
}
