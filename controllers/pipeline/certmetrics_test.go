package pipeline

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

func TestCertificateMetricsFollowTheCurrentState(t *testing.T) {
	g := NewWithT(t)
	m := newCertificateMetrics()
	nb, na := metav1.NewTime(time.Unix(1000, 0)), metav1.NewTime(time.Unix(2000, 0))
	root := v1alpha1.CertificateStatus{Source: "Secret istio-system/istio-ca-secret[ca-cert.pem]", Role: v1alpha1.RoleRoot, SerialNumber: "01", NotBefore: &nb, NotAfter: &na, State: "Valid"}
	m.set("a", "p", v1alpha1.MeshIstio, []v1alpha1.CertificateStatus{root})
	m.set("b", "p", v1alpha1.MeshIstio, []v1alpha1.CertificateStatus{root, {Source: "Secret istio-system/cacerts", Role: v1alpha1.RoleRoot, State: "NotFound"}})

	want := `
# HELP meshguard_certificate_expiration_timestamp_seconds The notAfter of a mesh CA certificate, in seconds since the epoch.
# TYPE meshguard_certificate_expiration_timestamp_seconds gauge
meshguard_certificate_expiration_timestamp_seconds{mesh="Istio",role="Root",serial="01",source="Secret istio-system/istio-ca-secret[ca-cert.pem]"} 2000
`
	g.Expect(testutil.CollectAndCompare(m, strings.NewReader(want), "meshguard_certificate_expiration_timestamp_seconds")).To(Succeed(), "a CA shared by two profiles is one series; a missing source has none")

	m.forget("a", "p")
	m.forget("b", "p")
	g.Expect(testutil.CollectAndCount(m)).To(Equal(0), "deleted profiles leave no stale series")
}
