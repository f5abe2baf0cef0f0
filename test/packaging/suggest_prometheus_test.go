package packaging

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/route"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/tsdb"
	v1 "github.com/prometheus/prometheus/web/api/v1"

	"github.com/meshguard/meshguard/internal/cli"
	"github.com/meshguard/meshguard/internal/suggest"
)

// prometheusServing starts Prometheus' own HTTP API (web/api/v1, the code a Prometheus server
// serves /api/v1 with) over a TSDB holding every series of the exposition file twice: 0 two hours
// ago and the file's value a minute ago, as a counter scraped across the window.
func prometheusServing(t *testing.T, metricsFile string) string {
	t.Helper()
	g := NewWithT(t)
	logger := slog.New(slog.DiscardHandler)
	db, err := tsdb.Open(t.TempDir(), logger, nil, tsdb.DefaultOptions(), tsdb.NewDBStats())
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = db.Close() })

	f, err := os.Open(metricsFile)
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = f.Close() }()
	samples, err := suggest.ParseExposition(f)
	g.Expect(err).NotTo(HaveOccurred())
	now := time.Now()
	app := db.Appender(context.Background())
	for _, s := range samples {
		b := labels.NewBuilder(labels.EmptyLabels()).Set(labels.MetricName, s.Metric)
		for k, v := range s.Labels {
			b.Set(k, v)
		}
		l := b.Labels()
		ref, err := app.Append(0, l, now.Add(-2*time.Hour).UnixMilli(), 0)
		g.Expect(err).NotTo(HaveOccurred())
		_, err = app.Append(ref, l, now.Add(-time.Minute).UnixMilli(), s.Value)
		g.Expect(err).NotTo(HaveOccurred())
	}
	g.Expect(app.Commit()).To(Succeed())

	engine := promql.NewEngine(promql.EngineOpts{Logger: logger, MaxSamples: 1_000_000, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	reg := prometheus.NewRegistry()
	api := v1.NewAPI(engine, db, nil, nil,
		nil, nil, nil,
		func() config.Config { return config.DefaultConfig },
		map[string]string{},
		v1.GlobalURLOptions{},
		func(f http.HandlerFunc) http.HandlerFunc { return f },
		nil, "", false, false, 0, logger, nil, 0, 0, 0, false, nil,
		func() (v1.RuntimeInfo, error) { return v1.RuntimeInfo{}, nil },
		&v1.PrometheusVersion{},
		nil, nil, reg, reg, nil,
		false, nil, false, false, false,
		5*time.Minute, false, false, nil, nil, v1.OpenAPIOptions{},
		parser.NewParser(parser.Options{}), false, 0)
	router := route.New()
	api.Register(router.WithPrefix("/api/v1"))
	srv := httptest.NewServer(router)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestSuggestAgainstARealPrometheusAPIGivesTheGoldenProfiles: `manager suggest
// --prometheus-url` queries the increase over the window through Prometheus' real HTTP API and
// PromQL engine, and proposes exactly what the recorded file gives offline.
func TestSuggestAgainstARealPrometheusAPIGivesTheGoldenProfiles(t *testing.T) {
	testdata := filepath.Join(root, "internal", "suggest", "testdata")
	for _, c := range []struct{ mesh, fixture string }{{"Istio", "istio-shop"}, {"Linkerd", "linkerd-payments"}} {
		t.Run(c.fixture, func(t *testing.T) {
			g := NewWithT(t)
			url := prometheusServing(t, filepath.Join(testdata, c.fixture+".prom"))
			var out, errb bytes.Buffer
			code := cli.Suggest([]string{"--mesh", c.mesh, "--prometheus-url", url, "--window", "24h",
				"--workloads", filepath.Join(testdata, c.fixture+".workloads.yaml")}, strings.NewReader(""), &out, &errb)
			g.Expect(code).To(Equal(0), errb.String())
			want, err := os.ReadFile(filepath.Join(testdata, c.fixture+".golden.yaml"))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(out.String()).To(Equal(string(want)))
		})
	}
}
