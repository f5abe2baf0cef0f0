package explain

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/meshguard/meshguard/internal/meshapi"
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
const annotationLinkerdDefaultPolicy = "config.linkerd.io/default-inbound-policy"

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

// namespaceLabels are the labels of Namespace ns: those of its object when given, with the
// API server's kubernetes.io/metadata.name label always set to its name (Kubernetes 1.21+,
// immutable), so that name-based selectors work without Namespace objects.
func (o *objects) namespaceLabels(ns string) map[string]string {
	l := map[string]string{}
	if u := o.namespaces[ns]; u != nil {
		for k, v := range u.GetLabels() {
			l[k] = v
		}
	}
	l["kubernetes.io/metadata.name"] = ns
	return l
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
