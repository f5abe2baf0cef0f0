// Package clusterlabel adds a constant cluster label to every series a Prometheus registry
// serves, so that a central Prometheus scraping many clusters' meshguards (or receiving their
// remote writes) can tell them apart without relabelling rules (manager --cluster-name).
package clusterlabel

import (
	"fmt"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// Label is the name of the label.
const Label = "cluster"

// RegistererGatherer is a Prometheus registry (controller-runtime's metrics.RegistererGatherer).
type RegistererGatherer interface {
	prometheus.Registerer
	prometheus.Gatherer
}

// Wrap returns a registry that registers into r and gathers from it, every series with
// cluster=<name>. The label is added when gathering, so that collectors registered before the
// flag was parsed (controller-runtime's and meshguard's, in init) carry it too. A collector that
// already has a cluster label makes Gather fail rather than serve two values for it.
func Wrap(r RegistererGatherer, name string) RegistererGatherer {
	return labelled{RegistererGatherer: r, name: name}
}

type labelled struct {
	RegistererGatherer
	name string
}

func (l labelled) Gather() ([]*dto.MetricFamily, error) {
	families, err := l.RegistererGatherer.Gather()
	for _, f := range families {
		for _, m := range f.Metric {
			for _, lp := range m.Label {
				if lp.GetName() == Label {
					return nil, fmt.Errorf("metric %s already has a %s label", f.GetName(), Label)
				}
			}
			m.Label = append(m.Label, &dto.LabelPair{Name: proto.String(Label), Value: proto.String(l.name)})
			sort.Slice(m.Label, func(i, j int) bool { return m.Label[i].GetName() < m.Label[j].GetName() })
		}
	}
	return families, err
}
