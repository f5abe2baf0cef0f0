package expectations

import (
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/explain"
)

// maxDecidedBy bounds status.expectations[].decidedBy (the API's maxItems).
const maxDecidedBy = 16

// ForeignMark follows a deciding object that no meshguard profile generated.
const ForeignMark = " (foreign)"

// ProfileMark follows a deciding object that another meshguard profile generated (a profile of a
// source namespace, for example).
func ProfileMark(namespace, name string) string {
	return " (meshguard profile " + namespace + "/" + name + ")"
}

// Options are the facts an evaluation needs besides the objects.
type Options struct {
	// Engine are the cluster facts of the evaluation engine (trust domain, Istio root namespace,
	// Linkerd namespace and default policy). Mesh is taken from the profile.
	Engine explain.Options
	// Origin says where the object kind namespace/name comes from: "" when it was generated for
	// this profile, otherwise the mark that follows it in decidedBy (ForeignMark, ProfileMark).
	// Deciding objects that are not the profile's own are listed first. nil: every object is
	// foreign.
	Origin func(kind, namespace, name string) string
}

// SourceNamespaces are the namespaces whose NetworkPolicies (egress of the source) and Namespace
// objects (labels for namespaceSelectors) an evaluation of p's expectations needs besides p's
// own namespace, sorted.
func SourceNamespaces(p *v1alpha1.MeshSecurityProfile) []string {
	seen := map[string]bool{p.Namespace: true}
	var out []string
	for _, x := range p.Spec.Expectations {
		ns := x.From.Namespace
		if sa := string(x.From.ServiceAccount); sa != "" {
			ns, _, _ = strings.Cut(sa, "/")
		}
		if ns != "" && !seen[ns] {
			seen[ns] = true
			out = append(out, ns)
		}
	}
	sort.Strings(out)
	return out
}

// Request converts an expectation of the API into the engine's form.
func Request(x v1alpha1.Expectation) explain.Expectation {
	return explain.Expectation{
		Name: x.Name,
		From: explain.ExpectationFrom{
			ServiceAccount: string(x.From.ServiceAccount),
			Namespace:      x.From.Namespace,
			PodLabels:      x.From.PodLabels,
			IPBlock:        x.From.IPBlock,
			Unmeshed:       x.From.Unmeshed,
		},
		To: explain.ExpectationTo{
			PodLabels: nonNil(x.To.PodLabels),
			Port:      x.To.Port,
			Method:    x.To.Method,
			Path:      x.To.Path,
		},
		Want: explain.Decision(x.Want),
	}
}

// nonNil makes an omitted label map a pod without labels.
func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// Evaluate answers every expectation of p against objs (the policies of p's namespace, of the
// sources' namespaces and of Istio's root namespace, and those Namespace objects), in spec order.
// An expectation the engine cannot evaluate (malformed: it slipped past admission) is Unknown.
func Evaluate(p *v1alpha1.MeshSecurityProfile, objs []*unstructured.Unstructured, opts Options) []v1alpha1.ExpectationStatus {
	if len(p.Spec.Expectations) == 0 {
		return nil
	}
	eng := opts.Engine
	eng.Mesh = explain.MeshIstio
	if p.Spec.GetMesh() == v1alpha1.MeshLinkerd {
		eng.Mesh = explain.MeshLinkerd
	}
	if p.Spec.TrustDomain != "" {
		eng.TrustDomain = p.Spec.TrustDomain
	}
	out := make([]v1alpha1.ExpectationStatus, 0, len(p.Spec.Expectations))
	for _, x := range p.Spec.Expectations {
		st := v1alpha1.ExpectationStatus{Name: x.Name, Want: x.Want, Got: v1alpha1.DecisionUnknown}
		res, err := explain.EvaluateExpectation(objs, p.Namespace, Request(x), eng)
		if err != nil {
			st.Message = "not evaluated: " + err.Error()
			out = append(out, st)
			continue
		}
		out = append(out, status(x, res, opts.Origin))
	}
	return out
}

// status describes one answer: the deciding layer and objects, foreign ones first. The layers the
// expectation does not count (the sender's own egress policy in another namespace) are skipped.
func status(x v1alpha1.Expectation, er *explain.ExpectationResult, origin func(kind, ns, name string) string) v1alpha1.ExpectationStatus {
	res := er.Result
	st := v1alpha1.ExpectationStatus{Name: x.Name, Want: x.Want, Got: v1alpha1.ObservedDecision(er.Decision)}
	if er.Decision != explain.Allowed && er.Decision != explain.Denied {
		st.Got = v1alpha1.DecisionUnknown
	}
	// An Unknown answer never meets an expectation: it is not the wanted one.
	st.Met = string(st.Got) == string(x.Want)
	if er.Reason == explain.ReasonDeniedOnlyBySource {
		st.Reason = v1alpha1.ExpectationReasonDeniedOnlyBySource
	}
	counted := func(l *explain.LayerResult) bool {
		for _, i := range er.Ignored {
			if l.Layer == i {
				return false
			}
		}
		return true
	}

	var layer *explain.LayerResult
	switch st.Got {
	case v1alpha1.DecisionDenied:
		for i := range res.Layers {
			if res.Layers[i].Decision == explain.Denied && counted(&res.Layers[i]) {
				layer = &res.Layers[i]
				break
			}
		}
	case v1alpha1.DecisionUnknown:
		for i := range res.Layers {
			if res.Layers[i].Decision == explain.Unknown && counted(&res.Layers[i]) {
				layer = &res.Layers[i]
				break
			}
		}
	default:
		// Allowed: every counted layer lets it through. The layer of the first foreign object
		// that allows it explains best why a flow expected closed is open; else the last layer
		// with deciding objects (authorization, usually).
		var last *explain.LayerResult
		for i := range res.Layers {
			l := &res.Layers[i]
			if len(l.Deciding) == 0 || !counted(l) {
				continue
			}
			last = l
			if layer == nil && !allOurs(l.Deciding, origin) {
				layer = l
			}
		}
		if layer == nil {
			layer = last
		}
		if layer == nil {
			// No layer names an object: the last layer that took part says why.
			for i := range res.Layers {
				if l := &res.Layers[i]; counted(l) && l.Decision == explain.Allowed {
					layer = l
				}
			}
		}
	}
	prefix := ""
	if er.Sender != "" {
		prefix = "for " + er.Sender + ": "
	}
	if st.Reason != "" {
		for i := range res.Layers {
			if l := &res.Layers[i]; !counted(l) && l.Decision == explain.Denied {
				prefix += fmt.Sprintf("only the sender's own %s (%s) denies it, which the sender controls and does not protect this namespace (%s); ",
					l.Layer, strings.Join(refs(l.Deciding, origin), ", "), st.Reason)
			}
		}
	}
	if layer == nil {
		st.Message = prefix + fmt.Sprintf("%s at every layer", er.Decision)
		return st
	}
	st.Layer = layer.Layer
	st.DecidedBy = refs(layer.Deciding, origin)
	st.Message = fmt.Sprintf("%s: %s%s", layer.Layer, prefix, layer.Reason)
	return st
}

// allOurs says whether every ref is the profile's own.
func allOurs(rs []explain.Ref, origin func(kind, ns, name string) string) bool {
	for _, r := range rs {
		if mark(r, origin) != "" {
			return false
		}
	}
	return true
}

// mark is "" for the profile's own object, else what follows it in decidedBy.
func mark(r explain.Ref, origin func(kind, ns, name string) string) string {
	if origin == nil {
		return ForeignMark
	}
	return origin(r.Kind, r.Namespace, r.Name)
}

// refs writes the deciding objects, those not the profile's own first (marked), at most
// maxDecidedBy.
func refs(rs []explain.Ref, origin func(kind, ns, name string) string) []string {
	var foreign, own []string
	for _, r := range rs {
		if m := mark(r, origin); m == "" {
			own = append(own, r.String())
		} else {
			foreign = append(foreign, r.String()+m)
		}
	}
	out := append(foreign, own...)
	if len(out) > maxDecidedBy {
		out = out[:maxDecidedBy]
	}
	return out
}

// Condition summarises the answers as the ExpectationsMet condition: False when an answer
// contradicts its expectation (the message names the first and its deciding objects), else
// Unknown when an answer could not be determined, else True.
func Condition(results []v1alpha1.ExpectationStatus) (metav1.ConditionStatus, string, string) {
	met := 0
	var failed, unknown *v1alpha1.ExpectationStatus
	for i := range results {
		r := &results[i]
		switch {
		case r.Met:
			met++
		case r.Got == v1alpha1.DecisionUnknown:
			if unknown == nil {
				unknown = r
			}
		default:
			if failed == nil {
				failed = r
			}
		}
	}
	tally := fmt.Sprintf("%d of %d expectations met", met, len(results))
	switch {
	case failed != nil:
		return metav1.ConditionFalse, v1alpha1.ReasonExpectationNotMet,
			fmt.Sprintf("expectation %s wants %s, got %s%s; %s", failed.Name, failed.Want, failed.Got, decider(failed), tally)
	case unknown != nil:
		return metav1.ConditionUnknown, v1alpha1.ReasonExpectationUndetermined,
			fmt.Sprintf("expectation %s wants %s, but the answer is undetermined%s; %s", unknown.Name, unknown.Want, decider(unknown), tally)
	}
	return metav1.ConditionTrue, v1alpha1.ReasonExpectationsAllMet, tally
}

// decider names the deciding layer and objects of an answer for a condition message.
func decider(r *v1alpha1.ExpectationStatus) string {
	switch {
	case len(r.DecidedBy) > 0:
		return fmt.Sprintf(" (decided by %s at the %s layer: %s)", strings.Join(r.DecidedBy, ", "), r.Layer, strings.TrimPrefix(r.Message, r.Layer+": "))
	case r.Message != "":
		return " (" + r.Message + ")"
	}
	return ""
}
