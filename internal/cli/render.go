package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/merge"
	"github.com/meshguard/meshguard/internal/render"
	"github.com/meshguard/meshguard/internal/validation"
)

// Exit codes of Render.
const (
	// ExitOK: every profile is valid and was rendered.
	ExitOK = 0
	// ExitInvalid: a profile is invalid, or uses fields its mesh cannot express, or an input
	// cannot be read. Nothing is printed on stdout.
	ExitInvalid = 1
	// ExitUsage: the command line is wrong.
	ExitUsage = 2
)

const stdinName = "<stdin>"

const usage = `Usage: manager render -f FILE [-f FILE...] [flags]

Validate MeshSecurityProfile and ClusterMeshSecurityProfile manifests as the API server would
and print the objects meshguard would generate for them, as YAML documents in a stable order
(apiVersion, kind, name).

FILE is a YAML or JSON file with one or more documents separated by ---, a directory (its
*.yaml, *.yml and *.json files), or - for standard input. Namespace documents give the labels
that cluster profiles select on (as --namespace-labels does); documents of other kinds are
skipped. Errors are printed on stderr as <file>: <kind>/<name>: <field>: <message>, and the exit
code is 1. Warnings (where the mesh enforces a profile more strictly than it reads) are printed on
stderr as <file>: <kind>/<name>: warning: <field>: <message>; they do not change the exit code.

With cluster profiles, each namespace they select (among the namespaces of the profiles, of the
Namespace documents and of --namespace-labels) is rendered once, from its profile merged with
the floors (docs/cluster-profiles.md): fields held at a floor are listed in a comment and on
stderr; cluster profiles that cannot be merged are an error.

Flags:
`

// renderFunc is render.Render; tests pass another.
type renderFunc func(*v1alpha1.MeshSecurityProfile, render.Options) (*render.Result, error)

// Render runs `manager render` with args (the arguments after "render") and returns the exit
// code: ExitOK, ExitInvalid or ExitUsage.
func Render(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return run(args, stdin, stdout, stderr, render.Render)
}

type options struct {
	files     []string
	namespace string
	render    render.Options
	// meshguardNamespace is where meshguard runs: floors are not applied there unless they say so.
	meshguardNamespace string
	// quiet leaves out the info lines on stderr (what was read or skipped); errors and warnings stay.
	quiet bool
	// standalone prints the objects without their ownerReference to the profile, to apply them
	// without meshguard (they would otherwise be garbage-collected: the profile does not exist).
	standalone bool
	// nsLabels are the labels of namespaces given with --namespace-labels.
	nsLabels map[string]map[string]string
}

// parseFlags returns the options, or nil and the exit code when the command must stop here.
func parseFlags(args []string, stderr io.Writer) (*options, int) {
	o := &options{render: render.DefaultOptions()}
	fs := pflag.NewFlagSet("render", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	fs.StringArrayVarP(&o.files, "filename", "f", nil, "a profile manifest: file, directory or - for stdin (repeatable)")
	fs.StringVarP(&o.namespace, "namespace", "n", "", `namespace of the profiles whose manifest sets none (default "default"); a manifest that sets another is an error, as with kubectl`)
	o.render.Bind(fs)
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "print only errors and warnings on stderr, not what was read or skipped")
	fs.BoolVar(&o.standalone, "standalone", false, "print objects without the ownerReference to their profile, to apply them without meshguard")
	fs.StringVar(&o.meshguardNamespace, "meshguard-namespace", "meshguard-system", "namespace meshguard runs in: cluster profiles are not applied there unless they set includeSystemNamespaces")
	var nsLabels []string
	fs.StringArrayVar(&nsLabels, "namespace-labels", nil, "a namespace and its labels for cluster profiles' namespaceSelector, written NAME or NAME:key=value,key=value (repeatable)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil, ExitOK
		}
		fmt.Fprintf(stderr, "render: %v (see manager render --help)\n", err)
		return nil, ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "render: unexpected argument %q: pass manifests with -f\n", fs.Arg(0))
		return nil, ExitUsage
	}
	if len(o.files) == 0 {
		fmt.Fprintln(stderr, "render: at least one -f is required (-f - reads standard input)")
		return nil, ExitUsage
	}
	labels, err := parseNamespaceLabels(nsLabels)
	if err != nil {
		fmt.Fprintf(stderr, "render: --namespace-labels: %v\n", err)
		return nil, ExitUsage
	}
	o.nsLabels = labels
	if err := o.render.Validate(); err != nil {
		fmt.Fprintf(stderr, "render: %v\n", err)
		return nil, ExitUsage
	}
	return o, ExitOK
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer, renderFn renderFunc) int {
	o, code := parseFlags(args, stderr)
	if o == nil {
		return code
	}
	c := &command{opts: o, stdin: stdin, stderr: stderr, render: renderFn, seen: map[string]string{}, nsLabels: map[string]map[string]string{}}
	for _, f := range o.files {
		c.file(f)
	}
	c.renderAll()
	if c.failed {
		return ExitInvalid
	}
	if _, err := stdout.Write(c.out.Bytes()); err != nil {
		fmt.Fprintf(stderr, "render: write output: %v\n", err)
		return ExitInvalid
	}
	return ExitOK
}

// command is one run of `manager render`: it reads every input, and collects the output so that
// nothing is printed on stdout unless every profile is valid.
type command struct {
	opts      *options
	stdin     io.Reader
	stdinRead bool
	stderr    io.Writer
	render    renderFunc
	out       bytes.Buffer
	failed    bool
	// seen maps namespace/name of each profile to the input it came from.
	seen map[string]string
	// profiles and floors are the valid profiles read, in input order; nsLabels the labels of the
	// Namespace documents read.
	profiles []input[*v1alpha1.MeshSecurityProfile]
	floors   []input[*v1alpha1.ClusterMeshSecurityProfile]
	nsLabels map[string]map[string]string
}

// input is a valid profile and where it was read.
type input[T any] struct {
	src, prefix string
	obj         T
}

// infof prints an info line on stderr unless -q.
func (c *command) infof(format string, args ...any) {
	if !c.opts.quiet {
		fmt.Fprintf(c.stderr, format+"\n", args...)
	}
}

func (c *command) errorf(format string, args ...any) {
	c.failed = true
	fmt.Fprintf(c.stderr, format+"\n", args...)
}

// file reads one -f argument: a file, a directory or - for stdin.
func (c *command) file(path string) {
	if path == "-" {
		if c.stdinRead {
			c.errorf("render: -f - can be given only once")
			return
		}
		c.stdinRead = true
		if c.stdin == nil {
			c.errorf("%s: no standard input", stdinName)
			return
		}
		b, err := io.ReadAll(c.stdin)
		if err != nil {
			c.errorf("%s: %v", stdinName, err)
			return
		}
		c.stream(stdinName, b)
		return
	}
	info, err := os.Stat(path)
	if err != nil {
		c.errorf("%s: %v", path, unwrapPathError(err))
		return
	}
	if !info.IsDir() {
		c.readFile(path)
		return
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		c.errorf("%s: %v", path, unwrapPathError(err))
		return
	}
	n := 0
	for _, e := range entries { // sorted by name
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".yaml", ".yml", ".json":
			// A kustomization in a manifests directory is not an object; kubectl skips it too.
			if isKustomization(e.Name()) {
				c.infof("%s: skipped (a kustomization, not an object)", filepath.Join(path, e.Name()))
				continue
			}
			if !e.IsDir() {
				n++
				c.readFile(filepath.Join(path, e.Name()))
			}
		}
	}
	if n == 0 {
		c.errorf("%s: no .yaml, .yml or .json files", path)
	}
}

func (c *command) readFile(path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		c.errorf("%s: %v", path, unwrapPathError(err))
		return
	}
	c.stream(path, b)
}

// stream handles the documents of one input.
func (c *command) stream(src string, b []byte) {
	docs, err := validation.SplitDocuments(b)
	if err != nil {
		c.errorf("%s: %v", src, err)
		return
	}
	for i, doc := range docs {
		where := fmt.Sprintf("%s: document %d", src, i+1)
		obj, err := validation.Parse(doc)
		if err != nil {
			c.errorf("%s: %v", where, err)
			continue
		}
		if obj.IsList() {
			if err := obj.EachListItem(func(item runtime.Object) error {
				c.object(src, where, item.(*unstructured.Unstructured))
				return nil
			}); err != nil {
				c.errorf("%s: %v", where, err)
			}
			continue
		}
		c.object(src, where, obj)
	}
}

// object validates and renders one object of an input.
func (c *command) object(src, where string, obj *unstructured.Unstructured) {
	if obj.GetKind() == "" || obj.GetAPIVersion() == "" {
		c.errorf("%s: not a Kubernetes object: apiVersion and kind are required", where)
		return
	}
	gv, _ := schema.ParseGroupVersion(obj.GetAPIVersion())
	if gv.Group == "" && obj.GetKind() == "Namespace" {
		c.nsLabels[obj.GetName()] = obj.GetLabels()
		c.infof("%s: v1/Namespace %s: read for its labels (cluster profiles' namespaceSelector)", where, obj.GetName())
		return
	}
	if gv.Group == v1alpha1.GroupVersion.Group && obj.GetKind() == validation.ClusterKind {
		c.clusterObject(src, where, obj)
		return
	}
	if gv.Group != v1alpha1.GroupVersion.Group {
		c.infof("%s: skipping %s %s: not a %s or %s", where, kindOf(obj), obj.GetName(), validation.Kind, validation.ClusterKind)
		return
	}
	id := validation.Kind + "/" + obj.GetName()
	if obj.GetName() == "" {
		id = validation.Kind + " (" + strings.TrimPrefix(where, src+": ") + ")"
	}
	prefix := src + ": " + id

	ns := c.opts.namespace
	if ns == "" {
		ns = "default"
	}
	switch {
	case obj.GetNamespace() == "":
		obj.SetNamespace(ns)
	case c.opts.namespace != "" && obj.GetNamespace() != c.opts.namespace:
		c.errorf("%s: %s", prefix, field.Invalid(field.NewPath("metadata", "namespace"), obj.GetNamespace(),
			fmt.Sprintf("does not match --namespace %q; pass --namespace=%s, as kubectl requires", c.opts.namespace, obj.GetNamespace())))
		return
	}

	p, errs, err := validation.FromUnstructured(obj)
	if err != nil {
		c.errorf("%s: %v", prefix, err)
		return
	}
	if len(errs) > 0 {
		c.fieldErrors(prefix, errs)
		return
	}
	key := p.Namespace + "/" + p.Name
	if first, dup := c.seen[key]; dup {
		c.errorf("%s: %s", prefix, field.Duplicate(field.NewPath("metadata", "name"), key).Error()+": also in "+first)
		return
	}
	c.seen[key] = src
	c.profiles = append(c.profiles, input[*v1alpha1.MeshSecurityProfile]{src: src, prefix: prefix, obj: p})
}

// renderOne renders a profile and reports why it cannot be; nil when it cannot.
func (c *command) renderOne(prefix string, p *v1alpha1.MeshSecurityProfile) *render.Result {
	res, err := c.render(p, c.opts.render)
	var invalid *render.InvalidSpecError
	switch {
	case errors.As(err, &invalid):
		c.fieldErrors(prefix, invalid.Errs)
		return nil
	case err != nil:
		c.errorf("%s: render: %v", prefix, err)
		return nil
	case len(res.Unsupported) > 0:
		for _, u := range res.Unsupported {
			c.errorf("%s: not supported by %s: %s", prefix, p.Spec.GetMesh(), u)
		}
		return nil
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(c.stderr, "%s: warning: %s\n", prefix, w)
	}
	return res
}

func (c *command) fieldErrors(prefix string, errs field.ErrorList) {
	for _, e := range errs {
		if e.Field == "" || e.Field == "<nil>" {
			// A rule on the whole object: its message names the fields.
			c.errorf("%s: %s", prefix, e.ErrorBody())
			continue
		}
		c.errorf("%s: %s", prefix, e.Error())
	}
}

// print writes the objects of one profile, the first preceded by comments saying where they
// come from and what meshguard does outside them (the Namespace annotations).
// With merged, it also names the floors merged in and the fields held at them; floorOnly says the
// namespace has no profile of its own.
func (c *command) print(src string, p *v1alpha1.MeshSecurityProfile, res *render.Result, merged *merge.Result, floorOnly bool) error {
	var head strings.Builder
	fmt.Fprintf(&head, "# Source: %s\n", src)
	if floorOnly {
		fmt.Fprintf(&head, "# Namespace %s (no MeshSecurityProfile): the floor of %s %s: mesh %s, enforcement %s, %d objects\n",
			p.Namespace, validation.ClusterKind, strings.Join(merged.ClusterProfiles, ", "), p.Spec.GetMesh(), p.Spec.Enforcement, len(res.Objects))
	} else {
		fmt.Fprintf(&head, "# %s %s/%s: mesh %s, enforcement %s, %d objects\n", validation.Kind, p.Namespace, p.Name, p.Spec.GetMesh(), p.Spec.Enforcement, len(res.Objects))
	}
	if merged != nil {
		if !floorOnly {
			fmt.Fprintf(&head, "# merged with the floor of %s %s\n", validation.ClusterKind, strings.Join(merged.ClusterProfiles, ", "))
		}
		for _, h := range merged.Held {
			fmt.Fprintf(&head, "# held at the floor: %s\n", holdText(h))
		}
		for _, o := range merged.Opened {
			fmt.Fprintf(&head, "# opens under the floor: %s\n", openingText(o))
		}
	}
	if c.opts.standalone {
		head.WriteString("# --standalone: without ownerReferences; meshguard neither owns nor prunes these objects.\n")
	}
	if p.Spec.Enforcement == v1alpha1.EnforcementAudit {
		head.WriteString("# Audit: meshguard compares these objects with the cluster and reports drift; it does not apply them.\n")
	}
	if len(res.NamespaceAnnotations) > 0 {
		fmt.Fprintf(&head, "# meshguard also sets these annotations on Namespace %s (server-side apply, field manager meshguard):\n", p.Namespace)
		keys := make([]string, 0, len(res.NamespaceAnnotations))
		for k := range res.NamespaceAnnotations {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&head, "#   %s: %s\n", k, res.NamespaceAnnotations[k])
		}
	}
	if len(res.Objects) == 0 {
		c.out.WriteString("---\n" + head.String())
		return nil
	}
	for i, o := range res.Objects {
		b, err := yaml.Marshal(forPreview(o, c.opts.standalone).Object)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", o.GetKind(), o.GetName(), err)
		}
		c.out.WriteString("---\n")
		if i == 0 {
			c.out.WriteString(head.String())
		}
		c.out.Write(b)
	}
	return nil
}

// forPreview returns a copy of a rendered object without what only a live profile has: the
// ownerReference's uid, empty here because the profile was read from a file, would otherwise
// print as uid: "". standalone drops the ownerReferences altogether: applied without the
// profile, an object owned by a profile that does not exist is deleted by the garbage collector.
func forPreview(o *unstructured.Unstructured, standalone bool) *unstructured.Unstructured {
	o = o.DeepCopy()
	if standalone {
		o.SetOwnerReferences(nil)
		return o
	}
	refs, found, err := unstructured.NestedSlice(o.Object, "metadata", "ownerReferences")
	if !found || err != nil {
		return o
	}
	for _, r := range refs {
		if m, ok := r.(map[string]any); ok {
			if uid, _ := m["uid"].(string); uid == "" {
				delete(m, "uid")
			}
		}
	}
	_ = unstructured.SetNestedSlice(o.Object, refs, "metadata", "ownerReferences")
	return o
}

func kindOf(obj *unstructured.Unstructured) string {
	if obj.GetAPIVersion() == "" {
		return obj.GetKind()
	}
	return obj.GetAPIVersion() + "/" + obj.GetKind()
}

// unwrapPathError drops the path that an *fs.PathError repeats.
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func isKustomization(name string) bool {
	switch name {
	case "kustomization.yaml", "kustomization.yml", "Kustomization":
		return true
	}
	return false
}
