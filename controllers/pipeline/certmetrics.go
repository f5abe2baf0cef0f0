package pipeline

import (
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// certificateMetrics exports the certificates of the latest check of every profile, in
// cert-manager's style. It is computed from the current state at scrape time, so a source that is
// deleted or a profile that goes leaves no stale series behind. A CA shared by many profiles is
// exported once.
type certificateMetrics struct {
	mu        sync.Mutex
	byProfile map[types.NamespacedName]certSet

	expiration, notBefore, healthy *prometheus.Desc
}

type certSet struct {
	mesh  string
	certs []v1alpha1.CertificateStatus
}

var certMetrics = newCertificateMetrics()

func newCertificateMetrics() *certificateMetrics {
	labels := []string{"mesh", "source", "role", "serial"}
	return &certificateMetrics{
		byProfile:  map[types.NamespacedName]certSet{},
		expiration: prometheus.NewDesc("meshguard_certificate_expiration_timestamp_seconds", "The notAfter of a mesh CA certificate, in seconds since the epoch.", labels, nil),
		notBefore:  prometheus.NewDesc("meshguard_certificate_not_before_timestamp_seconds", "The notBefore of a mesh CA certificate, in seconds since the epoch.", labels, nil),
		healthy:    prometheus.NewDesc("meshguard_certificate_healthy", "1 when the mesh CA certificate passed every check (ExpiringSoon included: see the expiration timestamp), else 0.", labels, nil),
	}
}

func init() { metrics.Registry.MustRegister(certMetrics) }

func (m *certificateMetrics) set(namespace, name string, mesh v1alpha1.Mesh, certs []v1alpha1.CertificateStatus) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.byProfile[types.NamespacedName{Namespace: namespace, Name: name}] = certSet{mesh: string(mesh), certs: certs}
}

func (m *certificateMetrics) forget(namespace, name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.byProfile, types.NamespacedName{Namespace: namespace, Name: name})
}

// Describe implements prometheus.Collector.
func (m *certificateMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.expiration
	ch <- m.notBefore
	ch <- m.healthy
}

// Collect implements prometheus.Collector.
func (m *certificateMetrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[[4]string]bool{}
	keys := make([]types.NamespacedName, 0, len(m.byProfile))
	for k := range m.byProfile {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	for _, k := range keys {
		set := m.byProfile[k]
		for _, c := range set.certs {
			if c.NotAfter == nil {
				continue // a missing or unreadable source has no certificate to describe
			}
			l := [4]string{set.mesh, c.Source, string(c.Role), c.SerialNumber}
			if seen[l] {
				continue
			}
			seen[l] = true
			ok := 0.0
			if c.State == v1alpha1.ReasonCertValid || c.State == v1alpha1.ReasonCertExpiringSoon {
				ok = 1
			}
			ch <- prometheus.MustNewConstMetric(m.expiration, prometheus.GaugeValue, float64(c.NotAfter.Unix()), l[:]...)
			if c.NotBefore != nil {
				ch <- prometheus.MustNewConstMetric(m.notBefore, prometheus.GaugeValue, float64(c.NotBefore.Unix()), l[:]...)
			}
			ch <- prometheus.MustNewConstMetric(m.healthy, prometheus.GaugeValue, ok, l[:]...)
		}
	}
}
