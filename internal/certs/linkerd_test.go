package certs_test

import (
	"cmp"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/certs"
	"github.com/meshguard/meshguard/internal/certs/certstest"
)

const (
	trustRootsSource = "ConfigMap linkerd/linkerd-identity-trust-roots[ca-bundle.crt]"
	issuerSource     = "Secret linkerd/linkerd-identity-issuer[crt.pem]"
)

func trustRoots(anchors ...*certstest.Cert) certs.Source {
	return configMap("linkerd", certs.LinkerdTrustRootsConfigMap,
		map[string][]byte{certs.LinkerdTrustRootsKey: certstest.PEM(anchors...)})
}

// issuerSecret is a linkerd.io/tls issuer Secret: crt.pem holds the chain, key.pem the key.
func issuerSecret(chain ...*certstest.Cert) certs.Source {
	return secret("linkerd", certs.LinkerdIssuerSecret, map[string][]byte{
		certs.KeyLinkerdIssuerCert: certstest.PEM(chain...),
		"key.pem":                  chain[0].KeyPEM,
	})
}

func TestCheckLinkerd(t *testing.T) {
	anchor := root(t, "root.linkerd.cluster.local")
	otherAnchor := root(t, "other.linkerd.cluster.local")
	issuer := signed(t, anchor, "identity.linkerd.cluster.local")
	ed25519Key := func() ed25519.PrivateKey {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}()

	// A rotation: the old anchor expires in 100 days, the new one was added to the bundle.
	oldAnchor := root(t, "root.linkerd.cluster.local", validity(-900*day, 100*day))
	newAnchor := root(t, "root.linkerd.cluster.local", validity(-day, 3650*day))

	// An anchor that expires in 10 days, and one that expired yesterday.
	shortAnchor := root(t, "root.linkerd.cluster.local", validity(-365*day, 10*day))
	expiredAnchor := root(t, "root.linkerd.cluster.local", validity(-400*day, -day))

	rsaAnchor := root(t, "rsa.linkerd.cluster.local", certstest.WithRSA(2048))
	hourAnchor := root(t, "root.linkerd.cluster.local", validity(-day, time.Hour))

	// anchor → intermediate → issuer, the issuer expiring first.
	intermediate := signed(t, anchor, "intermediate.linkerd.cluster.local", validity(-30*day, 700*day))
	chainedIssuer := signed(t, intermediate, "identity.linkerd.cluster.local", validity(-30*day, 300*day))

	tests := []struct {
		name          string
		trustRoots    certs.Source
		issuer        certs.Source
		minValidity   time.Duration // minValidity when zero
		noMinValidity bool
		wantReason    string
		wantBlocking  bool
		wantRows      []row
		wantInMessage []string
	}{
		{
			name:       "an issuer signed by the only trust anchor is Valid",
			trustRoots: trustRoots(anchor),
			issuer:     issuerSecret(issuer),
			wantReason: v1alpha1.ReasonCertValid,
			wantRows: []row{
				{trustRootsSource, v1alpha1.RoleTrustAnchor, v1alpha1.ReasonCertValid},
				{issuerSource, v1alpha1.RoleIssuer, v1alpha1.ReasonCertValid},
			},
			wantInMessage: []string{"2 CA certificates are valid for at least 1440h; the first to expire is Issuer " + issuerSource},
		},
		{
			name:       "a trust anchor that expires in 10 days is ExpiringSoon under a 60-day minimum, which does not block",
			trustRoots: trustRoots(shortAnchor),
			issuer:     issuerSecret(signed(t, shortAnchor, "identity", validity(-30*day, 300*day))),
			wantReason: v1alpha1.ReasonCertExpiringSoon,
			wantRows: []row{
				{trustRootsSource, v1alpha1.RoleTrustAnchor, v1alpha1.ReasonCertExpiringSoon},
				{issuerSource, v1alpha1.RoleIssuer, v1alpha1.ReasonCertValid},
			},
			wantInMessage: []string{"TrustAnchor " + trustRootsSource + " expires in 10d (< 1440h)"},
		},
		{
			name:       "an issuer that expires in 9 days says so in the message",
			trustRoots: trustRoots(anchor),
			issuer:     issuerSecret(signed(t, anchor, "identity", validity(-30*day, 9*day+time.Hour))),
			wantReason: v1alpha1.ReasonCertExpiringSoon,
			wantRows: []row{
				{trustRootsSource, v1alpha1.RoleTrustAnchor, v1alpha1.ReasonCertValid},
				{issuerSource, v1alpha1.RoleIssuer, v1alpha1.ReasonCertExpiringSoon},
			},
			wantInMessage: []string{"Issuer " + issuerSource + " expires in 9d (< 1440h)"},
		},
		{
			name:         "an expired issuer is Expired and blocks",
			trustRoots:   trustRoots(anchor),
			issuer:       issuerSecret(signed(t, anchor, "identity", validity(-400*day, -2*day))),
			wantReason:   v1alpha1.ReasonCertExpired,
			wantBlocking: true,
			wantRows: []row{
				{trustRootsSource, v1alpha1.RoleTrustAnchor, v1alpha1.ReasonCertValid},
				{issuerSource, v1alpha1.RoleIssuer, v1alpha1.ReasonCertExpired},
			},
			wantInMessage: []string{"Issuer " + issuerSource + " expired 2d ago, at 2026-02-27T12:00:00Z"},
		},
		{
			name:         "an issuer signed by another root is UntrustedChain",
			trustRoots:   trustRoots(anchor),
			issuer:       issuerSecret(signed(t, otherAnchor, "identity")),
			wantReason:   v1alpha1.ReasonCertUntrustedChain,
			wantBlocking: true,
			wantRows: []row{
				{trustRootsSource, v1alpha1.RoleTrustAnchor, v1alpha1.ReasonCertValid},
				{issuerSource, v1alpha1.RoleIssuer, v1alpha1.ReasonCertUntrustedChain},
			},
			wantInMessage: []string{"does not chain to the roots in " + trustRootsSource, "unknown authority"},
		},
		{
			name:         "an expired issuer signed by another root is Expired and says it is untrusted too",
			trustRoots:   trustRoots(anchor),
			issuer:       issuerSecret(signed(t, otherAnchor, "identity", validity(-300*day, -day))),
			wantReason:   v1alpha1.ReasonCertExpired,
			wantBlocking: true,
			wantRows: []row{
				{trustRootsSource, v1alpha1.RoleTrustAnchor, v1alpha1.ReasonCertValid},
				{issuerSource, v1alpha1.RoleIssuer, v1alpha1.ReasonCertExpired},
			},
			wantInMessage: []string{"expired 24h ago", "does not chain to the roots", "unknown authority"},
		},
		{
			name:         "an issuer whose chain is broken only by the anchor's expiry is not called untrusted",
			trustRoots:   trustRoots(expiredAnchor),
			issuer:       issuerSecret(signed(t, expiredAnchor, "identity", validity(-300*day, 300*day))),
			wantReason:   v1alpha1.ReasonCertExpired,
			wantBlocking: true,
			wantRows: []row{
				{trustRootsSource, v1alpha1.RoleTrustAnchor, v1alpha1.ReasonCertExpired},
				{issuerSource, v1alpha1.RoleIssuer, v1alpha1.ReasonCertValid},
			},
		},
		{
			name:         "an issuer that is not yet valid is NotYetValid",
			trustRoots:   trustRoots(anchor),
			issuer:       issuerSecret(signed(t, anchor, "identity", validity(3*day, 300*day))),
			wantReason:   v1alpha1.ReasonCertNotYetValid,
			wantBlocking: true,
			wantRows: []row{
				{trustRootsSource, v1alpha1.RoleTrustAnchor, v1alpha1.ReasonCertValid},
				{issuerSource, v1alpha1.RoleIssuer, v1alpha1.ReasonCertNotYetValid},
			},
			wantInMessage: []string{"is not valid before 2026-03-04T12:00:00Z (in 3d)"},
		},
		{
			name:         "an issuer with an RSA 1024-bit key is UnsupportedAlgorithm",
			trustRoots:   trustRoots(anchor),
			issuer:       issuerSecret(signed(t, anchor, "identity", certstest.WithRSA(1024))),
			wantReason:   v1alpha1.ReasonCertUnsupported,
			wantBlocking: true,
			wantRows: []row{
				{trustRootsSource, v1alpha1.RoleTrustAnchor, v1alpha1.ReasonCertValid},
				{issuerSource, v1alpha1.RoleIssuer, v1alpha1.ReasonCertUnsupported},
			},
			wantInMessage: []string{"has an unsupported RSA 1024-bit key"},
		},
		{
			name:         "an issuer with an Ed25519 key is UnsupportedAlgorithm",
			trustRoots:   trustRoots(anchor),
			issuer:       issuerSecret(signed(t, anchor, "identity", certstest.WithKey(ed25519Key))),
			wantReason:   v1alpha1.ReasonCertUnsupported,
			wantBlocking: true,
			wantRows: []row{
				{trustRootsSource, v1alpha1.RoleTrustAnchor, v1alpha1.ReasonCertValid},
				{issuerSource, v1alpha1.RoleIssuer, v1alpha1.ReasonCertUnsupported},
			},
			wantInMessage: []string{"has an unsupported Ed25519 key"},
		},
		{
			name:       "a P-384 issuer under an RSA 2048-bit anchor is Valid",
			trustRoots: trustRoots(rsaAnchor),
			issuer:     issuerSecret(signed(t, rsaAnchor, "identity", certstest.WithECDSA(elliptic.P384()))),
			wantReason: v1alpha1.ReasonCertValid,
			wantRows: []row{
				{trustRootsSource, v1alpha1.RoleTrustAnchor, v1alpha1.ReasonCertValid},
				{issuerSource, v1alpha1.RoleIssuer, v1alpha1.ReasonCertValid},
			},
		},
		{
			name:         "an issuer that is not a CA is UntrustedChain",
			trustRoots:   trustRoots(anchor),
			issuer:       issuerSecret(signed(t, anchor, "identity", certstest.NotCA())),
			wantReason:   v1alpha1.ReasonCertUntrustedChain,
			wantBlocking: true,
			wantRows: []row{
				{trustRootsSource, v1alpha1.RoleTrustAnchor, v1alpha1.ReasonCertValid},
				{issuerSource, v1alpha1.RoleIssuer, v1alpha1.ReasonCertUntrustedChain},
			},
			wantInMessage: []string{"is not a CA certificate"},
		},
		{
			name: "a trust bundle that is not PEM is Unreadable and the issuer's chain is not checked",
			trustRoots: configMap("linkerd", certs.LinkerdTrustRootsConfigMap,
				map[string][]byte{certs.LinkerdTrustRootsKey: []byte("this is not a certificate")}),
			issuer:       issuerSecret(issuer),
			wantReason:   v1alpha1.ReasonCertUnreadable,
			wantBlocking: true,
			wantRows: []row{
				{trustRootsSource, v1alpha1.RoleTrustAnchor, v1alpha1.ReasonCertUnreadable},
				{issuerSource, v1alpha1.RoleIssuer, v1alpha1.ReasonCertValid},
			},
			wantInMessage: []string{"no PEM-encoded certificate found"},
		},
		{
			name:       "a certificate PEM block that is not DER is Unreadable",
			trustRoots: trustRoots(anchor),
			issuer: secret("linkerd", certs.LinkerdIssuerSecret, map[string][]byte{
				certs.KeyLinkerdIssuerCert: []byte("-----BEGIN CERTIFICATE-----\nZ2FyYmFnZQ==\n-----END CERTIFICATE-----\n"),
			}),
			wantReason:   v1alpha1.ReasonCertUnreadable,
			wantBlocking: true,
			wantRows: []row{
				{trustRootsSource, v1alpha1.RoleTrustAnchor, v1alpha1.ReasonCertValid},
				{issuerSource, v1alpha1.RoleIssuer, v1alpha1.ReasonCertUnreadable},
			},
			wantInMessage: []string{"cannot be read: certificate 1: x509:"},
		},
		{
			name:         "a missing trust roots ConfigMap is NotFound",
			trustRoots:   absent("ConfigMap", "linkerd", certs.LinkerdTrustRootsConfigMap),
			issuer:       issuerSecret(issuer),
			wantReason:   v1alpha1.ReasonCertNotFound,
			wantBlocking: true,
			wantRows: []row{
				{"ConfigMap linkerd/linkerd-identity-trust-roots", v1alpha1.RoleTrustAnchor, v1alpha1.ReasonCertNotFound},
				{issuerSource, v1alpha1.RoleIssuer, v1alpha1.ReasonCertValid},
			},
			wantInMessage: []string{"TrustAnchor ConfigMap linkerd/linkerd-identity-trust-roots does not exist"},
		},
		{
			name:         "a trust roots ConfigMap without ca-bundle.crt is NotFound",
			trustRoots:   configMap("linkerd", certs.LinkerdTrustRootsConfigMap, map[string][]byte{"other": anchor.CertPEM}),
			issuer:       issuerSecret(issuer),
			wantReason:   v1alpha1.ReasonCertNotFound,
			wantBlocking: true,
			wantRows: []row{
				{trustRootsSource, v1alpha1.RoleTrustAnchor, v1alpha1.ReasonCertNotFound},
				{issuerSource, v1alpha1.RoleIssuer, v1alpha1.ReasonCertValid},
			},
		},
		{
			name:         "a missing issuer Secret is NotFound",
			trustRoots:   trustRoots(anchor),
			issuer:       absent("Secret", "linkerd", certs.LinkerdIssuerSecret),
			wantReason:   v1alpha1.ReasonCertNotFound,
			wantBlocking: true,
			wantRows: []row{
				{trustRootsSource, v1alpha1.RoleTrustAnchor, v1alpha1.ReasonCertValid},
				{"Secret linkerd/linkerd-identity-issuer", v1alpha1.RoleIssuer, v1alpha1.ReasonCertNotFound},
			},
		},
		{
			name:         "an issuer Secret with neither crt.pem nor tls.crt is NotFound",
			trustRoots:   trustRoots(anchor),
			issuer:       secret("linkerd", certs.LinkerdIssuerSecret, map[string][]byte{"key.pem": issuer.KeyPEM}),
			wantReason:   v1alpha1.ReasonCertNotFound,
			wantBlocking: true,
			wantRows: []row{
				{trustRootsSource, v1alpha1.RoleTrustAnchor, v1alpha1.ReasonCertValid},
				{issuerSource, v1alpha1.RoleIssuer, v1alpha1.ReasonCertNotFound},
			},
			wantInMessage: []string{"neither crt.pem (linkerd.io/tls) nor tls.crt (kubernetes.io/tls)"},
		},
		{
			name:       "a kubernetes.io/tls issuer Secret is read from tls.crt",
			trustRoots: trustRoots(anchor),
			issuer: secret("linkerd", certs.LinkerdIssuerSecret, map[string][]byte{
				"tls.crt": issuer.CertPEM,
				"tls.key": issuer.KeyPEM,
				"ca.crt":  anchor.CertPEM,
			}),
			wantReason: v1alpha1.ReasonCertValid,
			wantRows: []row{
				{trustRootsSource, v1alpha1.RoleTrustAnchor, v1alpha1.ReasonCertValid},
				{"Secret linkerd/linkerd-identity-issuer[tls.crt]", v1alpha1.RoleIssuer, v1alpha1.ReasonCertValid},
			},
		},
		{
			name:       "a rotated bundle with two anchors reports both and trusts an issuer of the old one",
			trustRoots: trustRoots(oldAnchor, newAnchor),
			issuer:     issuerSecret(signed(t, oldAnchor, "identity", validity(-30*day, 90*day))),
			wantReason: v1alpha1.ReasonCertValid,
			wantRows: []row{
				{trustRootsSource, v1alpha1.RoleTrustAnchor, v1alpha1.ReasonCertValid},
				{trustRootsSource, v1alpha1.RoleTrustAnchor, v1alpha1.ReasonCertValid},
				{issuerSource, v1alpha1.RoleIssuer, v1alpha1.ReasonCertValid},
			},
			// The old anchor and the issuer expire within 1440h: judge them against 30 days.
			minValidity: 30 * day,
		},
		{
			name:       "a rotated bundle with two anchors reports both and trusts an issuer of the new one",
			trustRoots: trustRoots(newAnchor, oldAnchor),
			issuer:     issuerSecret(signed(t, newAnchor, "identity")),
			wantReason: v1alpha1.ReasonCertValid,
			wantRows: []row{
				{trustRootsSource, v1alpha1.RoleTrustAnchor, v1alpha1.ReasonCertValid},
				{trustRootsSource, v1alpha1.RoleTrustAnchor, v1alpha1.ReasonCertValid},
				{issuerSource, v1alpha1.RoleIssuer, v1alpha1.ReasonCertValid},
			},
			minValidity: 30 * day,
		},
		{
			name:       "an issuer followed by its intermediate chains through it and both are reported",
			trustRoots: trustRoots(anchor),
			issuer:     issuerSecret(chainedIssuer, intermediate, anchor),
			wantReason: v1alpha1.ReasonCertValid,
			wantRows: []row{
				{trustRootsSource, v1alpha1.RoleTrustAnchor, v1alpha1.ReasonCertValid},
				{issuerSource, v1alpha1.RoleIssuer, v1alpha1.ReasonCertValid},
				{issuerSource, v1alpha1.RoleIntermediate, v1alpha1.ReasonCertValid},
			},
		},
		{
			name:         "an issuer without its intermediate does not chain to the anchor",
			trustRoots:   trustRoots(anchor),
			issuer:       issuerSecret(chainedIssuer),
			wantReason:   v1alpha1.ReasonCertUntrustedChain,
			wantBlocking: true,
			wantRows: []row{
				{trustRootsSource, v1alpha1.RoleTrustAnchor, v1alpha1.ReasonCertValid},
				{issuerSource, v1alpha1.RoleIssuer, v1alpha1.ReasonCertUntrustedChain},
			},
		},
		{
			name:       "a zero minimum validity never reports ExpiringSoon",
			trustRoots: trustRoots(hourAnchor),
			issuer:     issuerSecret(signed(t, hourAnchor, "identity", validity(-time.Hour, 30*time.Minute))),
			wantReason: v1alpha1.ReasonCertValid,
			wantRows: []row{
				{trustRootsSource, v1alpha1.RoleTrustAnchor, v1alpha1.ReasonCertValid},
				{issuerSource, v1alpha1.RoleIssuer, v1alpha1.ReasonCertValid},
			},
			wantInMessage: []string{"2 CA certificates are valid; the first to expire is Issuer " + issuerSource + ", at 2026-03-01T12:30:00Z"},
			noMinValidity: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			mv := cmp.Or(tt.minValidity, minValidity)
			if tt.noMinValidity {
				mv = 0
			}

			rep := certs.CheckLinkerd(tt.trustRoots, tt.issuer, now, mv)

			g.Expect(rowsOf(rep)).To(Equal(tt.wantRows))
			g.Expect(rep.Reason).To(Equal(tt.wantReason))
			g.Expect(rep.Blocking).To(Equal(tt.wantBlocking))
			g.Expect(rep.Healthy).To(Equal(tt.wantReason == v1alpha1.ReasonCertValid))
			for _, want := range tt.wantInMessage {
				g.Expect(rep.Message).To(ContainSubstring(want))
			}
		})
	}
}
