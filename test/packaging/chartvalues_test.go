package packaging

import (
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// rendered renders the chart with values and indexes the objects by "Kind namespace/name".
func rendered(t *testing.T, release string, values map[string]any) map[string]*unstructured.Unstructured {
	t.Helper()
	objs, err := renderChart(t, release, "meshguard-system", values)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*unstructured.Unstructured{}
	for _, u := range objs {
		out[u.GetKind()+" "+u.GetNamespace()+"/"+u.GetName()] = u
	}
	return out
}

func managerDeployment(t *testing.T, objs map[string]*unstructured.Unstructured) *appsv1.Deployment {
	t.Helper()
	for _, u := range objs {
		if u.GetKind() == "Deployment" {
			d := &appsv1.Deployment{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, d); err != nil {
				t.Fatal(err)
			}
			return d
		}
	}
	t.Fatal("no Deployment rendered")
	return nil
}

func TestTheChartsPackagingValues(t *testing.T) {
	t.Run("image.digest pins the image and wins over the tag", func(t *testing.T) {
		g := NewWithT(t)
		digest := "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		d := managerDeployment(t, rendered(t, "meshguard", map[string]any{"image": map[string]any{"tag": "v1", "digest": digest}}))
		g.Expect(d.Spec.Template.Spec.Containers[0].Image).To(Equal("ghcr.io/meshguard/meshguard@" + digest))
		_, err := renderChart(t, "meshguard", "meshguard-system", map[string]any{"image": map[string]any{"digest": "latest"}})
		g.Expect(err).To(MatchError(ContainSubstring("digest")), "a digest that is not sha256:<hex> is refused")
	})
	t.Run("clusterName becomes --cluster-name, and no flag without it", func(t *testing.T) {
		g := NewWithT(t)
		args := managerDeployment(t, rendered(t, "meshguard", map[string]any{"clusterName": "eu-west"})).Spec.Template.Spec.Containers[0].Args
		g.Expect(args).To(ContainElement("--cluster-name=eu-west"))
		args = managerDeployment(t, rendered(t, "meshguard", nil)).Spec.Template.Spec.Containers[0].Args
		g.Expect(args).NotTo(ContainElement(HavePrefix("--cluster-name")))
	})
	t.Run("nameOverride and fullnameOverride name every object", func(t *testing.T) {
		g := NewWithT(t)
		objs := rendered(t, "prod", map[string]any{"nameOverride": "mg"})
		g.Expect(objs).To(HaveKey("Deployment meshguard-system/prod-mg-controller-manager"))
		objs = rendered(t, "prod", map[string]any{"fullnameOverride": "security"})
		g.Expect(objs).To(HaveKey("Deployment meshguard-system/security-controller-manager"))
		g.Expect(objs).To(HaveKey("ClusterRole /security-metrics-reader"))
		for k := range objs {
			if u := objs[k]; u.GetKind() != "CustomResourceDefinition" && u.GetKind() != "Namespace" {
				g.Expect(u.GetName()).To(HavePrefix("security-"), k)
			}
		}
	})
	t.Run("serviceAccount.create=false binds the named existing account", func(t *testing.T) {
		g := NewWithT(t)
		objs := rendered(t, "meshguard", map[string]any{"serviceAccount": map[string]any{"create": false, "name": "platform-sa"}})
		for k, u := range objs {
			g.Expect(u.GetKind()).NotTo(Equal("ServiceAccount"), k)
		}
		g.Expect(managerDeployment(t, objs).Spec.Template.Spec.ServiceAccountName).To(Equal("platform-sa"))
		binding := &rbacv1.ClusterRoleBinding{}
		g.Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(objs["ClusterRoleBinding /meshguard-manager-rolebinding"].Object, binding)).To(Succeed())
		g.Expect(binding.Subjects).To(ConsistOf(rbacv1.Subject{Kind: "ServiceAccount", Name: "platform-sa", Namespace: "meshguard-system"}))
	})
	t.Run("podSecurityContext, securityContext and extraEnv reach the pod", func(t *testing.T) {
		g := NewWithT(t)
		d := managerDeployment(t, rendered(t, "meshguard", map[string]any{
			"podSecurityContext": map[string]any{"runAsNonRoot": true, "fsGroup": 65532, "seccompProfile": map[string]any{"type": "RuntimeDefault"}},
			"securityContext":    map[string]any{"readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false, "capabilities": map[string]any{"drop": []any{"ALL"}}},
			"extraEnv":           []any{map[string]any{"name": "HTTPS_PROXY", "value": "http://proxy.example.com:3128"}},
		}))
		g.Expect(*d.Spec.Template.Spec.SecurityContext.FSGroup).To(BeEquivalentTo(65532))
		c := d.Spec.Template.Spec.Containers[0]
		// Helm coalesces a map value with the chart's default (pkg/chart/common/util/coalesce.go):
		// keys the user sets win, the others stay, and a key set to null is removed.
		g.Expect(*c.SecurityContext.ReadOnlyRootFilesystem).To(BeTrue())
		g.Expect(*c.SecurityContext.RunAsUser).To(BeEquivalentTo(65532), "a default the value does not name stays")
		d = managerDeployment(t, rendered(t, "meshguard", map[string]any{"securityContext": map[string]any{"runAsUser": nil, "runAsGroup": nil}}))
		g.Expect(d.Spec.Template.Spec.Containers[0].SecurityContext.RunAsUser).To(BeNil(), "null removes a default")
		g.Expect(c.Env).To(ConsistOf(corev1.EnvVar{Name: "HTTPS_PROXY", Value: "http://proxy.example.com:3128"}))
		_, err := renderChart(t, "meshguard", "meshguard-system", map[string]any{"extraEnv": []any{map[string]any{"value": "x"}}})
		g.Expect(err).To(MatchError(ContainSubstring("extraEnv")), "an env var without a name is refused")
	})
	t.Run("no PodDisruptionBudget that would block a drain", func(t *testing.T) {
		g := NewWithT(t)
		hasPDB := func(values map[string]any) bool {
			for _, u := range rendered(t, "meshguard", values) {
				if u.GetKind() == "PodDisruptionBudget" {
					return true
				}
			}
			return false
		}
		g.Expect(hasPDB(nil)).To(BeTrue(), "two replicas, minAvailable 1: a drain can evict one")
		g.Expect(hasPDB(map[string]any{"replicaCount": 1})).To(BeFalse(), "one replica with minAvailable 1 would never be evicted")
		g.Expect(hasPDB(map[string]any{"replicaCount": 2, "podDisruptionBudget": map[string]any{"minAvailable": 2}})).To(BeFalse())
		g.Expect(hasPDB(map[string]any{"replicaCount": 1, "podDisruptionBudget": map[string]any{"minAvailable": "50%"}})).To(BeFalse())
		g.Expect(hasPDB(map[string]any{"replicaCount": 3, "podDisruptionBudget": map[string]any{"minAvailable": 2}})).To(BeTrue())
	})
	t.Run("crds.enabled and crds.keep", func(t *testing.T) {
		g := NewWithT(t)
		for _, u := range rendered(t, "meshguard", map[string]any{"crds": map[string]any{"enabled": false}}) {
			g.Expect(u.GetKind()).NotTo(Equal("CustomResourceDefinition"))
		}
		n := 0
		for _, u := range rendered(t, "meshguard", map[string]any{"crds": map[string]any{"keep": false}}) {
			if u.GetKind() == "CustomResourceDefinition" {
				n++
				g.Expect(u.GetAnnotations()).NotTo(HaveKey("helm.sh/resource-policy"))
				g.Expect(u.GetLabels()).To(HaveKeyWithValue("app.kubernetes.io/managed-by", "Helm"))
			}
		}
		g.Expect(n).To(Equal(len(configCRDs(t))))
	})
	t.Run("profiles are aggregated into the view, edit and admin roles", func(t *testing.T) {
		g := NewWithT(t)
		objs := rendered(t, "meshguard", nil)
		viewer, editor := objs["ClusterRole /meshguard-profile-viewer-role"], objs["ClusterRole /meshguard-profile-editor-role"]
		g.Expect(viewer).NotTo(BeNil())
		g.Expect(editor).NotTo(BeNil())
		g.Expect(viewer.GetLabels()).To(HaveKeyWithValue("rbac.authorization.k8s.io/aggregate-to-view", "true"))
		g.Expect(editor.GetLabels()).To(HaveKeyWithValue("rbac.authorization.k8s.io/aggregate-to-edit", "true"))
		g.Expect(editor.GetLabels()).To(HaveKeyWithValue("rbac.authorization.k8s.io/aggregate-to-admin", "true"))
		role := &rbacv1.ClusterRole{}
		g.Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(viewer.Object, role)).To(Succeed())
		for _, r := range role.Rules {
			g.Expect(r.Verbs).To(ConsistOf("get", "list", "watch"), "view only reads")
			g.Expect(r.Resources).NotTo(ContainElement("clustermeshsecurityprofiles"), "floors stay platform policy")
		}
		for _, u := range rendered(t, "meshguard", map[string]any{"rbac": map[string]any{"aggregateToDefaultRoles": false}}) {
			g.Expect(u.GetName()).NotTo(ContainSubstring("profile-viewer"))
		}
	})
}
