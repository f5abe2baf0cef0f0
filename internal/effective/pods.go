package effective

import (
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/meshsem"
)

// Istio's and Linkerd's namespace keys that ask for injection.
const (
	istioInjectionNamespaceKey = "istio-injection"
	istioRevisionKey           = "istio.io/rev"
	istioDataplaneModeKey      = "istio.io/dataplane-mode"
)

// NamespaceMeshed says whether a namespace asks its mesh to inject (or, for Istio ambient,
// redirect) every pod: Istio's istio-injection=enabled, istio.io/rev or
// istio.io/dataplane-mode=ambient labels; Linkerd's linkerd.io/inject annotation.
func NamespaceMeshed(mesh v1alpha1.Mesh, labels, annotations map[string]string) bool {
	if mesh == v1alpha1.MeshLinkerd {
		v := annotations[meshsem.LinkerdInjectAnnotation]
		return v == "enabled" || v == "ingress"
	}
	_, rev := labels[istioRevisionKey]
	return labels[istioInjectionNamespaceKey] == "enabled" || rev || labels[istioDataplaneModeKey] == "ambient"
}

// maxPodRows bounds how many pods the report names; the last row counts the others.
const maxPodRows = 20

// UncoveredPods reports the pods of the profile's namespace that escape the mesh: in a namespace
// that asks for injection (meshed), pods without a proxy; in any namespace, pods whose proxy
// skips inbound ports. Finished and terminating pods are left out. Rows are sorted by pod name,
// at most maxPodRows of them (the last then counts the rest).
func UncoveredPods(p *v1alpha1.MeshSecurityProfile, pods []corev1.Pod, meshed bool) []v1alpha1.ExternalPolicy {
	mesh := p.Spec.GetMesh()
	var out []v1alpha1.ExternalPolicy
	for i := range pods {
		pod := &pods[i]
		if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		c := meshsem.Coverage(pod, mesh, nil)
		var weakens string
		switch {
		case !c.Proxy && meshed:
			weakens = fmt.Sprintf("mtls and authorization: the pod has no %s proxy (%s): the mesh enforces none of the profile on it", mesh, c.Why)
		case c.Proxy && c.Gap():
			weakens = fmt.Sprintf("mtls and authorization: inbound ports skip the proxy (%s): the mesh enforces none of the profile on them", c.Why)
		default:
			continue
		}
		out = append(out, v1alpha1.ExternalPolicy{APIVersion: "v1", Kind: "Pod", Name: pod.Name, Weakens: weakens})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if len(out) > maxPodRows {
		more := len(out) - (maxPodRows - 1)
		out = append(out[:maxPodRows-1:maxPodRows-1], v1alpha1.ExternalPolicy{APIVersion: "v1", Kind: "Pod",
			Name: fmt.Sprintf("(%d more pods)", more), Weakens: "mtls and authorization: the mesh does not cover them either"})
	}
	return out
}
