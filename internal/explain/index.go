package explain

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/meshguard/meshguard/internal/meshapi"
	"github.com/meshguard/meshguard/internal/meshsem"
)

// API groups of the objects Evaluate reads.
const (
	groupNetworking     = meshapi.GroupNetworking
	groupIstioSecurity  = meshapi.GroupIstioSecurity
	groupIstioNetworkng = meshapi.GroupIstioNetworking
	groupLinkerdPolicy  = meshapi.GroupLinkerdPolicy
	groupGatewayAPI     = meshapi.GroupGatewayAPI
)

// annotationLinkerdDefaultPolicy is Linkerd's default inbound policy annotation, read on the
// destination's namespace.
const annotationLinkerdDefaultPolicy = meshsem.LinkerdDefaultInboundPolicyAnnotation

// objects indexes the inputs by group, kind and namespace.
type objects struct {
	byKind map[schema.GroupKind][]*unstructured.Unstructured
	// namespaces are the Namespace objects by name (labels, Linkerd annotation).
	namespaces map[string]*unstructured.Unstructured
}

func index(objs []*unstructured.Unstructured) *objects {
	o := &objects{byKind: map[schema.GroupKind][]*unstructured.Unstructured{}, namespaces: map[string]*unstructured.Unstructured{}}
	for _, u := range objs {
		if u == nil {
			continue
		}
		gv, err := schema.ParseGroupVersion(u.GetAPIVersion())
		if err != nil {
			continue
		}
		gk := schema.GroupKind{Group: gv.Group, Kind: u.GetKind()}
		if gk.Group == "" && gk.Kind == "Namespace" {
			o.namespaces[u.GetName()] = u
			continue
		}
		o.byKind[gk] = append(o.byKind[gk], u)
	}
	return o
}

// in returns the objects of a group and kind in namespace ns.
func (o *objects) in(group, kind, ns string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, u := range o.byKind[schema.GroupKind{Group: group, Kind: kind}] {
		if u.GetNamespace() == ns {
			out = append(out, u)
		}
	}
	return out
}

func (o *objects) has(group, kind string) bool {
	return len(o.byKind[schema.GroupKind{Group: group, Kind: kind}]) > 0
}

// AnnotationLabelsUnknown on a Namespace object among the inputs says that it carries only
// annotations (a profile's render) and its labels are not known.
const AnnotationLabelsUnknown = "explain.meshguard.dev/labels-unknown"

// namespaceLabels are the labels of Namespace ns: those of its object when given, with the
// API server's kubernetes.io/metadata.name label always set to its name (Kubernetes 1.21+,
// immutable), so that name-based selectors work without Namespace objects. known is false when
// no Namespace object with labels was given: its other labels are then not known.
func (o *objects) namespaceLabels(ns string) (l map[string]string, known bool) {
	l = map[string]string{}
	u := o.namespaces[ns]
	if u != nil {
		for k, v := range u.GetLabels() {
			l[k] = v
		}
	}
	l[metadataNameLabel] = ns
	return l, u != nil && u.GetAnnotations()[AnnotationLabelsUnknown] == ""
}

// metadataNameLabel is set by the API server on every Namespace to its name.
const metadataNameLabel = "kubernetes.io/metadata.name"

// nsSelected is whether a namespace selector selects namespace ns: unknown when the namespace's
// labels are not known and the selector looks at a label other than its name (audit E10: a
// namespace not given is not a namespace without labels).
func (e *evaluator) nsSelected(sel *metav1.LabelSelector, ns string) tri {
	l, known := e.objs.namespaceLabels(ns)
	if !known && !onlyOnName(sel) {
		e.unknownf("the labels of namespace %s were not given (give its Namespace object)", ns)
		return unknown
	}
	return triOf(selectorMatches(sel, l))
}

// onlyOnName says whether a selector looks at no label but kubernetes.io/metadata.name.
func onlyOnName(sel *metav1.LabelSelector) bool {
	if sel == nil {
		return true
	}
	for k := range sel.MatchLabels {
		if k != metadataNameLabel {
			return false
		}
	}
	for _, r := range sel.MatchExpressions {
		if r.Key != metadataNameLabel {
			return false
		}
	}
	return true
}

func (o *objects) namespaceAnnotation(ns, key string) (string, bool) {
	u := o.namespaces[ns]
	if u == nil {
		return "", false
	}
	v, ok := u.GetAnnotations()[key]
	return v, ok
}

func (o *objects) byKindGroup(group, kind string) []*unstructured.Unstructured {
	return o.byKind[schema.GroupKind{Group: group, Kind: kind}]
}
