package crosscheck

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// profileNS is the namespace of the generated profiles.
const profileNS = "shop"

// pod is a pod of the fixed world.
type pod struct {
	namespace, name string
	labels          map[string]string
	ip              string
}

// world is the cluster the connections are checked in: namespaces with labels, pods, and
// outside addresses. Pod IPs are in 10.244.0.0/16, which no generated ipBlock overlaps:
// netpol-analyzer never lets an ipBlock select a pod ("assuming that peer of type Pod cannot be
// selected by IPBlock"), while Kubernetes leaves it to the CNI; keeping them apart compares
// what both define.
type world struct {
	namespaces map[string]map[string]string
	pods       []pod
	external   []string
}

func newWorld(linkerdNS string) *world {
	w := &world{namespaces: map[string]map[string]string{
		profileNS:      {"team": "shop"},
		"frontend":     {"team": "web"},
		"other":        {"team": "shop"},
		"kube-system":  {},
		"istio-system": {},
		linkerdNS:      {},
	}}
	add := func(ns, name string, kv ...string) {
		l := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			l[kv[i]] = kv[i+1]
		}
		w.pods = append(w.pods, pod{namespace: ns, name: name, labels: l, ip: fmt.Sprintf("10.244.0.%d", len(w.pods)+2)})
	}
	for _, app := range []string{"api", "backend", "web", "db"} {
		add(profileNS, app+"-a", "app", app, "tier", "a")
		add(profileNS, app+"-b", "app", app, "tier", "b")
	}
	add("frontend", "web", "app", "web")
	add("frontend", "api", "app", "api", "tier", "a")
	add("other", "web", "app", "web")
	add("other", "db", "app", "db", "tier", "b")
	add("kube-system", "coredns", "k8s-app", "kube-dns")
	add("kube-system", "other", "app", "metrics")
	add("istio-system", "istiod", "app", "istiod")
	add(linkerdNS, "destination", "linkerd.io/control-plane-component", "destination", "linkerd.io/control-plane-ns", linkerdNS)
	add(linkerdNS, "identity", "linkerd.io/control-plane-component", "identity", "linkerd.io/control-plane-ns", linkerdNS)
	add(linkerdNS, "injector", "linkerd.io/control-plane-component", "proxy-injector", "linkerd.io/control-plane-ns", linkerdNS)
	// Addresses inside, at the edges of and outside the generated ipBlocks (see gen.go).
	w.external = []string{"192.0.2.1", "192.0.2.130", "192.0.2.200", "198.51.100.7", "198.51.100.77", "203.0.113.5", "172.20.1.1", "172.20.200.9", "8.8.8.8"}
	return w
}

func (w *world) nsLabels(ns string) map[string]string {
	l := map[string]string{"kubernetes.io/metadata.name": ns}
	for k, v := range w.namespaces[ns] {
		l[k] = v
	}
	return l
}

// coreObjects are the world's Namespaces and Pods for the analyzer.
func (w *world) coreObjects() ([]*corev1.Namespace, []*corev1.Pod) {
	var nss []*corev1.Namespace
	for ns := range w.namespaces {
		nss = append(nss, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: w.nsLabels(ns)}})
	}
	var pods []*corev1.Pod
	for _, p := range w.pods {
		pods = append(pods, &corev1.Pod{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{Namespace: p.namespace, Name: p.name, Labels: p.labels},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}},
			Status:     corev1.PodStatus{HostIP: "10.250.0.1", PodIP: p.ip, PodIPs: []corev1.PodIP{{IP: p.ip}}},
		})
	}
	return nss, pods
}

// namespaceObjects are the world's Namespaces for internal/explain (their labels).
func (w *world) namespaceObjects() []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for ns := range w.namespaces {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("v1")
		u.SetKind("Namespace")
		u.SetName(ns)
		u.SetLabels(w.nsLabels(ns))
		out = append(out, u)
	}
	return out
}
