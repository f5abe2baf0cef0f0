package certs_test

import (
	"testing"

	. "github.com/onsi/gomega"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/certs"
	"github.com/meshguard/meshguard/internal/certs/certstest"
)

const (
	nsRootSource      = "ConfigMap shop/istio-ca-root-cert[root-cert.pem]"
	caCertSource      = "Secret istio-system/cacerts[ca-cert.pem]"
	caRootSource      = "Secret istio-system/cacerts[root-cert.pem]"
	caChainSource     = "Secret istio-system/cacerts[cert-chain.pem]"
	selfSignedSource  = "Secret istio-system/istio-ca-secret[ca-cert.pem]"
	tlsCertSource     = "Secret istio-system/cacerts[tls.crt]"
	tlsRootCertSource = "Secret istio-system/cacerts[ca.crt]"
)

// namespaceRoot is the istio-ca-root-cert ConfigMap of namespace shop.
func namespaceRoot(roots ...*certstest.Cert) certs.Source {
	return configMap("shop", certs.IstioRootConfigMap,
		map[string][]byte{certs.IstioRootConfigMapKey: certstest.PEM(roots...)})
}

// cacerts is a plugged-in CA Secret in the istiod layout, as Istio's docs make it.
func cacerts(ca *certstest.Cert, chain []*certstest.Cert, roots ...*certstest.Cert) certs.Source {
	return cacertsData(map[string][]byte{
		certs.KeyCACert:    ca.CertPEM,
		"ca-key.pem":       ca.KeyPEM,
		certs.KeyCertChain: certstest.PEM(append([]*certstest.Cert{ca}, chain...)...),
		certs.KeyRootCert:  certstest.PEM(roots...),
	})
}

func cacertsData(data map[string][]byte) certs.Source {
	return secret("istio-system", certs.IstioCACertsSecret, data)
}

// istioCASecret is istiod's self-signed CA Secret, with the empty keys istiod writes.
func istioCASecret(ca *certstest.Cert) certs.Source {
	return secret("istio-system", certs.IstioSelfSignedCASecret, map[string][]byte{
		certs.KeyCACert:    ca.CertPEM,
		"ca-key.pem":       ca.KeyPEM,
		certs.KeyCertChain: nil,
		"key.pem":          nil,
		certs.KeyRootCert:  nil,
	})
}

var (
	noCACerts       = absent("Secret", "istio-system", certs.IstioCACertsSecret)
	noIstioCASecret = absent("Secret", "istio-system", certs.IstioSelfSignedCASecret)
)

func TestCheckIstio(t *testing.T) {
	meshRoot := root(t, "istio root")
	intermediate := signed(t, meshRoot, "istio intermediate")
	otherRoot := root(t, "other root", validity(-900*day, 400*day))
	otherIntermediate := signed(t, otherRoot, "other intermediate")
	selfSigned := root(t, "istiod self-signed")

	// The mesh root re-issued with the same key and name: a new fingerprint, the same trust.
	reissuedRoot := root(t, "istio root", certstest.WithKey(meshRoot.Key), validity(-day, 3650*day))

	// meshRoot → middle → signing: cert-chain.pem carries the middle intermediate.
	middle := signed(t, meshRoot, "istio middle", validity(-30*day, 700*day))
	deepIntermediate := signed(t, middle, "istio deep intermediate")

	// A root that expired yesterday and its intermediate, which outlives it.
	expiredRoot := root(t, "istio root", validity(-800*day, -day))
	orphanIntermediate := signed(t, expiredRoot, "istio intermediate", validity(-700*day, 30*day))

	tests := []struct {
		name          string
		namespaceRoot certs.Source
		cacerts       certs.Source
		istioCASecret certs.Source
		wantReason    string
		wantRows      []row
		wantInMessage []string
	}{
		{
			name:          "a plugged-in intermediate CA whose root the namespace trusts is Valid",
			namespaceRoot: namespaceRoot(meshRoot),
			cacerts:       cacerts(intermediate, []*certstest.Cert{meshRoot}, meshRoot),
			istioCASecret: noIstioCASecret,
			wantReason:    v1alpha1.ReasonCertValid,
			wantRows: []row{
				{nsRootSource, v1alpha1.RoleRoot, v1alpha1.ReasonCertValid},
				{caCertSource, v1alpha1.RoleIntermediate, v1alpha1.ReasonCertValid},
				{caRootSource, v1alpha1.RoleRoot, v1alpha1.ReasonCertValid},
			},
			wantInMessage: []string{"3 CA certificates are valid for at least 1440h; the first to expire is Intermediate " + caCertSource},
		},
		{
			name:          "a namespace root that is not the CA root is RootMismatch",
			namespaceRoot: namespaceRoot(otherRoot),
			cacerts:       cacerts(intermediate, nil, meshRoot),
			istioCASecret: noIstioCASecret,
			wantReason:    v1alpha1.ReasonCertRootMismatch,
			wantRows: []row{
				{nsRootSource, v1alpha1.RoleRoot, v1alpha1.ReasonCertRootMismatch},
				{caCertSource, v1alpha1.RoleIntermediate, v1alpha1.ReasonCertValid},
				{caRootSource, v1alpha1.RoleRoot, v1alpha1.ReasonCertValid},
			},
			wantInMessage: []string{"Root " + nsRootSource + " does not match the mesh CA roots in " + caRootSource + ` ("CN=istio root,O=meshguard test")`},
		},
		{
			name:          "a namespace root re-issued with the CA root's key still matches",
			namespaceRoot: namespaceRoot(reissuedRoot),
			cacerts:       cacerts(intermediate, nil, meshRoot),
			istioCASecret: noIstioCASecret,
			wantReason:    v1alpha1.ReasonCertValid,
			wantRows: []row{
				{nsRootSource, v1alpha1.RoleRoot, v1alpha1.ReasonCertValid},
				{caCertSource, v1alpha1.RoleIntermediate, v1alpha1.ReasonCertValid},
				{caRootSource, v1alpha1.RoleRoot, v1alpha1.ReasonCertValid},
			},
		},
		{
			name:          "a namespace bundle with an old and a new root during rotation reports both and matches",
			namespaceRoot: namespaceRoot(meshRoot, otherRoot),
			cacerts:       cacerts(intermediate, nil, meshRoot),
			istioCASecret: noIstioCASecret,
			wantReason:    v1alpha1.ReasonCertValid,
			wantRows: []row{
				// Sorted by notAfter within a source: otherRoot expires first.
				{nsRootSource, v1alpha1.RoleRoot, v1alpha1.ReasonCertValid},
				{nsRootSource, v1alpha1.RoleRoot, v1alpha1.ReasonCertValid},
				{caCertSource, v1alpha1.RoleIntermediate, v1alpha1.ReasonCertValid},
				{caRootSource, v1alpha1.RoleRoot, v1alpha1.ReasonCertValid},
			},
		},
		{
			name:          "a CA with two roots is matched by a namespace that trusts either",
			namespaceRoot: namespaceRoot(otherRoot),
			cacerts:       cacerts(intermediate, nil, meshRoot, otherRoot),
			istioCASecret: noIstioCASecret,
			wantReason:    v1alpha1.ReasonCertValid,
			wantRows: []row{
				{nsRootSource, v1alpha1.RoleRoot, v1alpha1.ReasonCertValid},
				{caCertSource, v1alpha1.RoleIntermediate, v1alpha1.ReasonCertValid},
				{caRootSource, v1alpha1.RoleRoot, v1alpha1.ReasonCertValid},
				{caRootSource, v1alpha1.RoleRoot, v1alpha1.ReasonCertValid},
			},
		},
		{
			name:          "a namespace bundle with two roots, neither the CA's, is RootMismatch on both",
			namespaceRoot: namespaceRoot(otherRoot, selfSigned),
			cacerts:       cacerts(intermediate, nil, meshRoot),
			istioCASecret: noIstioCASecret,
			wantReason:    v1alpha1.ReasonCertRootMismatch,
			wantRows: []row{
				{nsRootSource, v1alpha1.RoleRoot, v1alpha1.ReasonCertRootMismatch},
				{nsRootSource, v1alpha1.RoleRoot, v1alpha1.ReasonCertRootMismatch},
				{caCertSource, v1alpha1.RoleIntermediate, v1alpha1.ReasonCertValid},
				{caRootSource, v1alpha1.RoleRoot, v1alpha1.ReasonCertValid},
			},
		},
		{
			name:          "a plugged-in intermediate not signed by root-cert.pem is UntrustedChain",
			namespaceRoot: namespaceRoot(meshRoot),
			cacerts:       cacerts(otherIntermediate, nil, meshRoot),
			istioCASecret: noIstioCASecret,
			wantReason:    v1alpha1.ReasonCertUntrustedChain,
			wantRows: []row{
				{nsRootSource, v1alpha1.RoleRoot, v1alpha1.ReasonCertValid},
				{caCertSource, v1alpha1.RoleIntermediate, v1alpha1.ReasonCertUntrustedChain},
				{caRootSource, v1alpha1.RoleRoot, v1alpha1.ReasonCertValid},
			},
			wantInMessage: []string{"Intermediate " + caCertSource + " does not chain to the roots in " + caRootSource},
		},
		{
			name:          "an intermediate of cert-chain.pem is reported and the signing CA chains through it",
			namespaceRoot: namespaceRoot(meshRoot),
			cacerts:       cacerts(deepIntermediate, []*certstest.Cert{middle, meshRoot}, meshRoot),
			istioCASecret: noIstioCASecret,
			wantReason:    v1alpha1.ReasonCertValid,
			wantRows: []row{
				{nsRootSource, v1alpha1.RoleRoot, v1alpha1.ReasonCertValid},
				{caCertSource, v1alpha1.RoleIntermediate, v1alpha1.ReasonCertValid},
				{caChainSource, v1alpha1.RoleIntermediate, v1alpha1.ReasonCertValid},
				{caRootSource, v1alpha1.RoleRoot, v1alpha1.ReasonCertValid},
			},
		},
		{
			name:          "an expired root is Expired where it is stored and where it is trusted, but its intermediate still chains",
			namespaceRoot: namespaceRoot(expiredRoot),
			cacerts:       cacerts(orphanIntermediate, nil, expiredRoot),
			istioCASecret: noIstioCASecret,
			wantReason:    v1alpha1.ReasonCertExpired,
			wantRows: []row{
				{nsRootSource, v1alpha1.RoleRoot, v1alpha1.ReasonCertExpired},
				{caCertSource, v1alpha1.RoleIntermediate, v1alpha1.ReasonCertExpiringSoon},
				{caRootSource, v1alpha1.RoleRoot, v1alpha1.ReasonCertExpired},
			},
		},
		{
			name:          "the tls.crt layout of cacerts is preferred over ca-cert.pem",
			namespaceRoot: namespaceRoot(otherRoot),
			cacerts: cacertsData(map[string][]byte{
				certs.KeyTLSCert:  otherIntermediate.CertPEM,
				"tls.key":         otherIntermediate.KeyPEM,
				certs.KeyCACrt:    otherRoot.CertPEM,
				certs.KeyCACert:   []byte("stale, unreadable"),
				certs.KeyRootCert: meshRoot.CertPEM,
			}),
			istioCASecret: noIstioCASecret,
			wantReason:    v1alpha1.ReasonCertValid,
			wantRows: []row{
				{nsRootSource, v1alpha1.RoleRoot, v1alpha1.ReasonCertValid},
				{tlsRootCertSource, v1alpha1.RoleRoot, v1alpha1.ReasonCertValid},
				{tlsCertSource, v1alpha1.RoleIntermediate, v1alpha1.ReasonCertValid},
			},
		},
		{
			name:          "a tls.crt layout whose tls.crt carries the chain to the root reports the root once",
			namespaceRoot: namespaceRoot(meshRoot),
			cacerts: cacertsData(map[string][]byte{
				certs.KeyTLSCert: certstest.PEM(deepIntermediate, middle, meshRoot),
				certs.KeyCACrt:   meshRoot.CertPEM,
			}),
			istioCASecret: noIstioCASecret,
			wantReason:    v1alpha1.ReasonCertValid,
			wantRows: []row{
				{nsRootSource, v1alpha1.RoleRoot, v1alpha1.ReasonCertValid},
				{tlsRootCertSource, v1alpha1.RoleRoot, v1alpha1.ReasonCertValid},
				{tlsCertSource, v1alpha1.RoleIntermediate, v1alpha1.ReasonCertValid},
				{tlsCertSource, v1alpha1.RoleIntermediate, v1alpha1.ReasonCertValid},
			},
		},
		{
			name:          "istio-ca-secret is read when there is no cacerts, its certificate being the root",
			namespaceRoot: namespaceRoot(selfSigned),
			cacerts:       noCACerts,
			istioCASecret: istioCASecret(selfSigned),
			wantReason:    v1alpha1.ReasonCertValid,
			wantRows: []row{
				{nsRootSource, v1alpha1.RoleRoot, v1alpha1.ReasonCertValid},
				{selfSignedSource, v1alpha1.RoleRoot, v1alpha1.ReasonCertValid},
			},
		},
		{
			name:          "cacerts wins over istio-ca-secret",
			namespaceRoot: namespaceRoot(meshRoot),
			cacerts:       cacerts(intermediate, nil, meshRoot),
			istioCASecret: secret("istio-system", certs.IstioSelfSignedCASecret, map[string][]byte{certs.KeyCACert: []byte("unread")}),
			wantReason:    v1alpha1.ReasonCertValid,
			wantRows: []row{
				{nsRootSource, v1alpha1.RoleRoot, v1alpha1.ReasonCertValid},
				{caCertSource, v1alpha1.RoleIntermediate, v1alpha1.ReasonCertValid},
				{caRootSource, v1alpha1.RoleRoot, v1alpha1.ReasonCertValid},
			},
		},
		{
			name:          "a self-signed plugged-in CA without root-cert.pem is its own root",
			namespaceRoot: namespaceRoot(selfSigned),
			cacerts:       cacertsData(map[string][]byte{certs.KeyCACert: selfSigned.CertPEM}),
			istioCASecret: noIstioCASecret,
			wantReason:    v1alpha1.ReasonCertValid,
			wantRows: []row{
				{nsRootSource, v1alpha1.RoleRoot, v1alpha1.ReasonCertValid},
				{caCertSource, v1alpha1.RoleRoot, v1alpha1.ReasonCertValid},
			},
		},
		{
			name:          "a plugged-in intermediate without root-cert.pem is NotFound",
			namespaceRoot: namespaceRoot(meshRoot),
			cacerts:       cacertsData(map[string][]byte{certs.KeyCACert: intermediate.CertPEM}),
			istioCASecret: noIstioCASecret,
			wantReason:    v1alpha1.ReasonCertNotFound,
			wantRows: []row{
				{nsRootSource, v1alpha1.RoleRoot, v1alpha1.ReasonCertValid},
				{caCertSource, v1alpha1.RoleIntermediate, v1alpha1.ReasonCertValid},
				{caRootSource, v1alpha1.RoleRoot, v1alpha1.ReasonCertNotFound},
			},
			wantInMessage: []string{"Root " + caRootSource + " does not exist: the Secret has no key root-cert.pem"},
		},
		{
			name:          "a ca-cert.pem that is not PEM is Unreadable",
			namespaceRoot: namespaceRoot(meshRoot),
			cacerts: cacertsData(map[string][]byte{
				certs.KeyCACert:   []byte("garbage"),
				certs.KeyRootCert: meshRoot.CertPEM,
			}),
			istioCASecret: noIstioCASecret,
			wantReason:    v1alpha1.ReasonCertUnreadable,
			wantRows: []row{
				{nsRootSource, v1alpha1.RoleRoot, v1alpha1.ReasonCertValid},
				{caCertSource, v1alpha1.RoleIntermediate, v1alpha1.ReasonCertUnreadable},
				{caRootSource, v1alpha1.RoleRoot, v1alpha1.ReasonCertValid},
			},
		},
		{
			name:          "neither cacerts nor istio-ca-secret is NotFound",
			namespaceRoot: namespaceRoot(meshRoot),
			cacerts:       noCACerts,
			istioCASecret: noIstioCASecret,
			wantReason:    v1alpha1.ReasonCertNotFound,
			wantRows: []row{
				{nsRootSource, v1alpha1.RoleRoot, v1alpha1.ReasonCertValid},
				{"Secret istio-system/istio-ca-secret", v1alpha1.RoleRoot, v1alpha1.ReasonCertNotFound},
			},
			wantInMessage: []string{"Root Secret istio-system/istio-ca-secret does not exist, nor does Secret istio-system/cacerts"},
		},
		{
			name:          "a missing istio-ca-root-cert ConfigMap is NotFound",
			namespaceRoot: absent("ConfigMap", "shop", certs.IstioRootConfigMap),
			cacerts:       cacerts(intermediate, nil, meshRoot),
			istioCASecret: noIstioCASecret,
			wantReason:    v1alpha1.ReasonCertNotFound,
			wantRows: []row{
				{"ConfigMap shop/istio-ca-root-cert", v1alpha1.RoleRoot, v1alpha1.ReasonCertNotFound},
				{caCertSource, v1alpha1.RoleIntermediate, v1alpha1.ReasonCertValid},
				{caRootSource, v1alpha1.RoleRoot, v1alpha1.ReasonCertValid},
			},
			wantInMessage: []string{"Root ConfigMap shop/istio-ca-root-cert does not exist: istiod has not published the mesh roots to this namespace"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)

			rep := certs.CheckIstio(tt.namespaceRoot, tt.cacerts, tt.istioCASecret, now, minValidity)

			g.Expect(rowsOf(rep)).To(Equal(tt.wantRows))
			g.Expect(rep.Reason).To(Equal(tt.wantReason))
			g.Expect(rep.Blocking).To(Equal(certs.IsBlocking(tt.wantReason)))
			g.Expect(rep.Healthy).To(Equal(tt.wantReason == v1alpha1.ReasonCertValid))
			for _, want := range tt.wantInMessage {
				g.Expect(rep.Message).To(ContainSubstring(want))
			}
		})
	}
}
