package clusterlabel

import (
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestEverySeriesCarriesTheClusterLabel(t *testing.T) {
	g := NewWithT(t)
	reg := prometheus.NewRegistry()
	early := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "early", Help: "registered before Wrap"}, []string{"namespace"})
	reg.MustRegister(early)
	early.WithLabelValues("shop").Set(1)

	w := Wrap(reg, "eu-west")
	late := prometheus.NewCounter(prometheus.CounterOpts{Name: "late_total", Help: "registered through the wrapper"})
	w.MustRegister(late)
	late.Inc()

	g.Expect(testutil.GatherAndCompare(w, strings.NewReader(`
# HELP early registered before Wrap
# TYPE early gauge
early{cluster="eu-west",namespace="shop"} 1
# HELP late_total registered through the wrapper
# TYPE late_total counter
late_total{cluster="eu-west"} 1
`))).To(Succeed())
}

func TestAMetricWithItsOwnClusterLabelIsAnError(t *testing.T) {
	reg := prometheus.NewRegistry()
	own := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "own", Help: "h"}, []string{"cluster"})
	reg.MustRegister(own)
	own.WithLabelValues("x").Set(1)
	_, err := Wrap(reg, "eu-west").Gather()
	NewWithT(t).Expect(err).To(MatchError(ContainSubstring("already has a cluster label")))
}
