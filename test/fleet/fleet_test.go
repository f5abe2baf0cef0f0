package fleet

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	fleetsamples "github.com/meshguard/meshguard/config/samples/fleet"
	"github.com/meshguard/meshguard/internal/policyreport"
	"github.com/meshguard/meshguard/test/testenv"
)

// member is one cluster of the fleet with its own meshguard.
type member struct {
	name    string
	cluster *testenv.Cluster
	client  client.Client
	manager *testenv.Manager
}

func startMember(ctx context.Context, t *testing.T, bin, dir, name string) *member {
	t.Helper()
	g := NewWithT(t)
	dir = filepath.Join(dir, name)
	g.Expect(os.MkdirAll(dir, 0o755)).To(Succeed())
	// config/default binds Roles in the linkerd namespace: the stack creates it with Linkerd's CA.
	st, err := testenv.StartStack(ctx, dir, testenv.StackOptions{IstioCASubject: "fleet " + name + " Istio root",
		Meshes: testenv.Istio | testenv.PolicyReport, ManagerBin: bin})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(st.Stop)
	c, k8s, kubeconfig := st.Cluster, st.Client, st.ManagerKubeconfig
	g.Expect(st.CAs.CreateNamespace(ctx, k8s, "shop", nil)).To(Succeed())
	m, err := testenv.StartReadyManager(ctx, testenv.ManagerConfig{
		Bin: bin, Kubeconfig: kubeconfig, Dir: dir, Name: name, Args: []string{"--cluster-name=" + name},
	}, 60*time.Second)
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() {
		if err := m.Stop(); err != nil {
			t.Errorf("%s: the manager did not stop cleanly: %v\n%s", name, err, m.LogTail(30))
		}
	})
	return &member{name: name, cluster: c, client: k8s, manager: m}
}

// feedback reads the shop profile as OCM's work agent does with the sample's feedbackRules.
func (m *member) feedback(ctx context.Context, t *testing.T) map[string]any {
	paths, err := fleetsamples.ProfileFeedbackPaths()
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("MeshSecurityProfile"))
	if err := m.client.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "baseline"}, u); err != nil {
		return map[string]any{"error": err.Error()}
	}
	values, err := fleetsamples.Feedback(u.Object, paths)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	if gen, _, _ := unstructured.NestedInt64(u.Object, "metadata", "generation"); values["observedGeneration"] != gen {
		return map[string]any{"observedGeneration": "not yet"}
	}
	delete(values, "earliestCertificateExpiry") // each cluster has its own CA
	delete(values, "observedGeneration")
	return values
}

// report returns rule → result of the shop profile's PolicyReport, and the kinds/names it refers to.
func (m *member) report(ctx context.Context) (map[string]string, []string) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(policyreport.GroupVersionKind)
	if err := m.client.Get(ctx, client.ObjectKey{Namespace: "shop", Name: policyreport.Name("baseline")}, u); err != nil {
		return nil, nil
	}
	rules := map[string]string{}
	var refs []string
	results, _, _ := unstructured.NestedSlice(u.Object, "results")
	for _, r := range results {
		x := r.(map[string]any)
		rules[x["rule"].(string)] = x["result"].(string)
		res, _ := x["resources"].([]any)
		for _, ref := range res {
			refs = append(refs, ref.(map[string]any)["kind"].(string)+"/"+ref.(map[string]any)["name"].(string))
		}
	}
	return rules, refs
}

// ready is meshguard_profile_ready of the shop profile as the member's metrics endpoint serves it,
// selected by the cluster label: -1 when absent.
func (m *member) ready(ctx context.Context) float64 {
	text, err := m.manager.Metrics(ctx)
	if err != nil {
		return -1
	}
	v, ok := testenv.SumMetric(testenv.ParseMetrics(text), "meshguard_profile_ready",
		map[string]string{"cluster": m.name, "namespace": "shop", "profile": "baseline"})
	if !ok {
		return -1
	}
	return v
}

func TestTwoClustersOneProfileOneDiverges(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	dir := t.TempDir()
	bin, err := testenv.BuildManager(ctx, dir)
	g.Expect(err).NotTo(HaveOccurred())
	east := startMember(ctx, t, bin, dir, "east")
	west := startMember(ctx, t, bin, dir, "west")
	fleet := []*member{east, west}

	t.Log("the same profile, the one the OCM ManifestWork carries, synced to both clusters")
	mwrs, err := fleetsamples.LoadManifestWorkReplicaSet()
	g.Expect(err).NotTo(HaveOccurred())
	for _, m := range fleet {
		for _, manifest := range mwrs.Spec.ManifestWorkTemplate.Workload.Manifests {
			b, err := yaml.Marshal(manifest)
			g.Expect(err).NotTo(HaveOccurred())
			u := &unstructured.Unstructured{}
			g.Expect(yaml.Unmarshal(b, &u.Object)).To(Succeed())
			if u.GetKind() == "Namespace" {
				continue // created with Istio's root certificate, as istiod would
			}
			g.Expect(m.client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner("fleet-sync"))).To(Succeed())
		}
	}
	healthy := map[string]any{"ready": "True", "effective": "True", "driftCount": int64(0), "dataPlane": "NoPods"}
	for _, m := range fleet {
		g.Eventually(func() map[string]any { return m.feedback(ctx, t) }, 60*time.Second, 250*time.Millisecond).Should(Equal(healthy), m.name)
		g.Eventually(func() string { r, _ := m.report(ctx); return r[policyreport.RuleNotWeakened] }, 30*time.Second, 250*time.Millisecond).Should(Equal("pass"), m.name)
		g.Eventually(func() float64 { return m.ready(ctx) }, 30*time.Second, 250*time.Millisecond).Should(Equal(1.0), m.name)
	}

	t.Log("west diverges: someone adds an allow-all AuthorizationPolicy beside meshguard's")
	allowAll := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
		"metadata": map[string]any{"namespace": "shop", "name": "allow-all"},
		"spec":     map[string]any{"rules": []any{map[string]any{}}},
	}}
	g.Expect(west.client.Create(ctx, allowAll)).To(Succeed())

	g.Eventually(func() map[string]any { return west.feedback(ctx, t) }, 30*time.Second, 250*time.Millisecond).
		Should(And(HaveKeyWithValue("ready", "False"), HaveKeyWithValue("effective", "False")))
	g.Eventually(func() string { r, _ := west.report(ctx); return r[policyreport.RuleNotWeakened] }, 30*time.Second, 250*time.Millisecond).Should(Equal("fail"))
	_, refs := west.report(ctx)
	g.Expect(refs).To(ContainElement("AuthorizationPolicy/allow-all"))
	g.Eventually(func() float64 { return west.ready(ctx) }, 30*time.Second, 250*time.Millisecond).Should(Equal(0.0))

	t.Log("east is untouched, and says so in the same three places")
	g.Consistently(func() map[string]any { return east.feedback(ctx, t) }, 3*time.Second, 500*time.Millisecond).Should(Equal(healthy))
	rules, refs := east.report(ctx)
	g.Expect(rules).To(HaveKeyWithValue(policyreport.RuleNotWeakened, "pass"))
	g.Expect(refs).NotTo(ContainElement("AuthorizationPolicy/allow-all"))
	g.Expect(east.ready(ctx)).To(Equal(1.0))

	t.Log("a Karmada control plane aggregating both with the sample's Lua: one summary, west named")
	karmada, err := fleetsamples.LoadKarmadaScripts()
	g.Expect(err).NotTo(HaveOccurred())
	members := map[string]map[string]any{}
	for _, m := range []*member{east, west} {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("MeshSecurityProfile"))
		g.Expect(m.client.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "baseline"}, u)).To(Succeed())
		// As Karmada's Lua VM sees objects: decoded JSON, numbers as float64.
		b, err := u.MarshalJSON()
		g.Expect(err).NotTo(HaveOccurred())
		var obj map[string]any
		g.Expect(json.Unmarshal(b, &obj)).To(Succeed())
		members[m.name] = obj
	}
	template := map[string]any{"apiVersion": v1alpha1.GroupVersion.String(), "kind": "MeshSecurityProfile",
		"metadata": map[string]any{"namespace": "shop", "name": "baseline", "generation": 1.0, "creationTimestamp": "2026-01-01T00:00:00Z"}}
	agg, err := karmada.AggregateProfiles(template, []string{"east", "west"}, members)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(agg.Status.Summary).NotTo(BeNil())
	g.Expect([]string{string(agg.Status.Summary.Ready), agg.Status.Summary.Reason, string(agg.Status.Summary.Effective)}).To(Equal([]string{"False", "Weakened", "False"}))
	g.Expect(agg.Status.Conditions).To(HaveLen(1))
	g.Expect(agg.Status.Conditions[0].Message).To(Equal("clusters: east=True/Succeeded, west=False/Weakened"))
}
