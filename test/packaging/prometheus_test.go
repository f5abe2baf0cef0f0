package packaging

import (
	"bufio"
	"bytes"
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

// TestEveryMetricAnAlertUsesIsListedInMetricsTxt: metrics.txt is the list the e2e suite checks
// against a running manager's /metrics, so together the two prove that no alert waits for a
// metric that does not exist.
func TestEveryMetricAnAlertUsesIsListedInMetricsTxt(t *testing.T) {
	g := NewWithT(t)
	listed := map[string]bool{}
	f, err := os.Open(metricsListFile)
	g.Expect(err).NotTo(HaveOccurred())
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if l := strings.TrimSpace(s.Text()); l != "" && !strings.HasPrefix(l, "#") {
			listed[l] = true
		}
	}
	p := parser.NewParser(parser.Options{})
	used := map[string]bool{}
	for _, grp := range prometheusRule(t).Spec.Groups {
		for _, r := range grp.Rules {
			expr, err := p.ParseExpr(r.Expr.String())
			g.Expect(err).NotTo(HaveOccurred())
			for _, sel := range parser.ExtractSelectors(expr) {
				for _, m := range sel {
					if m.Name == model.MetricNameLabel {
						g.Expect(m.Type.String()).To(Equal("="), "alert %s selects metrics by an exact name", r.Alert)
						used[m.Value] = true
						g.Expect(listed).To(HaveKey(m.Value), "alert %s uses %s, which metrics.txt does not list (the e2e suite checks that list against a running manager)", r.Alert, m.Value)
					}
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
		"MeshguardReconcileErrors", "MeshguardWorkqueueBackingUp",
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
