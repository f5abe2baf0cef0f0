package packaging

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	chartcommon "helm.sh/helm/v4/pkg/chart/common"
	chartutil "helm.sh/helm/v4/pkg/chart/common/util"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/hack/bundle/kustomize"
)

var (
	chartDir = filepath.Join(root, "charts", "meshguard")
	// allOptions sets every value away from its default.
	allOptionsValues = filepath.Join(chartDir, "ci", "all-options-values.yaml")
)

// chartCopies are the chart's files that `make chart` copies from config/: the chart is generated
// from them, so a change in config/ (controller-gen's RBAC, every CRD, the alerts) reaches the chart.
func chartCopies(t *testing.T) map[string]string {
	t.Helper()
	copies := map[string]string{
		"files/role.yaml":              "config/rbac/role.yaml",
		"files/alerts.yaml":            "config/prometheus/alerts.yaml",
		"files/grafana-dashboard.json": "config/prometheus/grafana-dashboard.json",
	}
	for _, crd := range configCRDs(t) {
		copies["files/crds/"+crd] = "config/crd/bases/" + crd
	}
	return copies
}

// configCRDs are the file names of every CRD controller-gen writes into config/crd/bases.
func configCRDs(t *testing.T) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no CRD in config/crd/bases (%v)", err)
	}
	var names []string
	for _, p := range paths {
		names = append(names, filepath.Base(p))
	}
	return names
}

func TestTheChartsCopiesOfConfigAreUpToDate(t *testing.T) {
	for inChart, inConfig := range chartCopies(t) {
		want, err := os.ReadFile(filepath.Join(root, inConfig))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(chartDir, inChart))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("charts/meshguard/%s differs from %s: run `make chart`", inChart, inConfig)
		}
	}
}

func TestTheChartLoadsWithHelm(t *testing.T) {
	g := NewWithT(t)
	c, err := loader.Load(chartDir)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(c.Validate()).To(Succeed())
	g.Expect(c.Metadata.APIVersion).To(Equal(chart.APIVersionV2))
	g.Expect(c.Metadata.Name).To(Equal("meshguard"))
	g.Expect(c.Schema).NotTo(BeEmpty(), "values.schema.json is loaded")
	g.Expect(c.CRDObjects()).To(BeEmpty(), "the CRDs are templates (crds.enabled), not Helm's never-upgraded crds/")
	objs, err := renderChart(t, "meshguard", "meshguard-system", nil)
	g.Expect(err).NotTo(HaveOccurred())
	var crds []string
	for _, u := range objs {
		if u.GetKind() == "CustomResourceDefinition" {
			crds = append(crds, u.GetName())
			g.Expect(u.GetAnnotations()).To(HaveKeyWithValue("helm.sh/resource-policy", "keep"), "crds.keep is the default")
		}
	}
	g.Expect(crds).To(ConsistOf("meshsecurityprofiles.security.meshguard.dev", "clustermeshsecurityprofiles.security.meshguard.dev"))
	g.Expect(configCRDs(t)).To(HaveLen(len(crds)))
}

// TestTheChartPassesHelmLint runs `helm lint --strict` with Helm's linter: default values and
// every option set, at the oldest supported Kubernetes version; any warning fails.
func TestTheChartPassesHelmLint(t *testing.T) {
	for name, values := range map[string]map[string]any{
		"default values":   {},
		"every option set": readValues(t, allOptionsValues),
	} {
		t.Run(name, func(t *testing.T) {
			kv, err := chartcommon.ParseKubeVersion("v1.30.0")
			if err != nil {
				t.Fatal(err)
			}
			l := lint.RunAll(chartDir, values, "meshguard-system", lint.WithKubeVersion(kv))
			for _, m := range l.Messages {
				t.Log(m)
				if m.Severity >= support.WarningSev {
					t.Errorf("helm lint: %s", m)
				}
			}
		})
	}
}

func TestTheChartRefusesValuesOutsideItsSchema(t *testing.T) {
	g := NewWithT(t)
	_, err := renderChart(t, "meshguard", "meshguard-system", map[string]any{"replicaCount": 0})
	g.Expect(err).To(MatchError(ContainSubstring("replicaCount")))
	_, err = renderChart(t, "meshguard", "meshguard-system", map[string]any{"extraArgs": []any{"no-dashes"}})
	g.Expect(err).To(MatchError(ContainSubstring("extraArgs")))
	_, err = renderChart(t, "meshguard", "meshguard-system", map[string]any{"trustDomian": "typo.example.com"})
	g.Expect(err).To(MatchError(ContainSubstring("trustDomian")), "an unknown value is refused, not ignored")
}

// TestTheChartWithDefaultValuesRendersConfigDefault holds the chart and config/ together: with
// default values (and the image config/ names), the chart renders the objects of `kustomize build`
// of config/default and of the metrics Service of config/prometheus, spec for spec; only Helm's own
// labels and the Namespace (Helm's --create-namespace makes it) differ.
func TestTheChartWithDefaultValuesRendersConfigDefault(t *testing.T) {
	g := NewWithT(t)
	rendered, err := renderChart(t, "meshguard", "meshguard-system", map[string]any{"image": map[string]any{"tag": "dev"}})
	g.Expect(err).NotTo(HaveOccurred())
	want, err := kustomize.Build(filepath.Join(root, "config", "default"))
	g.Expect(err).NotTo(HaveOccurred())
	monitoring, err := kustomize.Build(filepath.Join(root, "config", "prometheus"))
	g.Expect(err).NotTo(HaveOccurred())
	for _, u := range monitoring {
		if u.GetKind() == "Service" {
			want = append(want, u)
		}
	}

	byKey := func(objs []*unstructured.Unstructured) map[string]map[string]any {
		out := map[string]map[string]any{}
		for _, u := range objs {
			if u.GetKind() == "Namespace" {
				continue
			}
			out[u.GetKind()+" "+u.GetNamespace()+"/"+u.GetName()] = normalize(u)
		}
		return out
	}
	got, exp := byKey(rendered), byKey(want)
	g.Expect(sortedKeys(got)).To(Equal(sortedKeys(exp)), "the chart renders the same objects as config/")
	for k, e := range exp {
		g.Expect(got[k]).To(Equal(e), "%s: the chart differs from config/", k)
	}
}

func TestTheChartAppliesEveryValue(t *testing.T) {
	g := NewWithT(t)
	objs, err := renderChart(t, "platform", "platform-security", readValues(t, allOptionsValues))
	g.Expect(err).NotTo(HaveOccurred())
	found := map[string]*unstructured.Unstructured{}
	for _, u := range objs {
		found[u.GetKind()+" "+u.GetNamespace()+"/"+u.GetName()] = u
	}
	g.Expect(found).To(HaveKey("ServiceMonitor platform-security/platform-meshguard-controller-manager-metrics-monitor"))
	g.Expect(found).To(HaveKey("PrometheusRule platform-security/platform-meshguard-alerts"))
	g.Expect(found).To(HaveKey("Role istio-prod/platform-meshguard-manager-role"), "the CA Secret Role moves to the Istio namespace of the values")
	g.Expect(found).To(HaveKey("RoleBinding linkerd-prod/platform-meshguard-manager-rolebinding"))
	g.Expect(found).NotTo(HaveKey(ContainSubstring(" istio-system/")))
	vap := found["ValidatingAdmissionPolicy /platform-meshguard-profile-namespaces"]
	g.Expect(vap).NotTo(BeNil())
	vars, _, _ := unstructured.NestedSlice(vap.Object, "spec", "variables")
	g.Expect(vars).To(ContainElement(HaveKeyWithValue("expression", "['istio-prod', 'istio-config', 'linkerd-prod']")), "the admission policy protects the mesh namespaces of the values")

	dep := &appsv1.Deployment{}
	g.Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(found["Deployment platform-security/platform-meshguard-controller-manager"].Object, dep)).To(Succeed())
	g.Expect(*dep.Spec.Replicas).To(BeEquivalentTo(3))
	pod := dep.Spec.Template.Spec
	c := pod.Containers[0]
	g.Expect(c.Image).To(Equal("registry.example.com/security/meshguard:0.1.0-rc.1"))
	g.Expect(string(c.ImagePullPolicy)).To(Equal("Always"))
	g.Expect(c.Args).To(ContainElements(
		"--trust-domain=prod.example.com", "--istio-namespace=istio-prod", "--istio-root-namespace=istio-config", "--linkerd-namespace=linkerd-prod",
		"--kube-api-qps=100", "--kube-api-burst=200", "--max-concurrent-reconciles=8", "--zap-log-level=debug",
		"--certificate-recheck-interval=2m", "--metrics-bind-address=:9443",
		"--dns-namespace=openshift-dns", "--dns-pod-labels=dns.operator.openshift.io/daemonset-dns=default", "--dns-ports=5353",
		"--dns-ip-blocks=169.254.20.10/32", "--istiod-pod-labels=app=istiod,istio.io/rev=prod-1-29", "--istio-ca=external"))
	// meshguard's own NetworkPolicy reaches the same DNS that profiles' allowDNS opens.
	np := &networkingv1.NetworkPolicy{}
	g.Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(found["NetworkPolicy platform-security/platform-meshguard-manager"].Object, np)).To(Succeed())
	dns := np.Spec.Egress[0]
	g.Expect(dns.To).To(HaveLen(2))
	g.Expect(dns.To[0].NamespaceSelector.MatchLabels).To(Equal(map[string]string{"kubernetes.io/metadata.name": "openshift-dns"}))
	g.Expect(dns.To[0].PodSelector.MatchLabels).To(Equal(map[string]string{"dns.operator.openshift.io/daemonset-dns": "default"}))
	g.Expect(dns.To[1].IPBlock.CIDR).To(Equal("169.254.20.10/32"))
	g.Expect(dns.Ports).To(HaveLen(2))
	g.Expect(dns.Ports[0].Port.IntValue()).To(Equal(5353))
	g.Expect(c.Resources.Limits.Cpu().String()).To(Equal("1"))
	g.Expect(pod.PriorityClassName).To(Equal("meshguard-critical"))
	g.Expect(pod.NodeSelector).To(HaveKeyWithValue("kubernetes.io/os", "linux"))
	g.Expect(pod.Tolerations).To(HaveLen(1))
	g.Expect(pod.Affinity.NodeAffinity).NotTo(BeNil())
	g.Expect(pod.TopologySpreadConstraints).To(HaveEach(HaveField("WhenUnsatisfiable", BeEquivalentTo("DoNotSchedule"))))
	g.Expect(pod.ImagePullSecrets).To(ConsistOf(HaveField("Name", "registry-credentials")))
	g.Expect(dep.Spec.Template.Labels).To(HaveKeyWithValue("example.com/team", "platform-security"))
	g.Expect(dep.Spec.Template.Annotations).To(HaveKeyWithValue("example.com/team", "platform-security"))

	binding := &rbacv1.ClusterRoleBinding{}
	g.Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(found["ClusterRoleBinding /platform-meshguard-manager-rolebinding"].Object, binding)).To(Succeed())
	g.Expect(binding.Subjects).To(ConsistOf(rbacv1.Subject{Kind: "ServiceAccount", Name: "platform-meshguard-controller-manager", Namespace: "platform-security"}))
	g.Expect(found["PodDisruptionBudget platform-security/platform-meshguard-controller-manager"].Object).To(HaveKeyWithValue("spec", HaveKeyWithValue("minAvailable", BeEquivalentTo(2))))
	svc, monitor := found["Service platform-security/platform-meshguard-controller-manager-metrics-service"], found["ServiceMonitor platform-security/platform-meshguard-controller-manager-metrics-monitor"]
	sel, _, _ := unstructured.NestedStringMap(monitor.Object, "spec", "selector", "matchLabels")
	g.Expect(sel).NotTo(BeEmpty())
	for k, v := range sel {
		g.Expect(svc.GetLabels()).To(HaveKeyWithValue(k, v), "the ServiceMonitor selects the metrics Service")
	}
	rule := found["PrometheusRule platform-security/platform-meshguard-alerts"]
	groups, _, _ := unstructured.NestedSlice(rule.Object, "spec", "groups")
	g.Expect(groups).To(HaveLen(3), "the PrometheusRule carries config/prometheus/alerts.yaml's groups")
	dashboard := found["ConfigMap platform-security/platform-meshguard-grafana-dashboard"]
	g.Expect(dashboard).NotTo(BeNil())
	g.Expect(dashboard.GetLabels()).To(HaveKeyWithValue("grafana_dashboard", "1"))
	g.Expect(dashboard.GetLabels()).To(HaveKeyWithValue("release", "kube-prometheus-stack"))
	wantDashboard, err := os.ReadFile(filepath.Join(root, "config", "prometheus", "grafana-dashboard.json"))
	g.Expect(err).NotTo(HaveOccurred())
	gotDashboard, _, _ := unstructured.NestedString(dashboard.Object, "data", "meshguard.json")
	g.Expect(gotDashboard).To(MatchJSON(wantDashboard), "the ConfigMap carries the dashboard")

	t.Run("without the optional objects", func(t *testing.T) {
		g := NewWithT(t)
		objs, err := renderChart(t, "meshguard", "meshguard-system", map[string]any{
			"podDisruptionBudget": map[string]any{"enabled": false},
			"metrics":             map[string]any{"service": map[string]any{"enabled": false}},
			"topologySpread":      map[string]any{"enabled": false},
			"admissionPolicy":     map[string]any{"enabled": false},
			"networkPolicy":       map[string]any{"enabled": false},
		})
		g.Expect(err).NotTo(HaveOccurred())
		for _, u := range objs {
			g.Expect(u.GetKind()).NotTo(BeElementOf("PodDisruptionBudget", "Service", "ServiceMonitor", "PrometheusRule", "ValidatingAdmissionPolicy", "NetworkPolicy"))
			if u.GetKind() == "Deployment" {
				_, found, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "topologySpreadConstraints")
				g.Expect(found).To(BeFalse())
			}
		}
	})
}

// TestTheChartsObjectsAreAcceptedByTheAPIServer sends everything the chart renders (the CRDs
// included) to the local kube-apiserver as a server-side dry-run, with default values and
// with every option set.
func TestTheChartsObjectsAreAcceptedByTheAPIServer(t *testing.T) {
	for _, tc := range []struct {
		name, release, namespace string
		values                   map[string]any
		meshNamespaces           []string
	}{
		{"default values", "meshguard", "meshguard-system", map[string]any{}, []string{"istio-system", "linkerd"}},
		{"every option set", "platform", "platform-security", readValues(t, allOptionsValues), []string{"istio-prod", "linkerd-prod"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, ns := range append([]string{tc.namespace}, tc.meshNamespaces...) {
				ensureNamespace(t, ns, nil)
			}
			objs, err := renderChart(t, tc.release, tc.namespace, tc.values)
			if err != nil {
				t.Fatal(err)
			}
			if len(objs) < 10 {
				t.Fatalf("only %d objects rendered: %s", len(objs), kinds(objs))
			}
			for _, err := range dryRunApply(t, objs) {
				t.Error(err)
			}
			t.Logf("accepted: %s", kinds(objs))
		})
	}
}

// renderChart renders the chart as `helm template --include-crds` does, with Helm's engine: values
// coalesced with values.yaml and validated against values.schema.json.
func renderChart(t *testing.T, release, namespace string, values map[string]any) ([]*unstructured.Unstructured, error) {
	t.Helper()
	c, err := loader.Load(chartDir)
	if err != nil {
		return nil, err
	}
	vals, err := chartutil.ToRenderValuesWithSchemaValidation(c, values,
		chartcommon.ReleaseOptions{Name: release, Namespace: namespace, IsInstall: true, Revision: 1}, nil, false)
	if err != nil {
		return nil, err
	}
	out, err := engine.Render(c, vals)
	if err != nil {
		return nil, err
	}
	var docs []string
	for _, crd := range c.CRDObjects() {
		docs = append(docs, string(crd.File.Data))
	}
	for _, name := range sortedKeys(out) {
		if strings.HasSuffix(name, "NOTES.txt") {
			continue
		}
		docs = append(docs, out[name])
	}
	var objs []*unstructured.Unstructured
	for _, d := range docs {
		dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(d), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); err == io.EOF {
				break
			} else if err != nil {
				return nil, err
			}
			if len(u.Object) > 0 {
				objs = append(objs, u)
			}
		}
	}
	return objs, nil
}

// normalize drops what legitimately differs between the chart and config/: the objects' own
// labels (the chart adds Helm's; selectors and pod template labels, which matter, are compared)
// and Helm's resource-policy annotation.
func normalize(u *unstructured.Unstructured) map[string]any {
	c := u.DeepCopy()
	unstructured.RemoveNestedField(c.Object, "metadata", "labels")
	// Helm's own annotation (crds.keep) is the chart's, like its labels.
	unstructured.RemoveNestedField(c.Object, "metadata", "annotations", "helm.sh/resource-policy")
	if a, found, _ := unstructured.NestedMap(c.Object, "metadata", "annotations"); found && len(a) == 0 {
		unstructured.RemoveNestedField(c.Object, "metadata", "annotations")
	}
	// Round-trip through YAML so that numbers compare equal whatever produced them.
	b, _ := yaml.Marshal(c.Object)
	var m map[string]any
	_ = yaml.Unmarshal(b, &m)
	return m
}

func readValues(t *testing.T, path string) map[string]any {
	t.Helper()
	v, err := chartcommon.ReadValuesFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
