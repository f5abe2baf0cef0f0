// Package fleet runs meshguard against a real API server the way a fleet sees it: the
// PolicyReport it writes once the Policy WG's CRD is served (and only then), the status summary
// read with the JSONPaths of the Open Cluster Management sample (config/samples/fleet), and a
// primary-remote Istio remote cluster, where it writes nothing.
package fleet

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	fleetsamples "github.com/meshguard/meshguard/config/samples/fleet"
	"github.com/meshguard/meshguard/internal/certs/certstest"
	"github.com/meshguard/meshguard/internal/policyreport"
	"github.com/meshguard/meshguard/test/crds"
	"github.com/meshguard/meshguard/test/integration/inprocess"
	"github.com/meshguard/meshguard/test/testenv"
)

var gvkAP = schema.GroupVersionKind{Group: "security.istio.io", Version: "v1", Kind: "AuthorizationPolicy"}

// cluster is one started API server with meshguard's reconciler running against it.
type cluster struct {
	cfg    *rest.Config
	k8s    client.Client
	rootCA *certstest.Cert
	// reportApplies counts the reconciler's writes of PolicyReports.
	reportApplies *atomic.Int64
}

// applyCounter counts server-side applies of PolicyReports (a no-op apply leaves the object's
// resourceVersion alone, so only counting tells that nothing was sent).
type applyCounter struct {
	client.Client
	n *atomic.Int64
}

func (a applyCounter) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
	// controller-runtime's apply configuration of an unstructured object embeds it.
	if u, ok := obj.(interface{ GetKind() string }); ok && u.GetKind() == policyreport.GroupVersionKind.Kind {
		a.n.Add(1)
	}
	return a.Client.Apply(ctx, obj, opts...)
}

func start(t *testing.T) *cluster {
	t.Helper()
	g := NewWithT(t)
	env, err := testenv.New(testenv.Istio)
	g.Expect(err).NotTo(HaveOccurred())
	cfg, err := env.Start()
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = env.Stop() })
	k8s, err := client.New(cfg, client.Options{Scheme: inprocess.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())

	ca, err := certstest.MintCA(certstest.WithSubject("Istio test root"))
	g.Expect(err).NotTo(HaveOccurred())
	ctx := context.Background()
	g.Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "istio-system"}})).To(Succeed())
	g.Expect(k8s.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "istio-system", Name: "istio-ca-secret"},
		Data:       map[string][]byte{"ca-cert.pem": ca.CertPEM, "ca-key.pem": ca.KeyPEM},
	})).To(Succeed())

	applies := &atomic.Int64{}
	// Each test starts a manager of its own in this process: the controller names repeat.
	skip := true
	mg, err := inprocess.Start(cfg, inprocess.Options{Floors: true, Controller: controller.Options{SkipNameValidation: &skip},
		// Short, so that the served kinds are looked at again soon; production uses 5 minutes.
		CertificateRecheck: 2 * time.Second,
		WrapClient:         func(c client.Client) client.Client { return applyCounter{Client: c, n: applies} }})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = mg.Stop() })
	return &cluster{cfg: cfg, k8s: k8s, rootCA: ca, reportApplies: applies}
}

// namespace creates a namespace with Istio's root certificate, as istiod would publish it.
func (c *cluster) namespace(t *testing.T, name string) {
	t.Helper()
	ctx := context.Background()
	NewWithT(t).Expect(c.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
	NewWithT(t).Expect(c.k8s.Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: "istio-ca-root-cert"},
		Data:       map[string]string{"root-cert.pem": string(c.rootCA.CertPEM)},
	})).To(Succeed())
}

func shopProfile(ns string) *v1alpha1.MeshSecurityProfile {
	return &v1alpha1.MeshSecurityProfile{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "baseline"},
		Spec: v1alpha1.MeshSecurityProfileSpec{
			Mesh:          v1alpha1.MeshIstio,
			MTLS:          &v1alpha1.MTLSSpec{Mode: v1alpha1.MTLSStrict},
			Authorization: &v1alpha1.AuthorizationSpec{DefaultDeny: true},
		},
	}
}

// feedback reads the profile as OCM's work agent reads it with the sample's feedbackRules.
func (c *cluster) feedback(t *testing.T, ns, name string) map[string]any {
	t.Helper()
	paths, err := fleetsamples.ProfileFeedbackPaths()
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("MeshSecurityProfile"))
	if err := c.k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		return map[string]any{"error": err.Error()}
	}
	gen, _, _ := unstructured.NestedInt64(u.Object, "metadata", "generation")
	values, err := fleetsamples.Feedback(u.Object, paths)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	if values["observedGeneration"] != gen {
		return map[string]any{"observedGeneration": "not yet"}
	}
	return values
}

// report returns the profile's PolicyReport: rule → result, the names its results refer to,
// and its resourceVersion; nil when there is none.
func (c *cluster) report(ns, profile string) (map[string]string, []string, string) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(policyreport.GroupVersionKind)
	if err := c.k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: policyreport.Name(profile)}, u); err != nil {
		return nil, nil, ""
	}
	rules := map[string]string{}
	var names []string
	results, _, _ := unstructured.NestedSlice(u.Object, "results")
	for _, r := range results {
		m := r.(map[string]any)
		rules[m["rule"].(string)] = m["result"].(string)
		res, _ := m["resources"].([]any)
		for _, x := range res {
			names = append(names, x.(map[string]any)["kind"].(string)+"/"+x.(map[string]any)["name"].(string))
		}
	}
	return rules, names, u.GetResourceVersion()
}

func TestPolicyReportsAppearWithTheirCRDFollowTheFindingsAndRest(t *testing.T) {
	c := start(t)
	g := NewWithT(t)
	ctx := context.Background()
	c.namespace(t, "shop")
	g.Expect(c.k8s.Create(ctx, shopProfile("shop"))).To(Succeed())

	t.Log("without the PolicyReport CRD the profile converges and the summary reads as the OCM sample reads it")
	g.Eventually(func() map[string]any { return c.feedback(t, "shop", "baseline") }, 30*time.Second, 200*time.Millisecond).
		Should(And(HaveKeyWithValue("ready", "True"), HaveKeyWithValue("effective", "True"), HaveKeyWithValue("driftCount", int64(0)),
			HaveKeyWithValue("dataPlane", "NoPods"), HaveKey("earliestCertificateExpiry")))

	t.Log("the CRD installed while meshguard runs: the report appears, every class passing")
	prCRDs, err := crds.PolicyReportCRDs(testenv.RepoRoot())
	g.Expect(err).NotTo(HaveOccurred())
	_, err = envtest.InstallCRDs(c.cfg, envtest.CRDInstallOptions{CRDs: prCRDs})
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func() map[string]string { r, _, _ := c.report("shop", "baseline"); return r }, 30*time.Second, 200*time.Millisecond).
		Should(Equal(map[string]string{
			policyreport.RuleApplied: "pass", policyreport.RuleInSync: "pass", policyreport.RuleNotWeakened: "pass",
			policyreport.RuleCertificates: "pass", policyreport.RuleEnforceable: "pass", policyreport.RuleAtFloor: "pass",
		}))

	t.Log("a foreign allow-all policy: not-weakened fails and names it; the summary says Effective False")
	allowAll := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"rules": []any{map[string]any{}}}}}
	allowAll.SetGroupVersionKind(gvkAP)
	allowAll.SetNamespace("shop")
	allowAll.SetName("allow-all")
	g.Expect(c.k8s.Create(ctx, allowAll)).To(Succeed())
	g.Eventually(func() string { r, _, _ := c.report("shop", "baseline"); return r[policyreport.RuleNotWeakened] }, 20*time.Second, 200*time.Millisecond).Should(Equal("fail"))
	_, names, _ := c.report("shop", "baseline")
	g.Expect(names).To(ContainElement("AuthorizationPolicy/allow-all"))
	// The report is written before the status patch of the same reconcile: wait for the status.
	g.Eventually(func() map[string]any { return c.feedback(t, "shop", "baseline") }, 10*time.Second, 200*time.Millisecond).
		Should(And(HaveKeyWithValue("ready", "False"), HaveKeyWithValue("effective", "False")))

	t.Log("the policy removed: the failure disappears")
	g.Expect(c.k8s.Delete(ctx, allowAll)).To(Succeed())
	g.Eventually(func() string { r, _, _ := c.report("shop", "baseline"); return r[policyreport.RuleNotWeakened] }, 20*time.Second, 200*time.Millisecond).Should(Equal("pass"))
	_, names, _ = c.report("shop", "baseline")
	g.Expect(names).NotTo(ContainElement("AuthorizationPolicy/allow-all"))
	g.Eventually(func() map[string]any { return c.feedback(t, "shop", "baseline") }, 10*time.Second, 200*time.Millisecond).
		Should(And(HaveKeyWithValue("ready", "True"), HaveKeyWithValue("effective", "True")))

	t.Log("at rest (certificate rechecks every 2s, served kinds asked again after 5s) nothing is written")
	_, _, rv := c.report("shop", "baseline")
	applies := c.reportApplies.Load()
	g.Expect(applies).To(BeNumerically(">=", 3), "the counter sees the writes (created, failed, passed again)")
	p := &v1alpha1.MeshSecurityProfile{}
	g.Expect(c.k8s.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "baseline"}, p)).To(Succeed())
	time.Sleep(7 * time.Second)
	_, _, rv2 := c.report("shop", "baseline")
	p2 := &v1alpha1.MeshSecurityProfile{}
	g.Expect(c.k8s.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "baseline"}, p2)).To(Succeed())
	g.Expect(rv2).To(Equal(rv), "the report is not rewritten")
	g.Expect(c.reportApplies.Load()).To(Equal(applies), "nor even sent again")
	g.Expect(p2.ResourceVersion).To(Equal(p.ResourceVersion), "nor the profile")

	t.Log("a second profile in the namespace does not govern it and gets no report")
	second := shopProfile("shop")
	second.Name = "second"
	g.Expect(c.k8s.Create(ctx, second)).To(Succeed())
	g.Eventually(func() string {
		cur := &v1alpha1.MeshSecurityProfile{}
		_ = c.k8s.Get(ctx, client.ObjectKeyFromObject(second), cur)
		if s := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionStalled); s != nil {
			return s.Reason
		}
		return ""
	}, 20*time.Second, 200*time.Millisecond).Should(Equal(v1alpha1.ReasonProfileConflict))
	r, _, _ := c.report("shop", "second")
	g.Expect(r).To(BeNil())
	b, _ := json.Marshal(c.feedback(t, "shop", "second"))
	g.Expect(string(b)).To(ContainSubstring(`"ready":"False"`))
}

func TestInAnIstioRemoteClusterNothingIsWrittenAndTheProfileStalls(t *testing.T) {
	c := start(t)
	g := NewWithT(t)
	ctx := context.Background()
	// A remote cluster as Istio's primary-remote guide installs it (profile remote): no istiod,
	// the sidecar injector calling the primary's istiod, the Istio namespace annotated with the
	// primary's cluster name.
	url := "https://istiod.primary.example.com:15017/inject/cluster/cluster2/net/network1"
	none := admissionregistrationv1.SideEffectClassNone
	g.Expect(c.k8s.Create(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "istio-sidecar-injector"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: "namespace.sidecar-injector.istio.io", ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url},
			SideEffects: &none, AdmissionReviewVersions: []string{"v1"},
			// Selects nothing here, so that the test's pods are not sent to a host that does not exist.
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"never": "selected"}},
		}},
	})).To(Succeed())
	ns := &corev1.Namespace{}
	g.Expect(c.k8s.Get(ctx, client.ObjectKey{Name: "istio-system"}, ns)).To(Succeed())
	ns.Annotations = map[string]string{"topology.istio.io/controlPlaneClusters": "cluster1"}
	g.Expect(c.k8s.Update(ctx, ns)).To(Succeed())

	// A cluster floor over a namespace without a profile of its own writes nothing either.
	floor := &v1alpha1.ClusterMeshSecurityProfile{
		ObjectMeta: metav1.ObjectMeta{Name: "platform-floor"},
		Spec: v1alpha1.ClusterMeshSecurityProfileSpec{
			NamespaceSelector: metav1.LabelSelector{MatchLabels: map[string]string{"floor": "platform"}},
		},
	}
	floor.Spec.Mesh = v1alpha1.MeshIstio
	floor.Spec.MTLS = &v1alpha1.MTLSSpec{Mode: v1alpha1.MTLSStrict}
	g.Expect(c.k8s.Create(ctx, floor)).To(Succeed())
	c.namespace(t, "floored")
	fns := &corev1.Namespace{}
	g.Expect(c.k8s.Get(ctx, client.ObjectKey{Name: "floored"}, fns)).To(Succeed())
	fns.Labels = map[string]string{"floor": "platform"}
	g.Expect(c.k8s.Update(ctx, fns)).To(Succeed())

	c.namespace(t, "shop")
	p := shopProfile("shop")
	p.Spec.NetworkPolicy = &v1alpha1.NetworkPolicySpec{DefaultDeny: []v1alpha1.PolicyDirection{v1alpha1.DirectionIngress}}
	g.Expect(c.k8s.Create(ctx, p)).To(Succeed())
	g.Eventually(func() string {
		cur := &v1alpha1.MeshSecurityProfile{}
		_ = c.k8s.Get(ctx, client.ObjectKeyFromObject(p), cur)
		if s := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionStalled); s != nil && cur.Status.ObservedGeneration == cur.Generation {
			return s.Reason + ": " + s.Message
		}
		return ""
	}, 20*time.Second, 200*time.Millisecond).Should(And(
		HavePrefix(v1alpha1.ReasonIstioConfigClusterElsewhere+": "),
		ContainSubstring("istio-sidecar-injector"), ContainSubstring("cluster1")))
	g.Expect(c.feedback(t, "shop", "baseline")).To(HaveKeyWithValue("ready", "False"))

	for _, gvk := range []schema.GroupVersionKind{
		{Group: "security.istio.io", Version: "v1", Kind: "PeerAuthentication"}, gvkAP,
		{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicy"},
	} {
		l := &unstructured.UnstructuredList{}
		l.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		g.Expect(c.k8s.List(ctx, l, client.InNamespace("shop"))).To(Succeed())
		g.Expect(l.Items).To(BeEmpty(), "no %s written in a remote cluster", gvk.Kind)
	}
	g.Eventually(func() string {
		cur := &v1alpha1.ClusterMeshSecurityProfile{}
		_ = c.k8s.Get(ctx, client.ObjectKeyFromObject(floor), cur)
		if r := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionReady); r != nil {
			return string(r.Status) + "/" + r.Reason
		}
		return ""
	}, 20*time.Second, 200*time.Millisecond).Should(HavePrefix("False/"))
	pas := &unstructured.UnstructuredList{}
	pas.SetGroupVersionKind(schema.GroupVersionKind{Group: "security.istio.io", Version: "v1", Kind: "PeerAuthenticationList"})
	g.Expect(c.k8s.List(ctx, pas, client.InNamespace("floored"))).To(Succeed())
	g.Expect(pas.Items).To(BeEmpty(), "the floor writes nothing in a remote cluster")
}
