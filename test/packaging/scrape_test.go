package packaging

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/storage"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/hack/bundle/kustomize"
)

// operatorScrapeConfig is the scrape config the Prometheus Operator generates for endpoint 0 of a
// ServiceMonitor (role endpoints): honor_labels from the endpoint's honorLabels, then the target
// labels the operator always adds, `namespace` from the Service's namespace first among them. The
// shape is the operator's own golden file
// (github.com/prometheus-operator/prometheus-operator pkg/prometheus/testdata/HonorLabelsOverriding.golden);
// the module that generates it is not served here, so the ServiceMonitor's fields are carried over
// one by one.
func operatorScrapeConfig(t *testing.T, sm *monitoringv1.ServiceMonitor) string {
	t.Helper()
	if len(sm.Spec.Endpoints) != 1 {
		t.Fatalf("ServiceMonitor %s has %d endpoints, want 1", sm.Name, len(sm.Spec.Endpoints))
	}
	ep := sm.Spec.Endpoints[0]
	insecure := ep.TLSConfig != nil && ep.TLSConfig.InsecureSkipVerify != nil && *ep.TLSConfig.InsecureSkipVerify
	return fmt.Sprintf(`
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
- job_name: serviceMonitor/%[1]s/%[2]s/0
  honor_labels: %[3]t
  metrics_path: %[4]s
  scheme: %[5]s
  tls_config:
    insecure_skip_verify: %[6]t
  relabel_configs:
  - source_labels: [job]
    target_label: __tmp_prometheus_job_name
  - action: keep
    source_labels: [__meta_kubernetes_endpoint_port_name]
    regex: %[7]s
  - source_labels: [__meta_kubernetes_namespace]
    target_label: namespace
  - source_labels: [__meta_kubernetes_service_name]
    target_label: service
  - source_labels: [__meta_kubernetes_pod_name]
    target_label: pod
  - source_labels: [__meta_kubernetes_pod_container_name]
    target_label: container
  - source_labels: [__meta_kubernetes_service_name]
    target_label: job
    replacement: ${1}
  - target_label: endpoint
    replacement: %[7]s
`, sm.Namespace, sm.Name, ep.HonorLabels, ep.Path, endpointScheme(ep), insecure, ep.Port)
}

// endpointScheme is the endpoint's scheme, http when it sets none (as the operator defaults it).
func endpointScheme(ep monitoringv1.Endpoint) string {
	if ep.Scheme == nil {
		return "http"
	}
	return strings.ToLower(string(*ep.Scheme))
}

// capture is a storage.AppendableV2 that keeps the label sets the scrape loop appends.
type capture struct {
	mu     sync.Mutex
	series []labels.Labels
}

func (c *capture) AppenderV2(context.Context) storage.AppenderV2 { return &captureAppender{c: c} }

func (c *capture) find(name string) (labels.Labels, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.series {
		if l.Get(model.MetricNameLabel) == name {
			return l, true
		}
	}
	return labels.EmptyLabels(), false
}

type captureAppender struct {
	c       *capture
	pending []labels.Labels
}

func (a *captureAppender) Append(_ storage.SeriesRef, ls labels.Labels, _, _ int64, _ float64, _ *histogram.Histogram, _ *histogram.FloatHistogram, _ storage.AppendV2Options) (storage.SeriesRef, error) {
	a.pending = append(a.pending, ls.Copy())
	return 0, nil
}

func (a *captureAppender) Commit() error {
	a.c.mu.Lock()
	defer a.c.mu.Unlock()
	a.c.series = append(a.c.series, a.pending...)
	return nil
}

func (a *captureAppender) Rollback() error { return nil }

// scrapeThroughPrometheus scrapes a target serving body with Prometheus' own scrape manager,
// configured as the Prometheus Operator configures it for sm, the target discovered as the
// Kubernetes endpoints role discovers meshguard's metrics Service in meshguard's namespace. It
// returns the stored labels of the series named metric.
func scrapeThroughPrometheus(t *testing.T, sm *monitoringv1.ServiceMonitor, body, metric string) labels.Labels {
	t.Helper()
	g := NewWithT(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write([]byte(body))
	}))
	if endpointScheme(sm.Spec.Endpoints[0]) == "https" {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	defer srv.Close()
	u, err := url.Parse(srv.URL)
	g.Expect(err).NotTo(HaveOccurred())

	cfg, err := config.Load(operatorScrapeConfig(t, sm), promslog.NewNopLogger())
	g.Expect(err).NotTo(HaveOccurred())
	store := &capture{}
	m, err := scrape.NewManager(&scrape.Options{DiscoveryReloadInterval: model.Duration(50 * time.Millisecond)},
		promslog.NewNopLogger(), nil, nil, store, prometheus.NewRegistry())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(m.ApplyConfig(cfg)).To(Succeed())
	job := cfg.ScrapeConfigs[0].JobName
	tsets := make(chan map[string][]*targetgroup.Group, 1)
	tsets <- map[string][]*targetgroup.Group{job: {{
		Source: "endpoints/" + sm.Namespace,
		Targets: []model.LabelSet{{
			model.AddressLabel:                     model.LabelValue(u.Host),
			"__meta_kubernetes_namespace":          model.LabelValue(sm.Namespace),
			"__meta_kubernetes_service_name":       "meshguard-controller-manager-metrics-service",
			"__meta_kubernetes_pod_name":           "meshguard-controller-manager-7c9d5-abcde",
			"__meta_kubernetes_pod_container_name": "manager",
			"__meta_kubernetes_endpoint_port_name": model.LabelValue(sm.Spec.Endpoints[0].Port),
		}},
	}}}
	go func() { _ = m.Run(tsets) }()
	defer m.Stop()
	var got labels.Labels
	g.Eventually(func() bool {
		var ok bool
		got, ok = store.find(metric)
		return ok
	}, 30*time.Second, 100*time.Millisecond).Should(BeTrue(), "Prometheus scraped %s", metric)
	return got
}

// serviceMonitors are meshguard's ServiceMonitors as users get them: `kustomize build
// config/prometheus` and the chart rendered by Helm.
func serviceMonitors(t *testing.T) map[string]*monitoringv1.ServiceMonitor {
	t.Helper()
	out := map[string]*monitoringv1.ServiceMonitor{}
	fromKustomize, err := kustomize.Build(filepath.Join(root, "config", "prometheus"))
	if err != nil {
		t.Fatal(err)
	}
	fromChart, err := renderChart(t, "meshguard", "meshguard-system", map[string]any{"serviceMonitor": map[string]any{"enabled": true}})
	if err != nil {
		t.Fatal(err)
	}
	for source, objs := range map[string][]*unstructured.Unstructured{"config/prometheus": fromKustomize, "the chart": fromChart} {
		for _, u := range objs {
			if u.GetKind() != "ServiceMonitor" {
				continue
			}
			sm := &monitoringv1.ServiceMonitor{}
			b, _ := yaml.Marshal(u.Object)
			if err := yaml.UnmarshalStrict(b, sm); err != nil {
				t.Fatalf("%s: not a ServiceMonitor: %v", source, err)
			}
			out[source] = sm
		}
	}
	if len(out) != 2 {
		t.Fatalf("want the ServiceMonitor of config/prometheus and of the chart, got %d", len(out))
	}
	return out
}

// TestTheScrapedSeriesKeepTheProfilesNamespace scrapes a meshguard series through Prometheus'
// scrape code with the scrape config the Prometheus Operator makes of each of meshguard's
// ServiceMonitors: the series' `namespace` (the profile's) must survive the operator's target
// label `namespace` (meshguard's own), or every per-profile alert names meshguard's namespace.
// The control case proves the check can fail: without honorLabels the profile's namespace is
// renamed exported_namespace.
func TestTheScrapedSeriesKeepTheProfilesNamespace(t *testing.T) {
	const body = "# TYPE meshguard_profile_ready gauge\nmeshguard_profile_ready{namespace=\"shop\",profile=\"default\"} 0\n"
	for source, sm := range serviceMonitors(t) {
		t.Run(source, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(sm.Spec.Endpoints[0].HonorLabels).To(BeTrue())
			got := scrapeThroughPrometheus(t, sm, body, "meshguard_profile_ready")
			g.Expect(got.Get("namespace")).To(Equal("shop"), "stored series: %s", got)
			g.Expect(got.Get("profile")).To(Equal("default"))
			g.Expect(got.Has("exported_namespace")).To(BeFalse())
			g.Expect(got.Get("pod")).To(HavePrefix("meshguard-controller-manager-"), "the operator's other target labels stay")
		})
	}
	t.Run("control: without honorLabels the target label wins", func(t *testing.T) {
		g := NewWithT(t)
		sm := serviceMonitors(t)["config/prometheus"].DeepCopy()
		sm.Spec.Endpoints[0].HonorLabels = false
		got := scrapeThroughPrometheus(t, sm, body, "meshguard_profile_ready")
		g.Expect(got.Get("namespace")).To(Equal(sm.Namespace))
		g.Expect(got.Get("exported_namespace")).To(Equal("shop"))
	})
}
