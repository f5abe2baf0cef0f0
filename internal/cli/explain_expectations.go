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
	var checked []profileExpectations
	var notes []string
	allMet := true
	for _, rp := range in.profiles {
		p := rp.profile
		if len(p.Spec.Expectations) == 0 {
			notes = append(notes, fmt.Sprintf("%s/%s has no spec.expectations", p.Namespace, p.Name))
			continue
		}
		objs := in.objects
		origins := map[string]string{}
		if o.kubeconfig != "" {
			live, n, err := livePolicies(o, p, newReader)
			if err != nil {
				fmt.Fprintf(stderr, "explain: %v\n", err)
				return ExplainError
			}
			objs, notes = append(append([]*unstructured.Unstructured{}, objs...), live...), append(notes, n...)
			for _, u := range live {
				if c := metav1.GetControllerOf(u); c != nil && c.Kind == validation.Kind {
					origins[u.GetKind()+" "+u.GetNamespace()+"/"+u.GetName()] = expectations.ProfileMark(u.GetNamespace(), c.Name)
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
			Engine: o.engine,
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

// livePolicies reads the cluster's policies of the profile's namespace, its expectations' source
// namespaces and Istio's root namespace, without the objects meshguard applied for this profile
// (its render stands for them: the profile as given may differ from the one applied).
func livePolicies(o *explainOptions, p *v1alpha1.MeshSecurityProfile, newReader readerFactory) ([]*unstructured.Unstructured, []string, error) {
	r, err := newReader(o.kubeconfig, o.context)
	if err != nil {
		return nil, nil, err
	}
	root := o.engine.RootNamespace()
	nss := append([]string{p.Namespace}, expectations.SourceNamespaces(p)...)
	live, notes, err := r.Policies(context.Background(), append(nss, root))
	if err != nil {
		return nil, nil, fmt.Errorf("read the cluster's policies: %w", err)
	}
	out := make([]*unstructured.Unstructured, 0, len(live))
	for _, u := range live {
		l := u.GetLabels()
		if u.GetNamespace() == p.Namespace && l[v1alpha1.LabelManagedBy] == v1alpha1.ManagedByValue && l[v1alpha1.LabelProfile] == p.Name {
			continue
		}
		out = append(out, u)
	}
	return out, notes, nil
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
