// Package certstest mints CA certificates for tests and local samples: self-signed roots,
// intermediates and issuers, with ECDSA or RSA keys and any validity period, returned as PEM.
//
// It is not for production: keys are generated on the spot and never protected.
package certstest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"
)

// Cert is a minted certificate and its private key.
type Cert struct {
	// Certificate is the parsed certificate.
	Certificate *x509.Certificate
	// Key is the certificate's private key.
	Key crypto.Signer
	// CertPEM is the certificate as one CERTIFICATE PEM block.
	CertPEM []byte
	// KeyPEM is the private key as an "EC PRIVATE KEY" (ECDSA), "RSA PRIVATE KEY" (RSA) or
	// "PRIVATE KEY" (other algorithms) PEM block, the encodings Istio and Linkerd read.
	KeyPEM []byte
}

// Option changes what Mint mints.
type Option func(*config)

type config struct {
	subject             pkix.Name
	notBefore, notAfter time.Time
	lifetime            time.Duration
	key                 crypto.Signer
	rsaBits             int
	curve               elliptic.Curve
	parent              *Cert
	notCA               bool
}

// WithSubject sets the subject's common name. The organisation is always "meshguard test".
func WithSubject(commonName string) Option {
	return func(c *config) { c.subject.CommonName = commonName }
}

// WithNotBefore sets the start of the validity period. Without it, the period starts an hour
// ago, or a lifetime before WithNotAfter's time.
func WithNotBefore(t time.Time) Option { return func(c *config) { c.notBefore = t } }

// WithNotAfter sets the end of the validity period. Without it, the period lasts ten years for
// a root and one year for a certificate signed by a parent.
func WithNotAfter(t time.Time) Option { return func(c *config) { c.notAfter = t } }

// WithValidity sets both ends of the validity period.
func WithValidity(notBefore, notAfter time.Time) Option {
	return func(c *config) { c.notBefore, c.notAfter = notBefore, notAfter }
}

// WithRSA gives the certificate a new RSA key of the given size. The default is ECDSA P-256.
func WithRSA(bits int) Option { return func(c *config) { c.rsaBits, c.curve, c.key = bits, nil, nil } }

// WithECDSA gives the certificate a new ECDSA key on the curve, such as elliptic.P384().
func WithECDSA(curve elliptic.Curve) Option {
	return func(c *config) { c.curve, c.rsaBits, c.key = curve, 0, nil }
}

// WithKey gives the certificate an existing key, for instance to re-issue a root with the same
// key, or an Ed25519 key.
func WithKey(key crypto.Signer) Option {
	return func(c *config) { c.key, c.rsaBits, c.curve = key, 0, nil }
}

// SignedBy has parent sign the certificate instead of the certificate's own key.
func SignedBy(parent *Cert) Option { return func(c *config) { c.parent = parent } }

// NotCA mints an end-entity certificate (basicConstraints CA:FALSE) instead of a CA.
func NotCA() Option { return func(c *config) { c.notCA = true } }

// MintCA mints a CA certificate: a self-signed root named "meshguard test root" valid for ten
// years, unless options say otherwise.
func MintCA(opts ...Option) (*Cert, error) {
	return Mint(append([]Option{WithSubject("meshguard test root")}, opts...)...)
}

// MintIntermediate mints a CA certificate signed by parent, named "meshguard test
// intermediate" and valid for one year unless options say otherwise. Use it for Istio's
// plugged-in intermediate CA and for Linkerd's identity issuer.
func MintIntermediate(parent *Cert, opts ...Option) (*Cert, error) {
	return Mint(append([]Option{WithSubject("meshguard test intermediate"), SignedBy(parent)}, opts...)...)
}

// Mint mints a certificate as the options say: by default a self-signed ECDSA P-256 CA
// certificate named "meshguard test", valid from an hour ago for ten years.
func Mint(opts ...Option) (*Cert, error) {
	cfg := config{subject: pkix.Name{CommonName: "meshguard test"}}
	for _, o := range opts {
		o(&cfg)
	}
	cfg.subject.Organization = []string{"meshguard test"}
	if cfg.parent == nil {
		cfg.lifetime = 10 * 365 * 24 * time.Hour
	} else {
		cfg.lifetime = 365 * 24 * time.Hour
	}
	switch {
	case cfg.notBefore.IsZero() && cfg.notAfter.IsZero():
		cfg.notBefore = time.Now().Add(-time.Hour).Truncate(time.Second)
		cfg.notAfter = cfg.notBefore.Add(cfg.lifetime)
	case cfg.notBefore.IsZero():
		cfg.notBefore = cfg.notAfter.Add(-cfg.lifetime)
	case cfg.notAfter.IsZero():
		cfg.notAfter = cfg.notBefore.Add(cfg.lifetime)
	}

	key, err := cfg.newKey()
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               cfg.subject,
		NotBefore:             cfg.notBefore,
		NotAfter:              cfg.notAfter,
		BasicConstraintsValid: true,
		IsCA:                  !cfg.notCA,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	if cfg.notCA {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	parent, signer := tmpl, key
	if cfg.parent != nil {
		parent, signer = cfg.parent.Certificate, cfg.parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		return nil, fmt.Errorf("create certificate %q: %w", cfg.subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse certificate %q: %w", cfg.subject.CommonName, err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	return &Cert{
		Certificate: cert,
		Key:         key,
		CertPEM:     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:      keyPEM,
	}, nil
}

func (cfg *config) newKey() (crypto.Signer, error) {
	switch {
	case cfg.key != nil:
		return cfg.key, nil
	case cfg.rsaBits > 0:
		k, err := rsa.GenerateKey(rand.Reader, cfg.rsaBits)
		if err != nil {
			return nil, fmt.Errorf("generate RSA-%d key: %w", cfg.rsaBits, err)
		}
		return k, nil
	default:
		curve := cfg.curve
		if curve == nil {
			curve = elliptic.P256()
		}
		k, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate ECDSA %s key: %w", curve.Params().Name, err)
		}
		return k, nil
	}
}

func encodeKey(key crypto.Signer) ([]byte, error) {
	var block *pem.Block
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return nil, fmt.Errorf("encode ECDSA key: %w", err)
		}
		block = &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
	case *rsa.PrivateKey:
		block = &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}
	default:
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, fmt.Errorf("encode %T key: %w", key, err)
		}
		block = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	}
	return pem.EncodeToMemory(block), nil
}

// PEM concatenates the certificates' PEM blocks in order: a chain or a bundle.
func PEM(certs ...*Cert) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, c.CertPEM...)
	}
	return out
}
