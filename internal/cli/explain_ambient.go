package cli

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshguard/meshguard/internal/dataplane"
	"github.com/meshguard/meshguard/internal/explain"
)

// ambientFacts are the data plane facts of namespace ns among the inputs and the cluster's objects
// (Pods, Services, Gateways, the Namespace's labels), when they place a workload on Istio's ambient
// data plane: the profile is then rendered for ztunnel and its waypoints, as the controller renders
// it. nil otherwise, and the profile renders as for sidecars, as before.
func ambientFacts(ns string, in *explainInputs, live []*unstructured.Unstructured, labelsOf func(string) (map[string]string, bool)) *dataplane.Facts {
	objs := append(append([]*unstructured.Unstructured{}, in.given...), live...)
	if l, known := labelsOf(ns); known {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("v1")
		u.SetKind("Namespace")
		u.SetName(ns)
		u.SetLabels(l)
		objs = append(objs, u)
	}
	f := explain.DataPlaneFacts(objs, ns)
	for _, w := range dataplane.Select(f, nil).Workloads {
		if w.Class == dataplane.Ambient || w.Class == dataplane.Waypoint {
			return f
		}
	}
	return nil
}

// waypointNamespaces are the namespaces other than read that istio.io/use-waypoint-namespace
// names on the objects of namespace ns (its Namespace, Services and Pods): the waypoint Gateways,
// and the policies bound to them, live there.
func waypointNamespaces(objs []*unstructured.Unstructured, ns string, read []string) []string {
	seen := map[string]bool{}
	for _, r := range read {
		seen[r] = true
	}
	var out []string
	for _, u := range objs {
		if u.GetAPIVersion() != "v1" || (u.GetKind() == "Namespace" && u.GetName() != ns) || (u.GetKind() != "Namespace" && u.GetNamespace() != ns) {
			continue
		}
		if w := u.GetLabels()[dataplane.LabelUseWaypointNamespace]; w != "" && !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	return out
}
