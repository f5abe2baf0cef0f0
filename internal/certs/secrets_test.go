package certs_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/certs"
	"github.com/meshguard/meshguard/internal/certs/certstest"
)

// TestKeyMaterialNeverLeaves places private keys where they belong (key entries) and where
// they do not (certificate entries) and checks that no output field carries any of them.
func TestKeyMaterialNeverLeaves(t *testing.T) {
	anchor := root(t, "root.linkerd.cluster.local")
	issuer := signed(t, anchor, "identity.linkerd.cluster.local")
	rsaIssuer := signed(t, anchor, "identity.linkerd.cluster.local", certstest.WithRSA(2048))
	meshRoot := root(t, "istio root")
	intermediate := signed(t, meshRoot, "istio intermediate")
	keys := []*certstest.Cert{anchor, issuer, rsaIssuer, meshRoot, intermediate}
	concat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

	tests := []struct {
		name       string
		check      func() certs.Report
		wantStates []string
	}{
		{
			name: "Linkerd key entries are ignored",
			check: func() certs.Report {
				return certs.CheckLinkerd(trustRoots(anchor), secret("linkerd", certs.LinkerdIssuerSecret, map[string][]byte{
					"crt.pem": issuer.CertPEM, "key.pem": issuer.KeyPEM, "tls.key": issuer.KeyPEM, "ca-key.pem": anchor.KeyPEM,
				}), now, minValidity)
			},
			wantStates: []string{v1alpha1.ReasonCertValid, v1alpha1.ReasonCertValid},
		},
		{
			name: "a Linkerd issuer key appended to crt.pem makes it Unreadable without quoting it",
			check: func() certs.Report {
				return certs.CheckLinkerd(trustRoots(anchor), secret("linkerd", certs.LinkerdIssuerSecret, map[string][]byte{
					"crt.pem": concat(issuer.CertPEM, issuer.KeyPEM), "key.pem": issuer.KeyPEM,
				}), now, minValidity)
			},
			wantStates: []string{v1alpha1.ReasonCertValid, v1alpha1.ReasonCertUnreadable},
		},
		{
			name: "an RSA issuer key in front of tls.crt makes it Unreadable without quoting it",
			check: func() certs.Report {
				return certs.CheckLinkerd(trustRoots(anchor), secret("linkerd", certs.LinkerdIssuerSecret, map[string][]byte{
					"tls.crt": concat(rsaIssuer.KeyPEM, rsaIssuer.CertPEM), "tls.key": rsaIssuer.KeyPEM,
				}), now, minValidity)
			},
			wantStates: []string{v1alpha1.ReasonCertValid, v1alpha1.ReasonCertUnreadable},
		},
		{
			name: "a key in the trust bundle makes it Unreadable without quoting it",
			check: func() certs.Report {
				return certs.CheckLinkerd(configMap("linkerd", certs.LinkerdTrustRootsConfigMap, map[string][]byte{
					certs.LinkerdTrustRootsKey: concat(anchor.CertPEM, anchor.KeyPEM),
				}), issuerSecret(issuer), now, minValidity)
			},
			wantStates: []string{v1alpha1.ReasonCertUnreadable, v1alpha1.ReasonCertValid},
		},
		{
			name: "Istio key entries are ignored",
			check: func() certs.Report {
				return certs.CheckIstio(namespaceRoot(meshRoot), cacerts(intermediate, nil, meshRoot),
					istioCASecret(anchor), now, minValidity)
			},
			wantStates: []string{v1alpha1.ReasonCertValid, v1alpha1.ReasonCertValid, v1alpha1.ReasonCertValid},
		},
		{
			name: "Istio keys stored under certificate entries make them Unreadable without quoting them",
			check: func() certs.Report {
				return certs.CheckIstio(namespaceRoot(meshRoot), cacertsData(map[string][]byte{
					certs.KeyCACert:    intermediate.KeyPEM,
					"ca-key.pem":       intermediate.KeyPEM,
					certs.KeyCertChain: concat(intermediate.CertPEM, intermediate.KeyPEM),
					certs.KeyRootCert:  concat(meshRoot.KeyPEM, meshRoot.CertPEM),
				}), noIstioCASecret, now, minValidity)
			},
			wantStates: []string{v1alpha1.ReasonCertValid, v1alpha1.ReasonCertUnreadable, v1alpha1.ReasonCertUnreadable, v1alpha1.ReasonCertUnreadable},
		},
		{
			name: "a key under tls.crt of cacerts makes it Unreadable without quoting it",
			check: func() certs.Report {
				return certs.CheckIstio(namespaceRoot(meshRoot), cacertsData(map[string][]byte{
					certs.KeyTLSCert: intermediate.KeyPEM,
					"tls.key":        intermediate.KeyPEM,
					certs.KeyCACrt:   meshRoot.CertPEM,
				}), istioCASecret(anchor), now, minValidity)
			},
			wantStates: []string{v1alpha1.ReasonCertValid, v1alpha1.ReasonCertValid, v1alpha1.ReasonCertUnreadable},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)

			rep := tt.check()

			g.Expect(states(rep)).To(Equal(tt.wantStates))
			js, err := json.Marshal(rep)
			g.Expect(err).NotTo(HaveOccurred())
			for _, out := range []string{string(js), fmt.Sprintf("%#v", rep), fmt.Sprintf("%+v", rep)} {
				g.Expect(out).NotTo(ContainSubstring("PRIVATE"))
				for _, k := range keys {
					for _, fragment := range keyFragments(t, k.KeyPEM) {
						g.Expect(out).NotTo(ContainSubstring(fragment))
					}
				}
			}
		})
	}
}

// keyFragments are pieces of a PEM key that would betray it: every 16 characters of its base64
// body and the hex of every 16 bytes of its DER.
func keyFragments(t *testing.T, keyPEM []byte) []string {
	t.Helper()
	block, _ := pem.Decode(keyPEM)
	if block == nil || !strings.Contains(block.Type, "PRIVATE KEY") {
		t.Fatalf("not a PEM private key")
	}
	var out []string
	body := base64.StdEncoding.EncodeToString(block.Bytes)
	for i := 0; i+16 <= len(body); i += 16 {
		out = append(out, body[i:i+16])
	}
	for i := 0; i+16 <= len(block.Bytes); i += 16 {
		out = append(out, hex.EncodeToString(block.Bytes[i:i+16]))
	}
	return out
}
