package packaging

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Field managers as the API server records them: Helm 4 applies server-side as "helm" (its
// binary's name, helm.sh/helm/v4 pkg/kube getManagedFieldsManager) without forcing conflicts
// unless --force-conflicts is given; `kubectl apply --server-side` applies as "kubectl".
const (
	helmManager    = "helm"
	kubectlManager = "kubectl"
)

// TestTheChartsCRDUpgradeDoesNotConflictWithHelm reproduces, on the real API server, the conflict
// the old upgrade procedure ran into (`kubectl apply --server-side -f charts/meshguard/crds/`, then
// `helm upgrade`), and checks the procedure the guide gives now: the CRD is a template, so
// `helm upgrade` alone applies it as the field manager that created it. The CRD is the chart's,
// rendered by Helm's engine, under a test group so that the cluster's own CRD is untouched; the
// "new version" changes a description that the old one set.
func TestTheChartsCRDUpgradeDoesNotConflictWithHelm(t *testing.T) {
	g := NewWithT(t)
	objs, err := renderChart(t, "meshguard", "meshguard-system", nil)
	g.Expect(err).NotTo(HaveOccurred())
	var crd *unstructured.Unstructured
	for _, u := range objs {
		if u.GetKind() == "CustomResourceDefinition" && u.GetName() == "meshsecurityprofiles.security.meshguard.dev" {
			crd = u
		}
	}
	g.Expect(crd).NotTo(BeNil(), "the chart renders the CRD")
	version := func(description string) *unstructured.Unstructured {
		c := crd.DeepCopy()
		c.SetName("meshsecurityprofiles.upgrade.meshguard.dev")
		g.Expect(unstructured.SetNestedField(c.Object, "upgrade.meshguard.dev", "spec", "group")).To(Succeed())
		versions, _, _ := unstructured.NestedSlice(c.Object, "spec", "versions")
		g.Expect(versions).NotTo(BeEmpty())
		v := versions[0].(map[string]any)
		g.Expect(unstructured.SetNestedField(v, description, "schema", "openAPIV3Schema", "description")).To(Succeed())
		versions[0] = v
		g.Expect(unstructured.SetNestedSlice(c.Object, versions, "spec", "versions")).To(Succeed())
		return c
	}
	crds := cluster.dynamic.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	apply := func(u *unstructured.Unstructured, manager string, force bool) error {
		_, err := crds.Apply(context.Background(), u.GetName(), u, metav1.ApplyOptions{FieldManager: manager, Force: force})
		return err
	}
	description := func() string {
		live, err := crds.Get(context.Background(), "meshsecurityprofiles.upgrade.meshguard.dev", metav1.GetOptions{})
		g.Expect(err).NotTo(HaveOccurred())
		versions, _, _ := unstructured.NestedSlice(live.Object, "spec", "versions")
		d, _, _ := unstructured.NestedString(versions[0].(map[string]any), "schema", "openAPIV3Schema", "description")
		return d
	}
	t.Cleanup(func() {
		_ = crds.Delete(context.Background(), "meshsecurityprofiles.upgrade.meshguard.dev", metav1.DeleteOptions{})
	})

	// helm install: the release's CRD, applied server-side by helm
	g.Expect(apply(version("release 1"), helmManager, false)).To(Succeed())

	// the old procedure: kubectl apply --server-side of the new CRD conflicts with helm
	err = apply(version("release 2"), kubectlManager, false)
	g.Expect(apierrors.IsConflict(err)).To(BeTrue(), "reproduced: %v", err)
	g.Expect(err.Error()).To(ContainSubstring(`conflict with "helm"`))
	g.Expect(description()).To(Equal("release 1"))

	// the procedure now: helm upgrade applies the templated CRD as helm, without a conflict
	g.Expect(apply(version("release 2"), helmManager, false)).To(Succeed())
	g.Expect(description()).To(Equal("release 2"))

	// after someone forced the CRD with kubectl, helm upgrade conflicts until --force-conflicts, once
	g.Expect(apply(version("release 3"), kubectlManager, true)).To(Succeed())
	err = apply(version("release 4"), helmManager, false)
	g.Expect(apierrors.IsConflict(err)).To(BeTrue(), "%v", err)
	g.Expect(apply(version("release 4"), helmManager, true)).To(Succeed())
	g.Expect(apply(version("release 5"), helmManager, false)).To(Succeed(), "helm owns the fields again")
	g.Expect(description()).To(Equal("release 5"))
}
