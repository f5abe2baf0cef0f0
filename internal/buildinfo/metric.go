package buildinfo

import "github.com/prometheus/client_golang/prometheus"

// Collector is the meshguard_build_info gauge: always 1, with the build's version, commit and Go
// version as labels (the convention of Prometheus' own <name>_build_info metrics).
func Collector() prometheus.Collector {
	i := Get()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "meshguard_build_info",
		Help:        "The running meshguard build: version, commit and Go version as labels; always 1.",
		ConstLabels: prometheus.Labels{"version": i.Version, "commit": i.Commit, "goversion": i.GoVersion},
	})
	g.Set(1)
	return g
}
