// Package manifests checks the deployment that `make deploy` applies (kustomize config/default):
// least-privilege RBAC and a hardened manager Deployment.
package manifests

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/test/testenv"
)

func build(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	assets, err := testenv.AssetsDir()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(assets, "kubectl"), "kustomize", filepath.Join(testenv.RepoRoot(), "config", "default"))
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubectl kustomize config/default: %v: %s", err, stderr.String())
	}
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(&out, 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			break
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
	return objs
}

func convert[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	b, err := yaml.Marshal(u.Object)
	if err != nil {
		t.Fatal(err)
	}
	out := new(T)
	if err := yaml.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSecretsAreReadOnlyByNameInTheMeshNamespaces(t *testing.T) {
	g := NewWithT(t)
	secretRules := 0
	for _, u := range build(t) {
		switch u.GetKind() {
		case "ClusterRole":
			for _, r := range convert[rbacv1.ClusterRole](t, u).Rules {
				g.Expect(r.Resources).NotTo(ContainElement("secrets"), "no cluster-wide access to Secrets")
				g.Expect(r.Resources).NotTo(ContainElement("*"))
				g.Expect(r.Verbs).NotTo(ContainElement("*"))
			}
		case "Role":
			role := convert[rbacv1.Role](t, u)
			for _, r := range role.Rules {
				if !contains(r.Resources, "secrets") {
					continue
				}
				secretRules++
				g.Expect(role.Namespace).To(BeElementOf("istio-system", "linkerd"))
				g.Expect(r.ResourceNames).NotTo(BeEmpty(), "Secrets only by name")
				// list and watch with resourceNames are only authorized for requests that select
				// metadata.name: the per-object informers of the CA Secrets, nothing wider.
				g.Expect(r.Verbs).To(ConsistOf("get", "list", "watch"))
				g.Expect(r.Verbs).NotTo(ContainElement(BeElementOf("create", "update", "patch", "delete", "*")))
			}
		}
	}
	g.Expect(secretRules).To(Equal(2), "one Role each for the Istio and the Linkerd CA Secrets")
}

func TestTheManagerRunsHardened(t *testing.T) {
	g := NewWithT(t)
	var dep *appsv1.Deployment
	for _, u := range build(t) {
		if u.GetKind() == "Deployment" {
			dep = convert[appsv1.Deployment](t, u)
		}
	}
	g.Expect(dep).NotTo(BeNil())
	pod := dep.Spec.Template.Spec
	g.Expect(*pod.SecurityContext.RunAsNonRoot).To(BeTrue())
	g.Expect(string(pod.SecurityContext.SeccompProfile.Type)).To(Equal("RuntimeDefault"))
	c := pod.Containers[0]
	g.Expect(*c.SecurityContext.ReadOnlyRootFilesystem).To(BeTrue())
	g.Expect(*c.SecurityContext.AllowPrivilegeEscalation).To(BeFalse())
	g.Expect(c.SecurityContext.Capabilities.Drop).To(ContainElement(BeEquivalentTo("ALL")))
	g.Expect(c.Resources.Limits.Memory().IsZero()).To(BeFalse())
	g.Expect(c.Args).To(ContainElement("--leader-elect"))
	g.Expect(c.Args).To(ContainElement("--metrics-secure"), "metrics over HTTPS with authentication and authorization")
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// meshguard's namespace is behind default deny, and the manager may only reach the API server and
// DNS and be reached on its metrics and probe ports (config/network-policy).
func TestMeshguardsNamespaceIsBehindDefaultDeny(t *testing.T) {
	g := NewWithT(t)
	var policies []*networkingv1.NetworkPolicy
	var dep *appsv1.Deployment
	for _, u := range build(t) {
		switch u.GetKind() {
		case "NetworkPolicy":
			policies = append(policies, convert[networkingv1.NetworkPolicy](t, u))
		case "Deployment":
			dep = convert[appsv1.Deployment](t, u)
		}
	}
	g.Expect(dep).NotTo(BeNil())
	podLabels := labels.Set(dep.Spec.Template.Labels)

	var defaultDeny bool
	var ingressPorts, egressPorts []string
	for _, np := range policies {
		g.Expect(np.Namespace).To(Equal(dep.Namespace), "%s protects meshguard's namespace", np.Name)
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		g.Expect(err).NotTo(HaveOccurred())
		if !sel.Matches(podLabels) {
			continue
		}
		if sel.Empty() && len(np.Spec.Ingress) == 0 && len(np.Spec.Egress) == 0 &&
			slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) && slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
			defaultDeny = true
		}
		for _, r := range np.Spec.Ingress {
			g.Expect(r.Ports).NotTo(BeEmpty(), "%s: an ingress rule without ports would open every port", np.Name)
			for _, p := range r.Ports {
				ingressPorts = append(ingressPorts, fmt.Sprintf("%s/%s", p.Port.String(), *p.Protocol))
			}
		}
		for _, r := range np.Spec.Egress {
			g.Expect(r.Ports).NotTo(BeEmpty(), "%s: an egress rule without ports would open every port", np.Name)
			for _, p := range r.Ports {
				egressPorts = append(egressPorts, fmt.Sprintf("%s/%s", p.Port.String(), *p.Protocol))
			}
		}
	}
	g.Expect(defaultDeny).To(BeTrue(), "a policy selects every pod of the namespace and allows nothing")
	g.Expect(ingressPorts).To(ConsistOf("8443/TCP", "8081/TCP"), "metrics and probes only")
	g.Expect(egressPorts).To(ConsistOf("53/UDP", "53/TCP", "443/TCP", "6443/TCP"), "DNS and the API server only")
	var containerPorts []string
	for _, p := range dep.Spec.Template.Spec.Containers[0].Ports {
		containerPorts = append(containerPorts, fmt.Sprintf("%d/TCP", p.ContainerPort))
	}
	g.Expect(ingressPorts).To(ConsistOf(containerPorts), "the policy opens the ports the manager listens on")
}
