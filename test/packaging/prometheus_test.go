package packaging

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

var (
	alertsFile      = filepath.Join(root, "config", "prometheus", "alerts.yaml")
	alertsTestFile  = filepath.Join(root, "config", "prometheus", "alerts_test.yaml")
	metricsListFile = filepath.Join(root, "config", "prometheus", "metrics.txt")
)

// prometheusRule reads config/prometheus/alerts.yaml into the Prometheus Operator's own type,
// refusing unknown fields.
func prometheusRule(t *testing.T) *monitoringv1.PrometheusRule {
	t.Helper()
	b, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	r := &monitoringv1.PrometheusRule{}
	if err := yaml.UnmarshalStrict(b, r); err != nil {
		t.Fatalf("alerts.yaml is not a PrometheusRule: %v", err)
	}
	return r
}

// ruleGroupsYAML is the PrometheusRule's spec as a Prometheus rule file, as the Prometheus
// Operator hands it to Prometheus.
func ruleGroupsYAML(t *testing.T) []byte {
	t.Helper()
	b, err := yaml.Marshal(prometheusRule(t).Spec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEveryAlertExpressionParsesWithPrometheusParser(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	n := 0
	for _, g := range prometheusRule(t).Spec.Groups {
		for _, r := range g.Rules {
			n++
			if _, err := p.ParseExpr(r.Expr.String()); err != nil {
				t.Errorf("group %s, alert %s: %v", g.Name, r.Alert, err)
			}
		}
	}
	if n < 9 {
		t.Fatalf("only %d rules read", n)
	}
}

// TestTheRulesAreAValidPrometheusRuleFile validates the rules as Prometheus loads them
// (rulefmt: names, durations, label and annotation templates, expressions).
func TestTheRulesAreAValidPrometheusRuleFile(t *testing.T) {
	_, errs := rulefmt.Parse(ruleGroupsYAML(t), false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Error(err)
	}
}

// prometheusSeries are the series Prometheus itself writes for every target, which no exporter
// serves (https://prometheus.io/docs/concepts/jobs_instances/#automatically-generated-labels-and-time-series).
var prometheusSeries = map[string]bool{"up": true}

// listedMetrics reads metrics.txt.
func listedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	listed := map[string]bool{}
	f, err := os.Open(metricsListFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if l := strings.TrimSpace(s.Text()); l != "" && !strings.HasPrefix(l, "#") {
			listed[l] = true
		}
	}
	return listed
}

// metricNames parses expr with Prometheus' PromQL parser and returns the metric names it selects;
// a selector that matches names by a regular expression (or none) is an error.
func metricNames(expr string) ([]string, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, sel := range parser.ExtractSelectors(e) {
		named := false
		for _, m := range sel {
			if m.Name == model.MetricNameLabel {
				if m.Type.String() != "=" {
					return nil, fmt.Errorf("%s selects metrics by a pattern, not an exact name", expr)
				}
				named = true
				names = append(names, m.Value)
			}
		}
		if !named {
			return nil, fmt.Errorf("%s has a selector without a metric name", expr)
		}
	}
	return names, nil
}

// TestEveryMetricAnAlertUsesIsListedInMetricsTxt: metrics.txt is the list the e2e suite checks
// against a running manager's /metrics, so together the two prove that no alert waits for a
// metric that does not exist.
func TestEveryMetricAnAlertUsesIsListedInMetricsTxt(t *testing.T) {
	g := NewWithT(t)
	listed := listedMetrics(t)
	used := map[string]bool{}
	for _, grp := range prometheusRule(t).Spec.Groups {
		for _, r := range grp.Rules {
			names, err := metricNames(r.Expr.String())
			g.Expect(err).NotTo(HaveOccurred(), "alert %s", r.Alert)
			for _, n := range names {
				used[n] = true
				if !prometheusSeries[n] {
					g.Expect(listed).To(HaveKey(n), "alert %s uses %s, which metrics.txt does not list (the e2e suite checks that list against a running manager)", r.Alert, n)
				}
			}
		}
	}
	g.Expect(used).NotTo(BeEmpty())
	// The others in the list are the ones the user guide documents.
	guide, err := os.ReadFile(filepath.Join(root, "docs", "user-guide.md"))
	g.Expect(err).NotTo(HaveOccurred())
	for m := range listed {
		g.Expect(string(guide)).To(ContainSubstring("`"+m+"`"), "metrics.txt lists %s: the user guide documents it", m)
	}
}

// TestTheGrafanaDashboardsQueriesParseAndNameExistingMetrics reads every query of
// config/prometheus/grafana-dashboard.json with Prometheus' PromQL parser: each parses, and each
// metric it names is in metrics.txt (which the e2e suite checks against a running manager). The
// dashboard has the panels the user guide promises.
func TestTheGrafanaDashboardsQueriesParseAndNameExistingMetrics(t *testing.T) {
	g := NewWithT(t)
	b, err := os.ReadFile(filepath.Join(root, "config", "prometheus", "grafana-dashboard.json"))
	g.Expect(err).NotTo(HaveOccurred())
	var dash struct {
		UID        string `json:"uid"`
		Templating struct {
			List []struct {
				Name string `json:"name"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			Title   string `json:"title"`
			Repeat  string `json:"repeat"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	g.Expect(json.Unmarshal(b, &dash)).To(Succeed())
	listed := listedMetrics(t)
	var titles []string
	queries := 0
	for _, p := range dash.Panels {
		titles = append(titles, p.Title)
		g.Expect(p.Targets).NotTo(BeEmpty(), "panel %q has a query", p.Title)
		for _, q := range p.Targets {
			queries++
			names, err := metricNames(q.Expr)
			g.Expect(err).NotTo(HaveOccurred(), "panel %q", p.Title)
			g.Expect(names).NotTo(BeEmpty(), "panel %q: %s", p.Title, q.Expr)
			for _, n := range names {
				g.Expect(listed).To(HaveKey(n), "panel %q uses %s, which metrics.txt does not list", p.Title, n)
			}
		}
	}
	g.Expect(queries).To(BeNumerically(">=", 4))
	g.Expect(titles).To(ContainElements("Profiles Ready by namespace", "Drift by field manager", "CA certificate expiry timeline", "Work queue depth"))
	g.Expect(dash.UID).To(Equal("meshguard"))

	// One panel per cluster: repeated over the cluster variable (manager --cluster-name), its
	// queries selecting the cluster.
	var vars []string
	for _, v := range dash.Templating.List {
		vars = append(vars, v.Name)
	}
	g.Expect(vars).To(ContainElement("cluster"))
	repeated := 0
	for _, p := range dash.Panels {
		if p.Repeat != "cluster" {
			continue
		}
		repeated++
		for _, q := range p.Targets {
			g.Expect(q.Expr).To(ContainSubstring(`cluster="$cluster"`), "panel %q", p.Title)
		}
	}
	g.Expect(repeated).To(Equal(1), "one panel repeated per cluster")
}

// TestTheRequiredAlertsExist names the alerts the user guide documents a runbook for.
func TestTheRequiredAlertsExist(t *testing.T) {
	g := NewWithT(t)
	guide, err := os.ReadFile(filepath.Join(root, "docs", "user-guide.md"))
	g.Expect(err).NotTo(HaveOccurred())
	var names []string
	for _, grp := range prometheusRule(t).Spec.Groups {
		for _, r := range grp.Rules {
			names = append(names, r.Alert)
			g.Expect(r.Annotations).To(HaveKeyWithValue("runbook_url", HaveSuffix("#"+strings.ToLower(r.Alert))))
			g.Expect(string(guide)).To(ContainSubstring("### "+r.Alert), "the user guide has a runbook section for %s", r.Alert)
		}
	}
	sort.Strings(names)
	g.Expect(names).To(ContainElements(
		"MeshSecurityProfileNotReady", "MeshSecurityDriftDetected", "MeshSecurityPolicyWeakened",
		"MeshguardReconcileErrors", "MeshguardWorkqueueBackingUp", "MeshguardDown",
		"MeshCACertificateExpiringSoon", "MeshCACertificateExpiringVerySoon", "MeshCACertificateUnhealthy"))
	for _, grp := range prometheusRule(t).Spec.Groups {
		for _, r := range grp.Rules {
			if r.Alert == "MeshSecurityProfileNotReady" {
				g.Expect(string(*r.For)).To(Equal("10m"))
			}
		}
	}
}

// TestTheAlertsPassTheirPromtoolUnitTests evaluates config/prometheus/alerts_test.yaml (promtool's
// rule unit test format) with promtool itself, built from the Prometheus module go.mod pins
// (`go tool promtool test rules`): the rules are Prometheus' own rule evaluation, not a model of it.
func TestTheAlertsPassTheirPromtoolUnitTests(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "alerts.rules.yaml"), ruleGroupsYAML(t), 0o644); err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile(alertsTestFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "alerts_test.yaml"), tests, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"check", "rules", filepath.Join(dir, "alerts.rules.yaml")},
		{"test", "rules", filepath.Join(dir, "alerts_test.yaml")},
	} {
		// Run in this module's directory (the test's), where go.mod pins promtool.
		cmd := exec.Command("go", append([]string{"tool", "promtool"}, args...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out.String())
			continue
		}
		t.Logf("promtool %s:\n%s", strings.Join(args, " "), out.String())
	}
}
