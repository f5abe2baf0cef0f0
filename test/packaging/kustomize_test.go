package packaging

import (
	"context"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/meshguard/meshguard/hack/bundle/kustomize"
)

// TestKustomizeBuildsAreAcceptedByTheAPIServer builds each kustomize directory in-process, as
// `kubectl apply -k` and Argo CD do, and sends every object to the local kube-apiserver as a
// server-side dry-run. Namespaces of the build are created for real first (with their labels, so
// that Pod Security admission applies), since namespaced objects need theirs.
func TestKustomizeBuildsAreAcceptedByTheAPIServer(t *testing.T) {
	for _, dir := range []string{"config/default", "config/prometheus", "config/samples"} {
		t.Run(dir, func(t *testing.T) {
			objs, err := kustomize.Build(filepath.Join(root, dir))
			if err != nil {
				t.Fatal(err)
			}
			if len(objs) == 0 {
				t.Fatal("nothing built")
			}
			for _, u := range objs {
				if u.GetKind() == "Namespace" {
					ensureNamespace(t, u.GetName(), u.GetLabels())
				}
			}
			for _, ns := range []string{"meshguard-system", "istio-system", "linkerd"} {
				ensureNamespace(t, ns, nil)
			}
			for _, err := range dryRunApply(t, objs) {
				t.Error(err)
			}
			t.Logf("accepted: %s", kinds(objs))
		})
	}
}

// TestTheManagerPodIsAdmittedAtPodSecurityRestricted creates the manager's pod template as a Pod in
// a namespace that enforces the restricted Pod Security Standard; the API server's PodSecurity
// admission plugin decides. The same pod without its security contexts must be refused, or the
// check proves nothing.
func TestTheManagerPodIsAdmittedAtPodSecurityRestricted(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := "psa-restricted"
	ensureNamespace(t, ns, map[string]string{
		"pod-security.kubernetes.io/enforce":         "restricted",
		"pod-security.kubernetes.io/enforce-version": "latest",
	})
	dep := deployment(t)

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "manager", Namespace: ns, Labels: dep.Spec.Template.Labels},
		Spec:       *dep.Spec.Template.Spec.DeepCopy(),
	}
	// The service account the Deployment names exists in meshguard-system, not here; admission of
	// the pod's security settings does not depend on it.
	pod.Spec.ServiceAccountName = ""
	_, err := cluster.clientset.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred(), "the manager's pod is admitted at restricted")

	weak := pod.DeepCopy()
	weak.Name = "manager-without-security-context"
	weak.Spec.SecurityContext = nil
	for i := range weak.Spec.Containers {
		weak.Spec.Containers[i].SecurityContext = nil
	}
	_, err = cluster.clientset.CoreV1().Pods(ns).Create(ctx, weak, metav1.CreateOptions{})
	g.Expect(err).To(MatchError(ContainSubstring("violates PodSecurity \"restricted:latest\"")), "PodSecurity admission is on and enforcing")

	t.Run("and config/default's namespace enforces restricted", func(t *testing.T) {
		objs, err := kustomize.Build(filepath.Join(root, "config", "default"))
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range objs {
			if u.GetKind() == "Namespace" {
				NewWithT(t).Expect(u.GetLabels()).To(HaveKeyWithValue("pod-security.kubernetes.io/enforce", "restricted"))
			}
		}
	})
}

func TestTheManagerRunsTwoReplicasWithLeaderElectionSpreadAndADisruptionBudget(t *testing.T) {
	g := NewWithT(t)
	dep := deployment(t)
	g.Expect(*dep.Spec.Replicas).To(BeEquivalentTo(2))
	g.Expect(dep.Spec.Template.Spec.Containers[0].Args).To(ContainElement("--leader-elect"), "two replicas need leader election")
	g.Expect(dep.Spec.Template.Spec.TopologySpreadConstraints).To(ContainElement(HaveField("TopologyKey", "kubernetes.io/hostname")))
	podLabels := labels.Set(dep.Spec.Template.Labels)
	for _, c := range dep.Spec.Template.Spec.TopologySpreadConstraints {
		sel, err := metav1.LabelSelectorAsSelector(c.LabelSelector)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(sel.Matches(podLabels)).To(BeTrue(), "topology spread %s counts the manager's pods", c.TopologyKey)
	}

	objs, err := kustomize.Build(filepath.Join(root, "config", "default"))
	g.Expect(err).NotTo(HaveOccurred())
	var pdb *policyv1.PodDisruptionBudget
	for _, u := range objs {
		if u.GetKind() == "PodDisruptionBudget" {
			pdb = &policyv1.PodDisruptionBudget{}
			g.Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, pdb)).To(Succeed())
		}
	}
	g.Expect(pdb).NotTo(BeNil())
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sel.Matches(podLabels)).To(BeTrue(), "the PodDisruptionBudget selects the manager's pods")
	g.Expect(pdb.Spec.MinAvailable.IntValue()).To(BeNumerically(">=", 1))
	g.Expect(pdb.Spec.MinAvailable.IntValue()).To(BeNumerically("<", int(*dep.Spec.Replicas)), "a drain can still evict one replica")
}

func TestTheServiceMonitorScrapesTheMetricsServiceOverHTTPSWithABearerToken(t *testing.T) {
	g := NewWithT(t)
	objs, err := kustomize.Build(filepath.Join(root, "config", "prometheus"))
	g.Expect(err).NotTo(HaveOccurred())
	var svc, monitor *unstructured.Unstructured
	for _, u := range objs {
		switch u.GetKind() {
		case "Service":
			svc = u
		case "ServiceMonitor":
			monitor = u
		}
	}
	g.Expect(svc).NotTo(BeNil())
	g.Expect(monitor).NotTo(BeNil())
	sel, _, _ := unstructured.NestedStringMap(monitor.Object, "spec", "selector", "matchLabels")
	g.Expect(labels.SelectorFromSet(sel).Matches(labels.Set(svc.GetLabels()))).To(BeTrue())
	eps, _, _ := unstructured.NestedSlice(monitor.Object, "spec", "endpoints")
	g.Expect(eps).To(HaveLen(1))
	ep := eps[0].(map[string]any)
	g.Expect(ep).To(HaveKeyWithValue("scheme", "https"))
	g.Expect(ep).To(HaveKeyWithValue("bearerTokenFile", "/var/run/secrets/kubernetes.io/serviceaccount/token"))
	ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	g.Expect(ports).To(ContainElement(HaveKeyWithValue("name", ep["port"])), "the endpoint's port is the Service's")
	svcSel, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector")
	g.Expect(labels.SelectorFromSet(svcSel).Matches(labels.Set(deployment(t).Spec.Template.Labels))).To(BeTrue(), "the Service selects the manager's pods")
	g.Expect(deployment(t).Spec.Template.Spec.Containers[0].Args).To(ContainElement("--metrics-secure"))
}

// deployment is the manager's Deployment of `kustomize build config/default`.
func deployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	objs, err := kustomize.Build(filepath.Join(root, "config", "default"))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range objs {
		if u.GetKind() == "Deployment" {
			d := &appsv1.Deployment{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, d); err != nil {
				t.Fatal(err)
			}
			return d
		}
	}
	t.Fatal("config/default has no Deployment")
	return nil
}
