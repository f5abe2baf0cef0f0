// Package oldlinkerd runs meshguard against the CRDs of a Linkerd older than it supports: Linkerd's
// own chart with the Server CRD as Linkerd 2.15 and earlier served it (no policy.linkerd.io/v1beta3,
// which added accessPolicy). The profile must say which version is missing, not pretend to be
// protected, and the manager must keep running.
package oldlinkerd

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/test/crds"
	"github.com/meshguard/meshguard/test/integration/inprocess"
	"github.com/meshguard/meshguard/test/testenv"
)

// withoutServerV1beta3 drops v1beta3 from the Server CRD and stores v1beta1 instead, as the
// linkerd-crds chart of Linkerd 2.15 and earlier did.
func withoutServerV1beta3(t *testing.T, in []*apiextensionsv1.CustomResourceDefinition) []*apiextensionsv1.CustomResourceDefinition {
	for _, c := range in {
		if c.Name != "servers.policy.linkerd.io" {
			continue
		}
		var kept []apiextensionsv1.CustomResourceDefinitionVersion
		for _, v := range c.Spec.Versions {
			if v.Name == "v1beta3" {
				continue
			}
			v.Storage = v.Name == "v1beta1"
			kept = append(kept, v)
		}
		c.Spec.Versions = kept
		return in
	}
	t.Fatal("the chart has no servers.policy.linkerd.io CRD")
	return nil
}

func TestALinkerdThatDoesNotServeServerV1beta3IsReportedNotProtected(t *testing.T) {
	g := NewWithT(t)
	logf.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	lk, err := crds.LinkerdCRDs()
	if errors.Is(err, crds.ErrLinkerdUnavailable) && crds.SkipLinkerd() {
		t.Skipf("%s=1: %v", crds.SkipLinkerdEnv, err)
	}
	g.Expect(err).NotTo(HaveOccurred())

	scheme := inprocess.Scheme()
	utilruntime.Must(apiextensionsv1.AddToScheme(scheme))
	env, err := testenv.New(testenv.NoMesh)
	g.Expect(err).NotTo(HaveOccurred())
	env.CRDs = withoutServerV1beta3(t, lk)
	cfg, err := env.Start()
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { g.Expect(env.Stop()).To(Succeed()) }()

	mg, err := inprocess.Start(cfg, inprocess.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = mg.Stop() }()
	ctx, k8s := context.Background(), mg.Client
	g.Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "payments"}})).To(Succeed())
	p := &v1alpha1.MeshSecurityProfile{ObjectMeta: metav1.ObjectMeta{Namespace: "payments", Name: "p"},
		Spec: v1alpha1.MeshSecurityProfileSpec{Mesh: v1alpha1.MeshLinkerd, Authorization: &v1alpha1.AuthorizationSpec{
			Rules: []v1alpha1.AuthorizationRule{{Name: "web", Action: v1alpha1.ActionAllow,
				Selector: &v1alpha1.WorkloadSelector{MatchLabels: map[string]string{"app": "api"}},
				From:     &v1alpha1.RuleSource{ServiceAccounts: []v1alpha1.ServiceAccountRef{"frontend/web"}},
				To:       &v1alpha1.RuleTarget{Ports: []int32{8080}}}}}}}
	g.Expect(k8s.Create(ctx, p)).To(Succeed())

	applied := func() string {
		cur := &v1alpha1.MeshSecurityProfile{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(p), cur); err != nil {
			return err.Error()
		}
		c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionPoliciesApplied)
		if c == nil || cur.Status.ObservedGeneration != cur.Generation {
			return ""
		}
		return c.Reason + ": " + c.Message
	}
	g.Eventually(applied, 20*time.Second, 100*time.Millisecond).Should(HavePrefix(v1alpha1.ReasonLinkerdNotInstalled + ": "))
	t.Logf("PoliciesApplied: %s", applied())

	cur := &v1alpha1.MeshSecurityProfile{}
	g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(p), cur)).To(Succeed())
	g.Expect(meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionFalse), "not protected as the profile says")
	g.Expect(meta.IsStatusConditionTrue(cur.Status.Conditions, v1alpha1.ConditionReconciling)).To(BeTrue(), "it waits for the CRDs, it is not stalled")
	var server *v1alpha1.ResourceStatus
	for i, row := range cur.Status.Resources {
		t.Logf("row: %s %s %s: %s", row.APIVersion, row.Kind, row.State, row.Message)
		if row.Kind == "Server" {
			server = &cur.Status.Resources[i]
		}
	}
	g.Expect(server).NotTo(BeNil())
	g.Expect(server.State).To(Equal(v1alpha1.ResourcePending))
	g.Expect(server.Message).To(ContainSubstring("policy.linkerd.io/v1beta3"), "the row names the version that is missing")

	// Upgrading Linkerd's CRDs is picked up without restarting meshguard.
	current, err := crds.LinkerdCRDs()
	g.Expect(err).NotTo(HaveOccurred())
	for _, c := range current {
		if c.Name != "servers.policy.linkerd.io" {
			continue
		}
		live := &apiextensionsv1.CustomResourceDefinition{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Name: c.Name}, live)).To(Succeed())
		live.Spec.Versions = c.Spec.Versions
		g.Expect(k8s.Update(ctx, live)).To(Succeed())
	}
	upgraded := time.Now()
	g.Eventually(applied, 90*time.Second, 200*time.Millisecond).Should(HavePrefix(v1alpha1.ReasonSucceeded + ": "))
	t.Logf("applied %s after the CRD upgrade", time.Since(upgraded).Round(100*time.Millisecond))
}
