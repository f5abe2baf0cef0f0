package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/expectations"
	"github.com/meshguard/meshguard/internal/explain"
	"github.com/meshguard/meshguard/internal/validation"
)

// profileExpectations are one profile's answers, as `manager explain --expectations -o json`
// prints them.
type profileExpectations struct {
	Namespace    string                       `json:"namespace"`
	Profile      string                       `json:"profile"`
	Expectations []v1alpha1.ExpectationStatus `json:"expectations"`
	// Status, Reason and Message are the ExpectationsMet condition the controller would write.
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// runExpectations checks the spec.expectations of every profile among the inputs against its
// render, the other inputs and, with --kubeconfig, the cluster's policies (read-only).
func runExpectations(o *explainOptions, stdin io.Reader, stdout, stderr io.Writer, newReader readerFactory) int {
	in, err := readExplainInputs(o, stdin)
	if err != nil {
		fmt.Fprintf(stderr, "explain: %v\n", err)
		return ExplainError
	}
	var live []*unstructured.Unstructured
	var served, notes []string
	if o.kubeconfig != "" {
		live, served, notes, err = readLive(o, in.pending, newReader)
		if err != nil {
			fmt.Fprintf(stderr, "explain: %v\n", err)
			return ExplainError
		}
	}
	// The floors of the expectations' source namespaces (offline; live they are applied).
	var extra []string
	if o.kubeconfig == "" {
		for _, p := range in.pending {
			extra = append(extra, expectations.SourceNamespaces(p)...)
		}
	}
	if err := in.complete(o, live, nil, extra); err != nil {
		fmt.Fprintf(stderr, "explain: %v\n", err)
		return ExplainError
	}
	notes = append(notes, in.notes...)
	var checked []profileExpectations
	allMet := true
	for _, rp := range in.profiles {
		p := rp.profile
		if len(p.Spec.Expectations) == 0 {
			notes = append(notes, fmt.Sprintf("%s/%s has no spec.expectations", p.Namespace, p.Name))
			continue
		}
		objs := in.objects
		origins := map[string]string{}
		for k, m := range in.floorObjects {
			origins[k] = m
		}
		eng := o.engine
		if o.kubeconfig != "" {
			objs = append(append([]*unstructured.Unstructured{}, objs...), withoutApplied(live, p)...)
			eng.CNIPolicyKinds = append(append([]string{}, eng.CNIPolicyKinds...), served...)
			for _, u := range live {
				if c := metav1.GetControllerOf(u); c != nil && c.Kind == validation.Kind {
					origins[u.GetKind()+" "+u.GetNamespace()+"/"+u.GetName()] = expectations.ProfileMark(u.GetNamespace(), c.Name)
				} else if c != nil && c.Kind == validation.ClusterKind {
					origins[u.GetKind()+" "+u.GetNamespace()+"/"+u.GetName()] = " (" + validation.ClusterKind + " " + c.Name + ")"
				}
			}
		}
		// The profile's own objects are its render; those of the other profiles are marked as theirs.
		for _, other := range in.profiles {
			for _, u := range other.rendered {
				m := ""
				if other.profile != p {
					m = expectations.ProfileMark(other.profile.Namespace, other.profile.Name)
				}
				origins[u.GetKind()+" "+u.GetNamespace()+"/"+u.GetName()] = m
			}
		}
		results := expectations.Evaluate(p, objs, expectations.Options{
			Engine: eng,
			Origin: func(kind, ns, name string) string {
				if m, ok := origins[kind+" "+ns+"/"+name]; ok {
					return m
				}
				return expectations.ForeignMark
			},
		})
		status, reason, msg := expectations.Condition(results)
		allMet = allMet && reason == v1alpha1.ReasonExpectationsAllMet
		checked = append(checked, profileExpectations{Namespace: p.Namespace, Profile: p.Name, Expectations: results,
			Status: string(status), Reason: reason, Message: msg})
	}
	if len(checked) == 0 {
		fmt.Fprintln(stderr, "explain: --expectations: no profile among the inputs has spec.expectations")
		return ExplainError
	}
	if o.output == "json" {
		b, _ := json.MarshalIndent(checked, "", "  ")
		fmt.Fprintln(stdout, string(b))
	} else {
		printExpectations(stdout, checked, notes)
	}
	if !allMet {
		return ExplainDenied
	}
	return ExplainAllowed
}

// readLive reads the cluster's policies of the profiles' namespaces, their expectations' source
// namespaces and Istio's root namespace (with the cluster-scoped admin network policies and
// cluster profiles), and the CNI-specific policy kinds the cluster serves.
func readLive(o *explainOptions, profiles []*v1alpha1.MeshSecurityProfile, newReader readerFactory) (objs []*unstructured.Unstructured, served, notes []string, err error) {
	r, err := newReader(o.kubeconfig, o.context)
	if err != nil {
		return nil, nil, nil, err
	}
	root := o.engine.RootNamespace()
	var nss []string
	seen := map[string]bool{}
	for _, p := range profiles {
		for _, ns := range append([]string{p.Namespace}, expectations.SourceNamespaces(p)...) {
			if !seen[ns] {
				seen[ns] = true
				nss = append(nss, ns)
			}
		}
	}
	live, notes, err := r.Policies(context.Background(), append(nss, root))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read the cluster's policies: %w", err)
	}
	var wns []string
	for _, p := range profiles {
		wns = append(wns, waypointNamespaces(live, p.Namespace, append(append(nss, root), wns...))...)
	}
	if len(wns) > 0 {
		// explain_ambient.go: waypoints of other namespaces and the policies bound to them.
		wl, wn, err := r.Policies(context.Background(), wns)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("read the cluster's policies: %w", err)
		}
		live, notes = append(live, wl...), append(notes, wn...)
	}
	return live, r.Served(explain.CNIPolicyKinds), notes, nil
}

// withoutApplied are the live objects without those applied for the profile's namespace: the
// profile's own (its render, merged with its floors, stands for them: the profile as given may
// differ from the one applied) and the floor's own objects there (deleted once the profile's
// objects apply; the merged render holds the floor's rules).
func withoutApplied(live []*unstructured.Unstructured, p *v1alpha1.MeshSecurityProfile) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, 0, len(live))
	for _, u := range live {
		if u.GetNamespace() == p.Namespace {
			l := u.GetLabels()
			if l[v1alpha1.LabelManagedBy] == v1alpha1.ManagedByValue && l[v1alpha1.LabelProfile] == p.Name {
				continue
			}
			if c := metav1.GetControllerOf(u); c != nil && c.Kind == validation.ClusterKind {
				continue
			}
		}
		out = append(out, u)
	}
	return out
}

// printExpectations writes one row per expectation, then each profile's verdict and the notes.
func printExpectations(w io.Writer, checked []profileExpectations, notes []string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROFILE\tEXPECTATION\tWANT\tGOT\tMET\tLAYER\tDECIDED BY")
	for _, c := range checked {
		for _, x := range c.Expectations {
			met := "no"
			if x.Met {
				met = "yes"
			}
			layer, by := x.Layer, strings.Join(x.DecidedBy, ", ")
			if layer == "" {
				layer = "-"
			}
			if by == "" {
				by = "-"
			}
			fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Namespace, c.Profile, x.Name, x.Want, x.Got, met, layer, by)
		}
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	for _, c := range checked {
		fmt.Fprintf(w, "%s/%s: ExpectationsMet=%s (%s): %s\n", c.Namespace, c.Profile, c.Status, c.Reason, c.Message)
		for _, x := range c.Expectations {
			if !x.Met {
				fmt.Fprintf(w, "  %s: %s\n", x.Name, x.Message)
			}
		}
	}
	for _, n := range notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}
