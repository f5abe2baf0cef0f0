package pipeline

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/dataplane"
	"github.com/meshguard/meshguard/internal/expectations"
	"github.com/meshguard/meshguard/internal/explain"
)

// observeExpectations answers the profile's expectations against the live policies the reconcile
// already listed (live, from observeExternal: the mesh's and NetworkPolicies, and the extra kinds
// served: admin network policies, ServerAuthorizations, Cilium and Calico policies), the
// Namespaces of the profile and the sources (their labels for namespaceSelectors, Linkerd's
// default-inbound-policy annotation), the destination pods each expectation names, and, for
// Linkerd, the clusterNetworks and default inbound policy of linkerd-config, for Istio the data
// plane facts render used (dp, nil when not gathered). The evaluation
// itself is pure (internal/expectations, internal/explain); this step only gathers its inputs.
func (r *Pipeline) observeExpectations(ctx context.Context, p *v1alpha1.MeshSecurityProfile, live *livePolicies, dp *dataplane.Facts) ([]v1alpha1.ExpectationStatus, error) {
	if len(p.Spec.Expectations) == 0 || live == nil {
		return nil, nil
	}
	objs := append([]*unstructured.Unstructured{}, live.objects...)
	for _, name := range append([]string{p.Namespace}, expectations.SourceNamespaces(p)...) {
		ns := &corev1.Namespace{}
		err := r.APIReader.Get(ctx, types.NamespacedName{Name: name}, ns)
		if client.IgnoreNotFound(err) != nil {
			return nil, fmt.Errorf("get Namespace %s: %w", name, err)
		}
		if err != nil {
			// A source namespace that does not exist (yet) has only its name label.
			continue
		}
		u, err := toUnstructured(ns, "Namespace")
		if err != nil {
			return nil, err
		}
		objs = append(objs, u)
	}
	pods, err := r.destinationPods(ctx, p)
	if err != nil {
		return nil, err
	}
	for i := range pods {
		u, err := toUnstructured(&pods[i], "Pod")
		if err != nil {
			return nil, err
		}
		objs = append(objs, u)
	}
	eng := explain.Options{Facts: r.RenderOptions.Facts, DataPlane: dp} // dp: ztunnel or waypoint, as render placed the rules
	if p.Spec.GetMesh() == v1alpha1.MeshLinkerd {
		lf, err := r.linkerdFacts(ctx)
		if err != nil {
			return nil, err
		}
		eng.ClusterNetworks, eng.LinkerdDefaultPolicy = lf.clusterNetworks, lf.defaultInboundPolicy
		eng.LinkerdProxyInboundPort, eng.LinkerdProbeNetworks = lf.inboundPort, lf.probeNetworks
	}
	eng.CNIPolicyKinds = r.servedCNIKinds()
	out := expectations.Evaluate(p, objs, expectations.Options{
		Engine: eng,
		Origin: func(kind, ns, name string) string {
			if m, ok := live.origin[refKey(kind, ns, name)]; ok {
				return m
			}
			return expectations.ForeignMark
		},
	})
	return out, nil
}

// destinationPods lists the pods of the profile's namespace that an expectation's to.podLabels
// select (running or pending ones): the destinations the mesh must cover. explain answers an
// expectation as for a destination without a proxy when one of them does not send the port
// through its proxy (no proxy container, an excluded inbound port), and reads Linkerd's probe
// paths from them.
func (r *Pipeline) destinationPods(ctx context.Context, p *v1alpha1.MeshSecurityProfile) ([]corev1.Pod, error) {
	var list corev1.PodList
	if err := r.APIReader.List(ctx, &list, client.InNamespace(p.Namespace)); err != nil {
		return nil, fmt.Errorf("list Pods in %s: %w", p.Namespace, err)
	}
	var out []corev1.Pod
	for _, pod := range list.Items {
		if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		for _, x := range p.Spec.Expectations {
			if labels.SelectorFromSet(x.To.PodLabels).Matches(labels.Set(pod.Labels)) {
				out = append(out, pod)
				break
			}
		}
	}
	return out, nil
}

func toUnstructured(o runtime.Object, kind string) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		return nil, fmt.Errorf("convert %s: %w", kind, err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion("v1")
	u.SetKind(kind)
	return u, nil
}
