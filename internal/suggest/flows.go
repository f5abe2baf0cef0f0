package suggest

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// Sample is one series: its metric name, labels and value (a counter's total in a scrape, or its
// increase over a window from a Prometheus query).
type Sample struct {
	Metric string
	Labels map[string]string
	Value  float64
}

// Flow is one kind of traffic the destination's proxy saw.
type Flow struct {
	// SourceNamespace and SourceServiceAccount are the client's mesh identity; both empty when
	// the client was not meshed (plaintext, no identity).
	SourceNamespace, SourceServiceAccount string
	// SourceWorkload is the client's workload name when the metrics name it (Istio).
	SourceWorkload string
	// DestNamespace and DestWorkload name the receiving workload (Deployment, StatefulSet, ...).
	DestNamespace, DestWorkload string
	// Port is the workload port; 0 when the metrics do not carry it.
	Port int32
	// HTTP is true for requests (istio_requests_total, request_total), false for connections.
	HTTP bool
	// Method and Path are the HTTP method and path when the metrics carry them.
	Method, Path string
	// Count is the number of requests or connections.
	Count float64
}

// Meshed says whether the client had a mesh identity (mutual TLS).
func (f Flow) Meshed() bool { return f.SourceServiceAccount != "" }

// Observation is what the samples say.
type Observation struct {
	// Flows are the allowed-looking flows, merged and sorted.
	Flows []Flow
	// Refused are flows the mesh already refused (HTTP 403 from Istio's RBAC): they are not
	// proposed, and become want: Denied expectations.
	Refused []Flow
	// Notes say what the samples could not tell (missing labels), once each.
	Notes []string
}

// Observe turns samples of the mesh's metrics into flows. Series of other metrics, with a zero
// value, or reported by the client side are ignored: the server side is the one that knows
// whether the connection was mutual TLS and which identity the client proved.
func Observe(mesh v1alpha1.Mesh, samples []Sample) (*Observation, error) {
	var flows, refused []Flow
	notes := map[string]bool{}
	for _, s := range samples {
		if s.Value <= 0 || math.IsNaN(s.Value) {
			continue
		}
		var f Flow
		var ok, deny bool
		var err error
		switch mesh {
		case v1alpha1.MeshIstio, "":
			f, ok, deny, err = istioFlow(s, notes)
		case v1alpha1.MeshLinkerd:
			f, ok, err = linkerdFlow(s, notes)
		default:
			return nil, fmt.Errorf("mesh %q: must be Istio or Linkerd", mesh)
		}
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		f.Count = s.Value
		if deny {
			refused = append(refused, f)
		} else {
			flows = append(flows, f)
		}
	}
	o := &Observation{Flows: mergeFlows(flows)}
	// A flow is refused only when every sample of it was refused (an HTTP 403 among 200s is the
	// application's answer to one request, not the mesh refusing the client).
	seen := map[string]bool{}
	for _, f := range o.Flows {
		seen[flowKey(f)] = true
	}
	for _, f := range mergeFlows(refused) {
		if !seen[flowKey(f)] {
			o.Refused = append(o.Refused, f)
		}
	}
	for n := range notes {
		o.Notes = append(o.Notes, n)
	}
	sort.Strings(o.Notes)
	return o, nil
}

// flowKey identifies a flow without its count.
func flowKey(f Flow) string {
	return strings.Join([]string{f.DestNamespace, f.DestWorkload, f.SourceNamespace, f.SourceServiceAccount,
		f.SourceWorkload, strconv.Itoa(int(f.Port)), strconv.FormatBool(f.HTTP), f.Method, f.Path}, "\x00")
}

// mergeFlows adds up the counts of equal flows (several pods, several response codes) and sorts.
func mergeFlows(in []Flow) []Flow {
	byKey := map[string]*Flow{}
	var keys []string
	for _, f := range in {
		k := flowKey(f)
		if m, ok := byKey[k]; ok {
			m.Count += f.Count
			continue
		}
		c := f
		byKey[k] = &c
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]Flow, 0, len(keys))
	for _, k := range keys {
		out = append(out, *byKey[k])
	}
	return out
}

// parsePort reads a port label value; 0 when it is not a port.
func parsePort(s string) int32 {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0
	}
	return int32(n)
}

// ParseExposition reads samples in the Prometheus text exposition format
// (https://prometheus.io/docs/instrumenting/exposition_formats/), as a proxy's /metrics or a
// recorded file gives them. Counters, gauges and untyped series are read; histograms and
// summaries are not flows and are skipped.
func ParseExposition(r io.Reader) ([]Sample, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse exposition format: %w", err)
	}
	names := make([]string, 0, len(fams))
	for n := range fams {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []Sample
	for _, n := range names {
		for _, m := range fams[n].GetMetric() {
			var v float64
			switch fams[n].GetType() {
			case dto.MetricType_COUNTER:
				v = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				v = m.GetGauge().GetValue()
			case dto.MetricType_UNTYPED:
				v = m.GetUntyped().GetValue()
			default:
				continue
			}
			l := make(map[string]string, len(m.GetLabel()))
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			out = append(out, Sample{Metric: n, Labels: l, Value: v})
		}
	}
	return out, nil
}
