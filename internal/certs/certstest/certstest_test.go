package certstest_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/meshguard/meshguard/internal/certs/certstest"
)

func TestMint(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	root, err := certstest.MintCA(certstest.WithValidity(now.Add(-time.Hour), now.Add(24*time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		opts          []certstest.Option
		wantCN        string
		wantIsCA      bool
		wantNotBefore time.Time
		wantNotAfter  time.Time
		wantKeyType   string
		wantKey       func(g Gomega, c *x509.Certificate)
		wantSignedBy  *certstest.Cert
	}{
		{
			name:          "an intermediate is an ECDSA P-256 CA signed by its parent, valid for a year from its notBefore",
			opts:          []certstest.Option{certstest.SignedBy(root), certstest.WithSubject("issuer"), certstest.WithNotBefore(now)},
			wantCN:        "issuer",
			wantIsCA:      true,
			wantNotBefore: now,
			wantNotAfter:  now.Add(365 * 24 * time.Hour),
			wantKeyType:   "EC PRIVATE KEY",
			wantKey: func(g Gomega, c *x509.Certificate) {
				g.Expect(c.PublicKey.(*ecdsa.PublicKey).Curve).To(Equal(elliptic.P256()))
			},
			wantSignedBy: root,
		},
		{
			name:          "a root with only a notAfter lasts ten years up to it",
			opts:          []certstest.Option{certstest.WithNotAfter(now), certstest.WithECDSA(elliptic.P384())},
			wantCN:        "meshguard test",
			wantIsCA:      true,
			wantNotBefore: now.Add(-10 * 365 * 24 * time.Hour),
			wantNotAfter:  now,
			wantKeyType:   "EC PRIVATE KEY",
			wantKey: func(g Gomega, c *x509.Certificate) {
				g.Expect(c.PublicKey.(*ecdsa.PublicKey).Curve).To(Equal(elliptic.P384()))
			},
		},
		{
			name:          "an RSA end-entity certificate is not a CA and has a PKCS #1 key",
			opts:          []certstest.Option{certstest.SignedBy(root), certstest.WithRSA(2048), certstest.NotCA(), certstest.WithValidity(now, now.Add(time.Hour))},
			wantCN:        "meshguard test",
			wantNotBefore: now,
			wantNotAfter:  now.Add(time.Hour),
			wantKeyType:   "RSA PRIVATE KEY",
			wantKey: func(g Gomega, c *x509.Certificate) {
				g.Expect(c.PublicKey.(*rsa.PublicKey).N.BitLen()).To(Equal(2048))
			},
			wantSignedBy: root,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)

			c, err := certstest.Mint(tt.opts...)

			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(c.Certificate.Subject.CommonName).To(Equal(tt.wantCN))
			g.Expect(c.Certificate.IsCA).To(Equal(tt.wantIsCA))
			g.Expect(c.Certificate.NotBefore).To(BeTemporally("==", tt.wantNotBefore))
			g.Expect(c.Certificate.NotAfter).To(BeTemporally("==", tt.wantNotAfter))
			tt.wantKey(g, c.Certificate)

			block, rest := pem.Decode(c.CertPEM)
			g.Expect(block.Type).To(Equal("CERTIFICATE"))
			g.Expect(block.Bytes).To(Equal(c.Certificate.Raw))
			g.Expect(rest).To(BeEmpty())
			block, _ = pem.Decode(c.KeyPEM)
			g.Expect(block.Type).To(Equal(tt.wantKeyType))

			signer := c
			if tt.wantSignedBy != nil {
				signer = tt.wantSignedBy
			}
			g.Expect(c.Certificate.CheckSignatureFrom(signer.Certificate)).To(Succeed())
		})
	}
}

func TestPEMConcatenatesInOrder(t *testing.T) {
	g := NewWithT(t)
	root, err := certstest.MintCA()
	g.Expect(err).NotTo(HaveOccurred())
	inter, err := certstest.MintIntermediate(root)
	g.Expect(err).NotTo(HaveOccurred())

	first, rest := pem.Decode(certstest.PEM(inter, root))
	second, rest := pem.Decode(rest)

	g.Expect(first.Bytes).To(Equal(inter.Certificate.Raw))
	g.Expect(second.Bytes).To(Equal(root.Certificate.Raw))
	g.Expect(rest).To(BeEmpty())
	g.Expect(inter.Certificate.Subject.CommonName).To(Equal("meshguard test intermediate"))
	g.Expect(root.Certificate.Subject.CommonName).To(Equal("meshguard test root"))
}
