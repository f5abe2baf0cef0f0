package certs

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// Report is the verdict on a mesh's CA certificates.
type Report struct {
	// Certificates lists every certificate inspected, and every expected object or key that
	// yielded none, sorted by source, then notAfter, then fingerprint.
	Certificates []v1alpha1.CertificateStatus
	// Reason is the worst state of Certificates: the reason of the CertificatesHealthy condition.
	Reason string
	// Message summarises the certificates for the CertificatesHealthy condition.
	Message string
	// Healthy is true when every certificate is Valid.
	Healthy bool
	// Blocking is true when the profile cannot be Ready: Reason is neither Valid nor ExpiringSoon.
	Blocking bool
	// NearestExpiry is the earliest notAfter of the certificates; zero if none was read.
	NearestExpiry time.Time
	// NextCheck is the first instant after now at which a certificate's state changes by itself:
	// the earliest notBefore, notAfter-minValidity or notAfter in the future. Zero if none.
	NextCheck time.Time
}

// severityOrder lists the certificate reasons, worst first. See the package documentation.
var severityOrder = [...]string{
	v1alpha1.ReasonCertNotFound,
	v1alpha1.ReasonCertUnreadable,
	v1alpha1.ReasonCertExpired,
	v1alpha1.ReasonCertNotYetValid,
	v1alpha1.ReasonCertUntrustedChain,
	v1alpha1.ReasonCertRootMismatch,
	v1alpha1.ReasonCertUnsupported,
	v1alpha1.ReasonCertExpiringSoon,
	v1alpha1.ReasonCertValid,
}

// severity ranks a reason, 0 being the worst. An unknown reason ranks as the worst: it can only
// come from a bug, and hiding it would be worse.
func severity(reason string) int {
	if i := slices.Index(severityOrder[:], reason); i >= 0 {
		return i
	}
	return -1
}

// Worst returns the worst of the certificate reasons by the package's severity order, or Valid
// when there are none.
func Worst(reasons ...string) string {
	worst := v1alpha1.ReasonCertValid
	for _, r := range reasons {
		if severity(r) < severity(worst) {
			worst = r
		}
	}
	return worst
}

// IsBlocking reports whether a certificate reason keeps the profile from being Ready: every
// reason but Valid and ExpiringSoon.
func IsBlocking(reason string) bool {
	return reason != v1alpha1.ReasonCertValid && reason != v1alpha1.ReasonCertExpiringSoon && reason != v1alpha1.ReasonCertExternal
}

// maxProblemsInMessage bounds the report message; every problem is in Certificates anyway.
const maxProblemsInMessage = 3

// report turns the rows into a Report.
func report(rows []*row, now time.Time, minValidity time.Duration) Report {
	slices.SortFunc(rows, func(a, b *row) int {
		return cmp.Or(
			strings.Compare(a.source, b.source),
			notAfter(a).Compare(notAfter(b)),
			strings.Compare(fingerprintOf(a), fingerprintOf(b)),
		)
	})
	rep := Report{Certificates: make([]v1alpha1.CertificateStatus, 0, len(rows))}
	var states []string
	var earliest *row
	for _, r := range rows {
		rep.Certificates = append(rep.Certificates, r.status())
		states = append(states, r.state())
		c := r.cert
		if c == nil {
			continue
		}
		if earliest == nil || c.NotAfter.Before(earliest.cert.NotAfter) {
			earliest = r
		}
		for _, t := range []time.Time{c.NotBefore, c.NotAfter.Add(-minValidity), c.NotAfter} {
			if t.After(now) && (rep.NextCheck.IsZero() || t.Before(rep.NextCheck)) {
				rep.NextCheck = t
			}
		}
	}
	if earliest != nil {
		rep.NearestExpiry = earliest.cert.NotAfter
	}
	rep.Reason = Worst(states...)
	rep.Healthy = rep.Reason == v1alpha1.ReasonCertValid
	rep.Blocking = IsBlocking(rep.Reason)
	rep.Message = summary(rows, earliest, minValidity)
	return rep
}

// summary is the report message: the problems, worst first, or the earliest expiry.
func summary(rows []*row, earliest *row, minValidity time.Duration) string {
	var bad []*row
	for _, r := range rows {
		if len(r.problems) > 0 {
			bad = append(bad, r)
		}
	}
	if len(bad) == 0 {
		// Healthy implies at least one certificate was read.
		valid := plural(len(rows), "CA certificate is valid", "CA certificates are valid")
		if minValidity > 0 {
			valid += " for at least " + shortDuration(minValidity)
		}
		return fmt.Sprintf("%s; the first to expire is %s %s, at %s",
			valid, earliest.role, earliest.source, formatTime(earliest.cert.NotAfter))
	}
	slices.SortStableFunc(bad, func(a, b *row) int { return severity(a.state()) - severity(b.state()) })
	msgs := make([]string, 0, maxProblemsInMessage+1)
	for i, r := range bad {
		if i == maxProblemsInMessage {
			msgs = append(msgs, fmt.Sprintf("and %s", plural(len(bad)-i, "more certificate", "more certificates")))
			break
		}
		msgs = append(msgs, fmt.Sprintf("%s %s %s", r.role, r.source, r.message()))
	}
	return strings.Join(msgs, "; ")
}

func notAfter(r *row) time.Time {
	if r.cert == nil {
		return time.Time{}
	}
	return r.cert.NotAfter
}

func fingerprintOf(r *row) string {
	if r.cert == nil {
		return ""
	}
	return fingerprint(r.cert)
}

func metaTime(t time.Time) *metav1.Time {
	mt := metav1.NewTime(t)
	return &mt
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// humanDuration rounds a positive duration down to days above two days, hours above two
// hours, then minutes, then seconds: "9d", "36h", "45m". Coarse on purpose, so that messages
// do not change at every reconcile.
func humanDuration(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d >= 2*day:
		return fmt.Sprintf("%dd", d/day)
	case d >= 2*time.Hour:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d >= time.Minute:
		return fmt.Sprintf("%dm", d/time.Minute)
	default:
		return fmt.Sprintf("%ds", d/time.Second)
	}
}

// shortDuration is d.String() without its zero minutes and seconds: "1440h", "1h30m".
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
