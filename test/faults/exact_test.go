package faults

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/test/testenv"
)

// generatedResources are every kind meshguard may generate (the cluster serves them all: Istio's
// and Linkerd's real CRDs are installed).
var generatedResources = map[schema.GroupKind]schema.GroupVersionResource{
	{Group: "networking.k8s.io", Kind: "NetworkPolicy"}:         {Group: "networking.k8s.io", Version: "v1", Resource: "networkpolicies"},
	{Group: "security.istio.io", Kind: "PeerAuthentication"}:    {Group: "security.istio.io", Version: "v1", Resource: "peerauthentications"},
	{Group: "security.istio.io", Kind: "RequestAuthentication"}: {Group: "security.istio.io", Version: "v1", Resource: "requestauthentications"},
	{Group: "security.istio.io", Kind: "AuthorizationPolicy"}:   {Group: "security.istio.io", Version: "v1", Resource: "authorizationpolicies"},
	{Group: "policy.linkerd.io", Kind: "Server"}:                {Group: "policy.linkerd.io", Version: "v1beta3", Resource: "servers"},
	{Group: "policy.linkerd.io", Kind: "AuthorizationPolicy"}:   {Group: "policy.linkerd.io", Version: "v1alpha1", Resource: "authorizationpolicies"},
	{Group: "policy.linkerd.io", Kind: "MeshTLSAuthentication"}: {Group: "policy.linkerd.io", Version: "v1alpha1", Resource: "meshtlsauthentications"},
	{Group: "policy.linkerd.io", Kind: "NetworkAuthentication"}: {Group: "policy.linkerd.io", Version: "v1alpha1", Resource: "networkauthentications"},
	{Group: "policy.linkerd.io", Kind: "HTTPRoute"}:             {Group: "policy.linkerd.io", Version: "v1beta3", Resource: "httproutes"},
}

// annotationDefaultInbound is the only namespace annotation meshguard sets (Linkerd profiles).
const annotationDefaultInbound = "config.linkerd.io/default-inbound-policy"

// Profile specs the scenarios create, alternately: every Istio part at once (10 objects), and a
// Linkerd profile with routes (8 objects and a namespace annotation). Both are
// internal/render/testdata cases, so their output is reviewed in golden files.
var profileSpecs = []string{
	"internal/render/testdata/baseline-full.yaml",
	"internal/render/testdata/linkerd-http-route.yaml",
}

// loadSpecs reads the spec of each profileSpecs manifest.
func loadSpecs() ([]v1alpha1.MeshSecurityProfileSpec, error) {
	var out []v1alpha1.MeshSecurityProfileSpec
	for _, f := range profileSpecs {
		b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), f))
		if err != nil {
			return nil, err
		}
		var p v1alpha1.MeshSecurityProfile
		if err := yaml.UnmarshalStrict(b, &p); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		out = append(out, p.Spec)
	}
	return out, nil
}

// createProfiles creates n namespaces named prefix-<i>, each with a profile named "baseline"
// (alternating specs), in parallel as a GitOps sync of many namespaces does.
func (e *env) createProfiles(ctx context.Context, prefix string, n int) ([]types.NamespacedName, error) {
	specs, err := loadSpecs()
	if err != nil {
		return nil, err
	}
	keys := make([]types.NamespacedName, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		keys[i] = types.NamespacedName{Namespace: fmt.Sprintf("%s-%03d", prefix, i), Name: "baseline"}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := e.createNamespace(ctx, keys[i].Namespace); err != nil {
				errs[i] = err
				return
			}
			p := &v1alpha1.MeshSecurityProfile{
				ObjectMeta: metav1.ObjectMeta{Namespace: keys[i].Namespace, Name: keys[i].Name},
				Spec:       *specs[i%len(specs)].DeepCopy(),
			}
			if err := e.client.Create(ctx, p); err != nil {
				errs[i] = fmt.Errorf("create profile %s: %w", keys[i], err)
			}
		}()
	}
	wg.Wait()
	return keys, errors.Join(errs...)
}

// readyCount counts the profiles that are Ready for their generation.
func (e *env) readyCount(ctx context.Context, keys []types.NamespacedName) int {
	var list v1alpha1.MeshSecurityProfileList
	if err := e.client.List(ctx, &list); err != nil {
		return -1
	}
	want := map[types.NamespacedName]bool{}
	for _, k := range keys {
		want[k] = true
	}
	n := 0
	for i := range list.Items {
		p := &list.Items[i]
		if want[client.ObjectKeyFromObject(p)] && isReady(p) {
			n++
		}
	}
	return n
}

func isReady(p *v1alpha1.MeshSecurityProfile) bool {
	if p.Status.ObservedGeneration != p.Generation || !p.DeletionTimestamp.IsZero() {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == v1alpha1.ConditionReady {
			return c.Status == metav1.ConditionTrue
		}
	}
	return false
}

// exactResult is what one exact check saw.
type exactResult struct {
	profiles, objects, annotated int
}

// checkExact compares the cluster with `manager render` of every live profile: every profile
// Ready for its generation; the objects of every generated kind, in every namespace, exactly the
// rendered ones (none missing, none extra); each controlled by its live profile (none orphaned),
// with meshguard's labels and the rendered spec; every status row InSync and the rows exactly
// the rendered objects; and Linkerd's namespace annotation exactly where rendered.
func (e *env) checkExact(ctx context.Context) (exactResult, error) {
	var res exactResult
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	var list v1alpha1.MeshSecurityProfileList
	if err := e.client.List(ctx, &list); err != nil {
		return res, err
	}
	profiles := map[types.NamespacedName]*v1alpha1.MeshSecurityProfile{}
	for i := range list.Items {
		p := &list.Items[i]
		profiles[client.ObjectKeyFromObject(p)] = p
		if !isReady(p) {
			bad("profile %s is not Ready for generation %d: %s", client.ObjectKeyFromObject(p), p.Generation, conditionSummary(p))
		}
	}
	res.profiles = len(profiles)

	desired, annotations, err := e.render(ctx, list.Items)
	if err != nil {
		return res, err
	}

	live := map[string]*unstructured.Unstructured{}
	for _, gvr := range generatedResources {
		l, err := e.dynamic.Resource(gvr).List(ctx, metav1.ListOptions{})
		if err != nil {
			return res, fmt.Errorf("list %s: %w", gvr.Resource, err)
		}
		for i := range l.Items {
			o := &l.Items[i]
			if o.GetNamespace() == deployNamespace && o.GetLabels()[v1alpha1.LabelManagedBy] != v1alpha1.ManagedByValue {
				continue // meshguard's own deployment (its NetworkPolicies), not generated
			}
			live[objectKey(o)] = o
		}
	}
	res.objects = len(live)

	for key, want := range desired {
		got := live[key]
		if got == nil {
			bad("missing: %s", key)
			continue
		}
		owner := profiles[types.NamespacedName{Namespace: want.GetNamespace(), Name: want.GetLabels()[v1alpha1.LabelProfile]}]
		ref := metav1.GetControllerOf(got)
		switch {
		case owner == nil:
			bad("%s: no live profile %s/%s renders it", key, want.GetNamespace(), want.GetLabels()[v1alpha1.LabelProfile])
		case ref == nil || ref.UID != owner.UID || ref.Kind != "MeshSecurityProfile" || ref.Name != owner.Name:
			bad("orphaned: %s is controlled by %v, not by profile %s (uid %s)", key, ref, owner.Name, owner.UID)
		}
		for k, v := range want.GetLabels() {
			if got.GetLabels()[k] != v {
				bad("%s: label %s=%q, rendered %q", key, k, got.GetLabels()[k], v)
			}
		}
		stored, err := e.storedSpec(ctx, want)
		if err != nil {
			return res, err
		}
		if !reflect.DeepEqual(stored, normalize(got.Object["spec"])) {
			w, _ := json.Marshal(stored)
			g, _ := json.Marshal(got.Object["spec"])
			bad("%s: spec differs from render (as the API server stores it):\n  rendered %s\n  live     %s", key, w, g)
		}
	}
	for key, got := range live {
		if desired[key] == nil {
			bad("extra: %s (labels %v, controller %v)", key, got.GetLabels(), metav1.GetControllerOf(got))
		}
	}

	// Status rows: one per rendered object of the profile, all InSync.
	rows := map[types.NamespacedName]map[string]bool{}
	for _, want := range desired {
		k := types.NamespacedName{Namespace: want.GetNamespace(), Name: want.GetLabels()[v1alpha1.LabelProfile]}
		if rows[k] == nil {
			rows[k] = map[string]bool{}
		}
		rows[k][want.GetAPIVersion()+"/"+want.GetKind()+"/"+want.GetName()] = true
	}
	for k, p := range profiles {
		got := map[string]bool{}
		for _, r := range p.Status.Resources {
			got[r.APIVersion+"/"+r.Kind+"/"+r.Name] = true
			if r.State != v1alpha1.ResourceInSync {
				bad("profile %s: status row %s %s is %s: %s", k, r.Kind, r.Name, r.State, r.Message)
			}
		}
		for row := range rows[k] {
			if !got[row] {
				bad("profile %s: no status row for %s", k, row)
			}
		}
		for row := range got {
			if !rows[k][row] && !strings.HasPrefix(row, "v1/Namespace/") {
				bad("profile %s: status row for %s, which render does not produce", k, row)
			}
		}
	}

	// Linkerd's default inbound policy annotation, exactly where a live profile renders it.
	nss, err := e.clientset.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return res, err
	}
	for _, ns := range nss.Items {
		want, wanted := annotations[ns.Name]
		got, has := ns.Annotations[annotationDefaultInbound]
		switch {
		case wanted && got != want:
			bad("namespace %s: %s=%q, rendered %q", ns.Name, annotationDefaultInbound, got, want)
		case !wanted && has:
			bad("namespace %s: %s=%q, but no live profile renders it", ns.Name, annotationDefaultInbound, got)
		case wanted:
			res.annotated++
		}
	}

	if len(problems) > 0 {
		sort.Strings(problems)
		if len(problems) > 30 {
			problems = append(problems[:30], fmt.Sprintf("... and %d more", len(problems)-30))
		}
		return res, errors.New(strings.Join(problems, "\n"))
	}
	return res, nil
}

// storedSpec is the spec the API server stores for a rendered object: the rendered spec with the
// defaults of the kind's schema (such as a Linkerd Server's proxyProtocol: unknown), from a
// server-side dry-run create of the spec alone. Specs repeat across namespaces: cached by kind
// and spec.
func (e *env) storedSpec(ctx context.Context, want *unstructured.Unstructured) (any, error) {
	b, _ := json.Marshal(want.Object["spec"])
	key := want.GetAPIVersion() + "/" + want.GetKind() + " " + string(b)
	e.mu.Lock()
	defer e.mu.Unlock()
	if s, ok := e.stored[key]; ok {
		return s, nil
	}
	probe := &unstructured.Unstructured{Object: map[string]any{"spec": want.Object["spec"]}}
	probe.SetAPIVersion(want.GetAPIVersion())
	probe.SetKind(want.GetKind())
	probe.SetName("dry-run-defaults")
	gvr := generatedResources[want.GroupVersionKind().GroupKind()]
	out, err := e.dynamic.Resource(gvr).Namespace("default").Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		return nil, fmt.Errorf("dry-run create of the rendered %s %s: %w", want.GetKind(), want.GetName(), err)
	}
	if e.stored == nil {
		e.stored = map[string]any{}
	}
	e.stored[key] = normalize(out.Object["spec"])
	return e.stored[key], nil
}

// render runs `manager render` on every live profile (their spec as written) and returns the
// rendered objects by key, and the namespace annotations it says meshguard sets.
func (e *env) render(ctx context.Context, profiles []v1alpha1.MeshSecurityProfile) (map[string]*unstructured.Unstructured, map[string]string, error) {
	desired := map[string]*unstructured.Unstructured{}
	annotations := map[string]string{}
	if len(profiles) == 0 {
		return desired, annotations, nil
	}
	var in bytes.Buffer
	for _, p := range profiles {
		m := v1alpha1.MeshSecurityProfile{
			TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "MeshSecurityProfile"},
			ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name},
			Spec:       p.Spec,
		}
		b, err := yaml.Marshal(m)
		if err != nil {
			return nil, nil, err
		}
		in.WriteString("---\n")
		in.Write(b)
	}
	cmd := exec.CommandContext(ctx, e.managerBin, "render", "-f", "-")
	cmd.Stdin = &in
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, nil, fmt.Errorf("manager render: %w: %s", err, stderr.String())
	}

	// The annotations are in the comments: "# meshguard also sets these annotations on Namespace
	// <ns> (...):" then "#   key: value".
	s := bufio.NewScanner(bytes.NewReader(stdout.Bytes()))
	s.Buffer(make([]byte, 1<<20), 1<<20)
	ns := ""
	for s.Scan() {
		line := s.Text()
		if rest, ok := strings.CutPrefix(line, "# meshguard also sets these annotations on Namespace "); ok {
			ns, _, _ = strings.Cut(rest, " ")
			continue
		}
		if rest, ok := strings.CutPrefix(line, "#   "); ok && ns != "" {
			k, v, _ := strings.Cut(rest, ": ")
			if k == annotationDefaultInbound {
				annotations[ns] = v
			}
			continue
		}
		ns = ""
	}

	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(stdout.Bytes()), 4096)
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, nil, fmt.Errorf("decode the output of manager render: %w", err)
		}
		if obj == nil {
			continue
		}
		u := &unstructured.Unstructured{Object: obj}
		desired[objectKey(u)] = u
	}
	return desired, annotations, nil
}

func objectKey(o *unstructured.Unstructured) string {
	return o.GroupVersionKind().GroupKind().String() + " " + o.GetNamespace() + "/" + o.GetName()
}

// normalize makes JSON-equal values DeepEqual (numbers decoded as int64 or float64).
func normalize(v any) any {
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

func conditionSummary(p *v1alpha1.MeshSecurityProfile) string {
	var parts []string
	for _, c := range p.Status.Conditions {
		if c.Type == v1alpha1.ConditionReady || c.Status != metav1.ConditionTrue {
			parts = append(parts, fmt.Sprintf("%s=%s (%s: %s)", c.Type, c.Status, c.Reason, truncate(c.Message, 160)))
		}
	}
	if len(parts) == 0 {
		return "no conditions yet"
	}
	return strings.Join(parts, "; ")
}

// awaitExact waits until every profile is Ready and the exact check passes, and returns what the
// last check saw; on timeout, the error lists every difference.
func (e *env) awaitExact(ctx context.Context, timeout time.Duration) (exactResult, error) {
	deadline := time.Now().Add(timeout)
	for {
		res, err := e.checkExact(ctx)
		if err == nil {
			return res, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return res, fmt.Errorf("the cluster is not exactly what the profiles render after %s:\n%w", timeout, err)
		}
		time.Sleep(time.Second)
	}
}
