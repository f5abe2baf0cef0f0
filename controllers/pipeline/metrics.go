package pipeline

import (
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// Prometheus metrics, registered with controller-runtime's registry (served on
// --metrics-bind-address next to the controller-runtime and client-go metrics).
var (
	driftDetected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshguard_drift_detected_total",
		Help: "Generated objects found changed or deleted by someone other than meshguard.",
	}, []string{"namespace", "profile", "kind"})
	driftCorrected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshguard_drift_corrected_total",
		Help: "Drifted generated objects that meshguard restored (Enforce mode).",
	}, []string{"namespace", "profile", "kind"})
	objectsDrifted = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "meshguard_objects_drifted",
		Help: "Generated objects currently drifted and not restored (Audit mode, or restoration backing off).",
	}, []string{"namespace", "profile"})
	// driftByFieldManager says who drifts generated objects (kubectl, a GitOps tool, another
	// operator): the field manager of the last write meshguard did not make.
	driftByFieldManager = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshguard_drift_field_manager_total",
		Help: "Drift of generated objects by the field manager that made it (unknown when managed fields do not tell).",
	}, []string{"namespace", "profile", "kind", "field_manager"})
	profileReady = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "meshguard_profile_ready",
		Help: "1 when the profile's Ready condition is True, else 0.",
	}, []string{"namespace", "profile"})
	// externalWeakening lets an alert say that the namespace is less protected than its profile
	// reads, which Ready alone does not tell apart from other failures.
	externalWeakening = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "meshguard_external_policies_weakening",
		Help: "Objects that meshguard does not own and that weaken the profile (status.externalPolicies).",
	}, []string{"namespace", "profile"})
)

func init() {
	metrics.Registry.MustRegister(driftDetected, driftCorrected, driftByFieldManager, objectsDrifted, profileReady, externalWeakening)
}

// ForgetProfile deletes the series of a profile that no longer exists, so that dashboards and
// alerts do not keep reporting it.
func ForgetProfile(namespace, name string) {
	l := prometheus.Labels{"namespace": namespace, "profile": name}
	driftDetected.DeletePartialMatch(l)
	driftCorrected.DeletePartialMatch(l)
	driftByFieldManager.DeletePartialMatch(l)
	objectsDrifted.Delete(l)
	profileReady.Delete(l)
	externalWeakening.Delete(l)
	certMetrics.forget(namespace, name)
}

// RecordMetrics counts what one reconcile observed for the objects of a profile (or of a floor,
// under its cluster profile's name) in a namespace, and whether it is Ready.
func RecordMetrics(namespace, name string, mesh v1alpha1.Mesh, ready bool, o *Observation) {
	drifted := 0
	for _, r := range o.Rows {
		if len(r.drifted) > 0 {
			driftDetected.WithLabelValues(namespace, name, r.row.Kind).Inc()
			driftByFieldManager.WithLabelValues(namespace, name, r.row.Kind, fieldManagerLabel(r.writer)).Inc()
		}
		if r.corrected {
			driftCorrected.WithLabelValues(namespace, name, r.row.Kind).Inc()
		}
		if r.row.State == v1alpha1.ResourceDrifted {
			drifted++
		}
	}
	objectsDrifted.WithLabelValues(namespace, name).Set(float64(drifted))
	readiness := 0.0
	if ready {
		readiness = 1
	}
	profileReady.WithLabelValues(namespace, name).Set(readiness)
	externalWeakening.WithLabelValues(namespace, name).Set(float64(len(o.external)))
	if o.certs != nil {
		certMetrics.set(namespace, name, mesh, o.certs.Certificates)
	}
}

// fieldManagerLabel is the field manager's name in lastWriters' description of it
// (`field manager "kubectl-edit" (Update)`), or "unknown".
func fieldManagerLabel(writer string) string {
	const prefix = "field manager "
	if !strings.HasPrefix(writer, prefix) {
		return "unknown"
	}
	rest := strings.TrimPrefix(writer, prefix)
	if i := strings.LastIndex(rest, " ("); i > 0 {
		rest = rest[:i]
	}
	if name, err := strconv.Unquote(rest); err == nil && name != "" {
		return name
	}
	return "unknown"
}
