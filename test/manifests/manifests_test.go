// Package manifests checks the deployment that `make deploy` applies (kustomize config/default):
// least-privilege RBAC and a hardened manager Deployment.
package manifests

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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
