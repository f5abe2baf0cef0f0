package certs

import (
	"crypto/x509"
	"slices"
	"time"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// istioLayout names the keys of an Istio CA Secret.
type istioLayout struct {
	// signing holds the signing CA certificate first, optionally followed by its chain.
	signing string
	// chain optionally holds the chain from the signing certificate to the root.
	chain string
	// roots holds the root certificates; it may be omitted when the signing CA is self-signed.
	roots string
}

var (
	istiodLayout = istioLayout{signing: KeyCACert, chain: KeyCertChain, roots: KeyRootCert}
	tlsLayout    = istioLayout{signing: KeyTLSCert, roots: KeyCACrt}
)

// istioCA is what was read of the Istio CA.
type istioCA struct {
	signing *x509.Certificate
	chain   []*x509.Certificate
	roots   []*x509.Certificate
	// rootsSource names where the roots were read from.
	rootsSource string
}

// CheckIstio judges Istio's CA certificates and the roots that the profile's namespace trusts.
//
// namespaceRoot is the istio-ca-root-cert ConfigMap of the profile's namespace; cacerts and
// istioCASecret are the plugged-in and the self-signed CA Secrets of Istio's namespace. As istiod
// does, CheckIstio reads cacerts when it exists, in its kubernetes.io/tls layout (tls.crt, ca.crt)
// when it has a tls.crt key and in the istiod layout (ca-cert.pem, cert-chain.pem, root-cert.pem)
// otherwise; and istio-ca-secret (ca-cert.pem) when cacerts does not exist. When neither exists
// the CA is NotFound.
//
// Each certificate of the CA Secret is reported once: the signing certificate (Intermediate, or
// Root when self-signed), the roots (Root) and the intermediates of the chain. All of them but
// the roots must chain to the roots. Each root of the namespace's ConfigMap is reported too, and
// they are all RootMismatch when none of them is one of the CA's roots or verifies the CA's
// signing certificate: workloads of the namespace would reject the certificates istiod signs.
func CheckIstio(namespaceRoot, cacerts, istioCASecret Source, now time.Time, minValidity time.Duration) Report {
	col := newCollector(now, minValidity)
	ca := col.istioCA(cacerts, istioCASecret)
	// The namespace's roots are distinct rows even when they are the CA's roots.
	nsCol := newCollector(now, minValidity)
	nsCol.istioNamespaceRoots(namespaceRoot, ca)
	return report(append(col.rows, nsCol.rows...), col.now, col.minValidity)
}

// CheckIstioExternal judges the roots the profile's namespace trusts when Istio's CA is outside
// the cluster (cert-manager istio-csr, Vault): there is no CA Secret to read, so only the
// namespace's istio-ca-root-cert is checked (present, readable, valid for minValidity). When the
// roots are valid the reason is External rather than Valid: the report says the CA itself was not
// inspected, and does not block Ready. Missing or expired roots still block: workloads of the
// namespace could not verify their peers.
// istio-csr publishes the roots under the same name and key as istiod
// (https://cert-manager.io/docs/usage/istio-csr/, its --configmap-name default istio-ca-root-cert).
func CheckIstioExternal(namespaceRoot Source, now time.Time, minValidity time.Duration) Report {
	col := newCollector(now, minValidity)
	col.istioNamespaceRoots(namespaceRoot, istioCA{})
	rep := report(col.rows, col.now, col.minValidity)
	if rep.Reason == v1alpha1.ReasonCertValid {
		rep.Reason = v1alpha1.ReasonCertExternal
		rep.Message = "the Istio CA is external (--istio-ca=external), not inspected; " + rep.Message
	}
	return rep
}

// istioCA reads the CA Secret istiod uses and records its rows.
func (col *collector) istioCA(cacerts, selfSignedCA Source) istioCA {
	src, layout := cacerts, istiodLayout
	switch {
	case cacerts.has(KeyTLSCert):
		layout = tlsLayout
	case cacerts.Found:
	case selfSignedCA.Found:
		src = selfSignedCA
	default:
		col.addRow(missing(selfSignedCA.String(), v1alpha1.RoleRoot,
			"does not exist, nor does %s: istiod's CA is not initialised, or it is outside the cluster", cacerts))
		return istioCA{}
	}

	var ca istioCA
	// The signing key holds the signing certificate, possibly followed by (part of) its chain.
	var signingRest []*x509.Certificate
	signing, bad := read(src, layout.signing, v1alpha1.RoleIntermediate)
	if bad != nil {
		col.addRow(bad)
	} else {
		ca.signing, signingRest = signing[0], signing[1:]
	}
	var chain []*x509.Certificate
	if layout.chain != "" && present(src, layout.chain) {
		if chain, bad = read(src, layout.chain, v1alpha1.RoleIntermediate); bad != nil {
			col.addRow(bad)
		}
	}
	ca.chain = slices.Concat(signingRest, chain)

	ownRoot := ca.signing != nil && !present(src, layout.roots) && selfSigned(ca.signing)
	switch {
	case ownRoot:
		// A self-signed CA without a root key is its own root.
		ca.roots = []*x509.Certificate{ca.signing}
		ca.rootsSource = src.Describe(layout.signing)
	case ca.signing != nil || present(src, layout.roots):
		// Without a signing certificate, missing roots are no news.
		if ca.roots, bad = read(src, layout.roots, v1alpha1.RoleRoot); bad != nil {
			col.addRow(bad)
		}
		ca.rootsSource = src.Describe(layout.roots)
	}

	// Rows in order of preference for a certificate stored twice: signing, roots, chain.
	var toVerify []*row
	if ca.signing != nil {
		r := col.add(ca.signing, src.Describe(layout.signing), certRole(ca.signing, v1alpha1.RoleIntermediate))
		if !ownRoot {
			toVerify = append(toVerify, r)
		}
	}
	for _, c := range ca.roots {
		col.add(c, ca.rootsSource, v1alpha1.RoleRoot)
	}
	for _, c := range signingRest {
		toVerify = append(toVerify, col.add(c, src.Describe(layout.signing), certRole(c, v1alpha1.RoleIntermediate)))
	}
	for _, c := range chain {
		toVerify = append(toVerify, col.add(c, src.Describe(layout.chain), certRole(c, v1alpha1.RoleIntermediate)))
	}
	col.verify(toVerify, ca.chain, ca.roots, ca.rootsSource)
	return ca
}

// istioNamespaceRoots records a row per root of the namespace's istio-ca-root-cert and checks
// that the namespace trusts the CA.
func (col *collector) istioNamespaceRoots(src Source, ca istioCA) {
	roots, bad := read(src, IstioRootConfigMapKey, v1alpha1.RoleRoot)
	if bad != nil {
		if !src.Found {
			bad = missing(src.String(), v1alpha1.RoleRoot,
				"does not exist: istiod has not published the mesh roots to this namespace")
		}
		col.addRow(bad)
		return
	}
	var rows []*row
	for _, c := range roots {
		if r := col.add(c, src.Describe(IstioRootConfigMapKey), v1alpha1.RoleRoot); r != nil {
			rows = append(rows, r)
		}
	}
	if len(ca.roots) == 0 || trustsCA(roots, ca, col.now) {
		return
	}
	for _, r := range rows {
		r.add(v1alpha1.ReasonCertRootMismatch,
			"does not match the mesh CA roots in %s (%s): workloads in this namespace would reject the certificates istiod signs",
			ca.rootsSource, subjects(ca.roots))
	}
}

// trustsCA reports whether one of the namespace roots is a CA root, or verifies the CA's
// signing certificate (a root re-issued with the same key).
func trustsCA(nsRoots []*x509.Certificate, ca istioCA, now time.Time) bool {
	for _, ns := range nsRoots {
		for _, root := range ca.roots {
			if ns.Equal(root) {
				return true
			}
		}
	}
	return ca.signing != nil && verifyChain(ca.signing, ca.chain, nsRoots, now) == nil
}
