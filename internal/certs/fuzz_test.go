package certs_test

import (
	"bytes"
	"encoding/base64"
	"slices"
	"strings"
	"testing"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/certs"
	"github.com/meshguard/meshguard/internal/certs/certstest"
)

// knownReasons are the states a certificate can be reported in.
var knownReasons = []string{
	v1alpha1.ReasonCertNotFound, v1alpha1.ReasonCertUnreadable, v1alpha1.ReasonCertExpired,
	v1alpha1.ReasonCertNotYetValid, v1alpha1.ReasonCertUntrustedChain, v1alpha1.ReasonCertRootMismatch,
	v1alpha1.ReasonCertUnsupported, v1alpha1.ReasonCertExpiringSoon, v1alpha1.ReasonCertValid,
}

// checkReport holds for any input: every row has a source, a role and a known state; the summary
// is the worst of them; and nothing of the input that is not a parsed certificate's public
// fields reaches the report — no PEM text, no bytes of a block that is not a certificate (it
// may be a private key stored under the wrong key).
func checkReport(t *testing.T, rep certs.Report, inputs ...[]byte) {
	t.Helper()
	if !slices.Contains(knownReasons, rep.Reason) {
		t.Fatalf("unknown reason %q", rep.Reason)
	}
	if len(rep.Certificates) == 0 {
		t.Fatal("no row: a missing or unreadable CA must be reported")
	}
	worst := certs.Worst()
	for _, c := range rep.Certificates {
		if c.Source == "" || c.Role == "" || !slices.Contains(knownReasons, c.State) {
			t.Fatalf("incomplete row: %+v", c)
		}
		worst = certs.Worst(worst, c.State)
	}
	if rep.Reason != worst {
		t.Fatalf("reason %s is not the worst state %s", rep.Reason, worst)
	}
	text := rep.Message
	for _, c := range rep.Certificates {
		text += "\n" + c.Message + "\n" + c.Subject
	}
	if strings.Contains(text, "-----BEGIN") {
		t.Fatalf("PEM text in the report: %s", text)
	}
	for _, in := range inputs {
		for _, secret := range nonCertificateBlocks(in) {
			if strings.Contains(text, secret) {
				t.Fatalf("the body of a non-certificate PEM block is in the report: %s", text)
			}
		}
	}
}

// nonCertificateBlocks returns the base64 body lines (of 16 characters or more) of the PEM blocks
// of data that are not certificates.
func nonCertificateBlocks(data []byte) []string {
	var out []string
	for _, block := range strings.Split(string(data), "-----BEGIN ")[1:] {
		if strings.HasPrefix(block, "CERTIFICATE-----") {
			continue
		}
		for _, line := range strings.Split(block, "\n")[1:] {
			line = strings.TrimSpace(line)
			if len(line) >= 16 && !strings.HasPrefix(line, "-----") {
				out = append(out, line)
			}
		}
	}
	return out
}

// seedChain mints a root, an intermediate and a leaf for the seeds, and a private key PEM.
func seedChain(f *testing.F) (root, intermediate, leaf *certstest.Cert) {
	f.Helper()
	var err error
	if root, err = certstest.MintCA(certstest.WithSubject("root.fuzz")); err != nil {
		f.Fatal(err)
	}
	if intermediate, err = certstest.MintIntermediate(root, certstest.WithSubject("intermediate.fuzz")); err != nil {
		f.Fatal(err)
	}
	if leaf, err = certstest.Mint(certstest.SignedBy(intermediate), certstest.NotCA(), certstest.WithSubject("leaf.fuzz")); err != nil {
		f.Fatal(err)
	}
	return root, intermediate, leaf
}

// truncated cuts a PEM document in the middle of its base64 body.
func truncated(b []byte) []byte { return b[:len(b)/2] }

// corrupted flips a byte of the DER inside a PEM block, re-encoded, so that it still decodes as
// PEM but not as a certificate.
func corrupted(b []byte) []byte {
	lines := bytes.Split(b, []byte("\n"))
	der, err := base64.StdEncoding.DecodeString(string(bytes.Join(lines[1:len(lines)-2], nil)))
	if err != nil || len(der) < 40 {
		return b
	}
	der[len(der)/2] ^= 0xff
	return []byte("-----BEGIN CERTIFICATE-----\n" + base64.StdEncoding.EncodeToString(der) + "\n-----END CERTIFICATE-----\n")
}

// FuzzCheckLinkerd feeds arbitrary trust anchor bundles and issuer certificates to CheckLinkerd.
//
//	go test ./internal/certs -run '^$' -fuzz FuzzCheckLinkerd -fuzztime 60s
func FuzzCheckLinkerd(f *testing.F) {
	root, intermediate, leaf := seedChain(f)
	f.Add(certstest.PEM(root), certstest.PEM(intermediate, root))
	f.Add(certstest.PEM(root, intermediate), certstest.PEM(leaf, intermediate))
	f.Add(certstest.PEM(root), leaf.KeyPEM)
	f.Add(truncated(certstest.PEM(root)), corrupted(certstest.PEM(intermediate)))
	f.Add([]byte("not a certificate"), []byte{})
	f.Add(append(certstest.PEM(root), root.KeyPEM...), append(certstest.PEM(intermediate), intermediate.KeyPEM...))
	f.Fuzz(func(t *testing.T, anchors, issuer []byte) {
		rep := certs.CheckLinkerd(
			configMap("linkerd", certs.LinkerdTrustRootsConfigMap, map[string][]byte{certs.LinkerdTrustRootsKey: anchors}),
			secret("linkerd", certs.LinkerdIssuerSecret, map[string][]byte{certs.KeyLinkerdIssuerCert: issuer}),
			now, 60*day)
		checkReport(t, rep, anchors, issuer)
	})
}

// FuzzCheckIstio feeds arbitrary namespace roots and cacerts keys (istiod layout) to CheckIstio.
//
//	go test ./internal/certs -run '^$' -fuzz FuzzCheckIstio -fuzztime 60s
func FuzzCheckIstio(f *testing.F) {
	root, intermediate, _ := seedChain(f)
	f.Add(certstest.PEM(root), certstest.PEM(intermediate), certstest.PEM(intermediate, root), certstest.PEM(root))
	f.Add(certstest.PEM(root), certstest.PEM(root), []byte{}, certstest.PEM(root))
	f.Add(truncated(certstest.PEM(root)), corrupted(certstest.PEM(intermediate)), intermediate.KeyPEM, []byte("x"))
	f.Add([]byte{}, []byte{}, []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, nsRoot, caCert, chain, rootCert []byte) {
		rep := certs.CheckIstio(
			configMap("shop", certs.IstioRootConfigMap, map[string][]byte{certs.IstioRootConfigMapKey: nsRoot}),
			secret("istio-system", certs.IstioCACertsSecret, map[string][]byte{
				certs.KeyCACert: caCert, certs.KeyCertChain: chain, certs.KeyRootCert: rootCert,
				"ca-key.pem": intermediate.KeyPEM,
			}),
			absent("Secret", "istio-system", certs.IstioSelfSignedCASecret),
			now, 60*day)
		checkReport(t, rep, nsRoot, caCert, chain, rootCert, intermediate.KeyPEM)
	})
}
