package suggest

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Workload is a workload's identity and the labels its pods carry.
type Workload struct {
	// Namespace and Name name the workload as the mesh's metrics do (the Deployment, StatefulSet
	// or DaemonSet name).
	Namespace, Name string
	// Labels select exactly its pods: the workload's spec.selector.matchLabels (a Deployment's
	// pods all carry them, and the selector is what tells its pods from others'), or, for a Pod,
	// its labels without the ones that differ per pod or are added by the mesh's injector.
	Labels map[string]string
	// ServiceAccount is the service account its pods run as ("default" when unset), which tells
	// a client's workload when the metrics only give its identity (Linkerd).
	ServiceAccount string
}

// podOnlyLabels differ from pod to pod of one workload, or are added by the mesh at injection,
// so a selector must not use them.
var podOnlyLabels = map[string]bool{
	"pod-template-hash":                   true, // Deployment → ReplicaSet
	"controller-revision-hash":            true, // StatefulSet, DaemonSet
	"statefulset.kubernetes.io/pod-name":  true,
	"apps.kubernetes.io/pod-index":        true,
	"security.istio.io/tlsMode":           true,
	"service.istio.io/canonical-name":     true,
	"service.istio.io/canonical-revision": true,
}

// WorkloadsFromObjects reads Deployments, StatefulSets, DaemonSets and Pods (as a file or the API
// server gives them; other kinds are skipped). A Pod stands for its workload: the name is its
// owner's (a ReplicaSet's name without the pod-template-hash suffix), never the pod's own name.
func WorkloadsFromObjects(objs []*unstructured.Unstructured) ([]Workload, error) {
	var out []Workload
	for _, u := range objs {
		ns := u.GetNamespace()
		switch u.GetKind() {
		case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet":
			labels, _, _ := unstructured.NestedStringMap(u.Object, "spec", "selector", "matchLabels")
			if len(labels) == 0 {
				labels, _, _ = unstructured.NestedStringMap(u.Object, "spec", "template", "metadata", "labels")
			}
			if len(labels) == 0 {
				return nil, fmt.Errorf("%s %s/%s: no spec.selector.matchLabels or pod template labels to select its pods by", u.GetKind(), ns, u.GetName())
			}
			sa, _, _ := unstructured.NestedString(u.Object, "spec", "template", "spec", "serviceAccountName")
			out = append(out, Workload{Namespace: ns, Name: u.GetName(), Labels: stripPodOnly(labels), ServiceAccount: orDefault(sa)})
		case "Pod":
			name := podWorkloadName(u)
			if name == "" {
				return nil, fmt.Errorf("pod %s/%s: no owner workload; give its Deployment, StatefulSet or DaemonSet instead", ns, u.GetName())
			}
			labels := stripPodOnly(u.GetLabels())
			if len(labels) == 0 {
				return nil, fmt.Errorf("pod %s/%s: no labels to select it by", ns, u.GetName())
			}
			sa, _, _ := unstructured.NestedString(u.Object, "spec", "serviceAccountName")
			out = append(out, Workload{Namespace: ns, Name: name, Labels: labels, ServiceAccount: orDefault(sa)})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// podWorkloadName is the name of the workload that controls the pod, as Istio and Linkerd name
// it: a ReplicaSet owner stands for its Deployment (its name minus "-<pod-template-hash>").
func podWorkloadName(u *unstructured.Unstructured) string {
	for _, o := range u.GetOwnerReferences() {
		if o.Controller == nil || !*o.Controller {
			continue
		}
		if o.Kind == "ReplicaSet" {
			if h := u.GetLabels()["pod-template-hash"]; h != "" {
				if n, ok := strings.CutSuffix(o.Name, "-"+h); ok {
					return n
				}
			}
		}
		return o.Name
	}
	return ""
}

func stripPodOnly(in map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range in {
		if podOnlyLabels[k] || strings.HasPrefix(k, "linkerd.io/") {
			continue
		}
		out[k] = v
	}
	return out
}

func orDefault(sa string) string {
	if sa == "" {
		return "default"
	}
	return sa
}
