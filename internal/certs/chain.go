package certs

import (
	"bytes"
	"crypto/x509"
	"time"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// collector gathers the rows of one check, one per distinct certificate.
type collector struct {
	now         time.Time
	minValidity time.Duration
	rows        []*row
	seen        map[string]bool
}

func newCollector(now time.Time, minValidity time.Duration) *collector {
	return &collector{now: now, minValidity: max(minValidity, 0), seen: map[string]bool{}}
}

// add inspects c unless a certificate with the same fingerprint was added before, and returns
// its row, or nil for a duplicate.
func (col *collector) add(c *x509.Certificate, source string, role v1alpha1.CertificateRole) *row {
	fp := fingerprint(c)
	if col.seen[fp] {
		return nil
	}
	col.seen[fp] = true
	r := inspect(c, source, role, col.now, col.minValidity)
	col.rows = append(col.rows, r)
	return r
}

// addRow records a row without a certificate (NotFound, Unreadable).
func (col *collector) addRow(r *row) { col.rows = append(col.rows, r) }

// verify checks that each row's certificate chains to roots through intermediates, and records
// UntrustedChain otherwise. rootsSource names where the roots were read from; with no roots (they
// are missing or unreadable, which is reported on their own row) the chain is not checked.
func (col *collector) verify(rows []*row, intermediates, roots []*x509.Certificate, rootsSource string) {
	for _, r := range rows {
		if r == nil {
			continue
		}
		if len(roots) == 0 {
			r.note = "chain not checked: no readable root"
			continue
		}
		if err := verifyChain(r.cert, intermediates, roots, col.now); err != nil {
			r.add(v1alpha1.ReasonCertUntrustedChain, "does not chain to the roots in %s (%s): %v", rootsSource, subjects(roots), err)
		}
	}
}

// certRole is Root for a self-signed certificate and the given role otherwise.
func certRole(c *x509.Certificate, otherwise v1alpha1.CertificateRole) v1alpha1.CertificateRole {
	if selfSigned(c) {
		return v1alpha1.RoleRoot
	}
	return otherwise
}

// present reports whether the source has a non-empty value under key.
func present(src Source, key string) bool {
	return src.has(key) && len(bytes.TrimSpace(src.Data[key])) > 0
}
