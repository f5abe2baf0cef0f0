package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// problem is one failed check of a row.
type problem struct {
	reason  string
	message string
}

// row is one inspected certificate, or one object or key that yielded none (cert is nil).
type row struct {
	source   string
	role     v1alpha1.CertificateRole
	cert     *x509.Certificate
	problems []problem
	// note is added to the message of a row without problems.
	note string
}

func (r *row) add(reason, format string, args ...any) {
	r.problems = append(r.problems, problem{reason: reason, message: fmt.Sprintf(format, args...)})
}

// state is the worst reason of the row's problems, or Valid.
func (r *row) state() string {
	reasons := make([]string, 0, len(r.problems))
	for _, p := range r.problems {
		reasons = append(reasons, p.reason)
	}
	return Worst(reasons...)
}

// message lists the row's problems, worst first, as a predicate of "<Role> <Source>".
func (r *row) message() string {
	if len(r.problems) == 0 {
		msg := "is valid until " + formatTime(r.cert.NotAfter)
		if r.note != "" {
			msg += "; " + r.note
		}
		return msg
	}
	ps := slices.Clone(r.problems)
	slices.SortStableFunc(ps, func(a, b problem) int { return severity(a.reason) - severity(b.reason) })
	msgs := make([]string, 0, len(ps))
	for _, p := range ps {
		msgs = append(msgs, p.message)
	}
	return strings.Join(msgs, "; ")
}

// status is the row as the API shows it: public certificate fields only.
func (r *row) status() v1alpha1.CertificateStatus {
	st := v1alpha1.CertificateStatus{
		Source:  r.source,
		Role:    r.role,
		State:   r.state(),
		Message: r.message(),
	}
	if c := r.cert; c != nil {
		st.Subject = c.Subject.String()
		st.SerialNumber = fmt.Sprintf("%x", c.SerialNumber)
		st.Fingerprint = fingerprint(c)
		st.NotBefore = metaTime(c.NotBefore)
		st.NotAfter = metaTime(c.NotAfter)
	}
	return st
}

// missing is the row of an object or key that does not exist.
func missing(source string, role v1alpha1.CertificateRole, format string, args ...any) *row {
	r := &row{source: source, role: role}
	r.add(v1alpha1.ReasonCertNotFound, format, args...)
	return r
}

// read parses the certificates under key of src. When there are none it returns a single
// NotFound or Unreadable row for the key, with the given role, instead.
func read(src Source, key string, role v1alpha1.CertificateRole) ([]*x509.Certificate, *row) {
	desc := src.Describe(key)
	switch {
	case !src.Found:
		return nil, missing(src.Describe(""), role, "does not exist")
	case !src.has(key):
		return nil, missing(desc, role, "does not exist: the %s has no key %s", src.Kind, key)
	case len(bytes.TrimSpace(src.Data[key])) == 0:
		return nil, missing(desc, role, "is empty")
	}
	certs, err := parsePEM(src.Data[key])
	if err != nil {
		r := &row{source: desc, role: role}
		r.add(v1alpha1.ReasonCertUnreadable, "cannot be read: %v", err)
		return nil, r
	}
	return certs, nil
}

// parsePEM parses every PEM block of data as an X.509 certificate. Text around the blocks is
// ignored, as PEM allows; a block of any other type is an error that does not quote the block,
// since it may be a private key stored in the wrong place.
func parsePEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is not a CERTIFICATE; only certificates may be stored under this key", len(certs)+1)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM-encoded certificate found")
	}
	return certs, nil
}

// inspect checks what can be judged on the certificate alone: key algorithm, CA capability and
// validity at now, with at least minValidity left.
func inspect(c *x509.Certificate, source string, role v1alpha1.CertificateRole, now time.Time, minValidity time.Duration) *row {
	r := &row{source: source, role: role, cert: c}
	if alg, ok := keyAlgorithm(c); !ok {
		r.add(v1alpha1.ReasonCertUnsupported, "has an unsupported %s key; mesh CA certificates need ECDSA P-256 or P-384, or RSA of at least 2048 bits", alg)
	}
	if c.Version >= 3 && !(c.BasicConstraintsValid && c.IsCA) {
		r.add(v1alpha1.ReasonCertUntrustedChain, "is not a CA certificate (basicConstraints CA:FALSE) and cannot sign certificates")
	} else if c.KeyUsage != 0 && c.KeyUsage&x509.KeyUsageCertSign == 0 {
		r.add(v1alpha1.ReasonCertUntrustedChain, "has a keyUsage without certSign and cannot sign certificates")
	}
	switch {
	case now.Before(c.NotBefore):
		r.add(v1alpha1.ReasonCertNotYetValid, "is not valid before %s (in %s)", formatTime(c.NotBefore), humanDuration(c.NotBefore.Sub(now)))
	case !now.Before(c.NotAfter):
		r.add(v1alpha1.ReasonCertExpired, "expired %s ago, at %s", humanDuration(now.Sub(c.NotAfter)), formatTime(c.NotAfter))
	case !now.Before(c.NotAfter.Add(-minValidity)):
		r.add(v1alpha1.ReasonCertExpiringSoon, "expires in %s (< %s)", humanDuration(c.NotAfter.Sub(now)), shortDuration(minValidity))
	}
	return r
}

// keyAlgorithm names the certificate's public key algorithm and reports whether meshes accept it.
func keyAlgorithm(c *x509.Certificate) (string, bool) {
	switch k := c.PublicKey.(type) {
	case *ecdsa.PublicKey:
		name := k.Curve.Params().Name
		return "ECDSA " + name, name == "P-256" || name == "P-384"
	case *rsa.PublicKey:
		bits := k.N.BitLen()
		return fmt.Sprintf("RSA %d-bit", bits), bits >= 2048
	case ed25519.PublicKey:
		return "Ed25519", false
	default:
		return c.PublicKeyAlgorithm.String(), false
	}
}

// verifyChain checks that c chains to one of roots through intermediates, with crypto/x509 at
// now and any extended key usage.
//
// Validity periods are judged per certificate by inspect; here a chain that is only broken by
// time is still a chain. So when verification at now fails because a certificate is outside its
// validity, it is retried at each notBefore of the certificates involved: if the chain is valid
// at any instant, it is valid at the latest notBefore of its certificates.
func verifyChain(c *x509.Certificate, intermediates, roots []*x509.Certificate, now time.Time) error {
	opts := x509.VerifyOptions{
		Roots:         pool(roots),
		Intermediates: pool(intermediates),
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}
	_, err := c.Verify(opts)
	if !isTimeError(err) {
		return err
	}
	// Report why the chain is broken rather than the expiry that inspect reports anyway.
	reported := err
	for _, other := range slices.Concat([]*x509.Certificate{c}, intermediates, roots) {
		opts.CurrentTime = other.NotBefore
		_, retry := c.Verify(opts)
		if retry == nil {
			return nil
		}
		if reported == err && !isTimeError(retry) {
			reported = retry
		}
	}
	return reported
}

// isTimeError reports whether err is crypto/x509's "expired or not yet valid".
func isTimeError(err error) bool {
	var invalid x509.CertificateInvalidError
	return errors.As(err, &invalid) && invalid.Reason == x509.Expired
}

func pool(certs []*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// selfSigned reports whether c is signed by its own key under its own name.
func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawSubject, c.RawIssuer) &&
		c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// fingerprint is the lowercase hex SHA-256 of the certificate's DER encoding.
func fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// subjects names certificates by subject for messages.
func subjects(certs []*x509.Certificate) string {
	names := make([]string, 0, len(certs))
	for _, c := range certs {
		names = append(names, fmt.Sprintf("%q", c.Subject.String()))
	}
	return strings.Join(names, ", ")
}
