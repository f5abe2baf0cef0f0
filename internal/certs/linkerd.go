package certs

import (
	"time"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// CheckLinkerd judges Linkerd's trust anchors and identity issuer, as `linkerd check` does.
//
// trustRoots is the linkerd-identity-trust-roots ConfigMap: each certificate of its
// ca-bundle.crt is a TrustAnchor, and several are allowed (rotation). issuer is the
// linkerd-identity-issuer Secret: its crt.pem (linkerd.io/tls scheme) or, without one, its
// tls.crt (kubernetes.io/tls scheme) holds the Issuer certificate, optionally followed by
// intermediates (Intermediate), which must chain to one of the anchors.
func CheckLinkerd(trustRoots, issuer Source, now time.Time, minValidity time.Duration) Report {
	col := newCollector(now, minValidity)
	anchors, bad := read(trustRoots, LinkerdTrustRootsKey, v1alpha1.RoleTrustAnchor)
	if bad != nil {
		col.addRow(bad)
	}
	for _, c := range anchors {
		col.add(c, trustRoots.Describe(LinkerdTrustRootsKey), v1alpha1.RoleTrustAnchor)
	}

	key := KeyLinkerdIssuerCert
	if !issuer.has(KeyLinkerdIssuerCert) && issuer.has(KeyTLSCert) {
		key = KeyTLSCert
	}
	chain, bad := read(issuer, key, v1alpha1.RoleIssuer)
	switch {
	case issuer.Found && !issuer.has(key):
		col.addRow(missing(issuer.Describe(key), v1alpha1.RoleIssuer,
			"does not exist: the Secret has neither %s (linkerd.io/tls) nor %s (kubernetes.io/tls)", KeyLinkerdIssuerCert, KeyTLSCert))
		return report(col.rows, col.now, col.minValidity)
	case bad != nil:
		col.addRow(bad)
		return report(col.rows, col.now, col.minValidity)
	}
	// The issuer is a distinct row even when it is an anchor; intermediates that are anchors are not.
	issuerCol := newCollector(now, minValidity)
	toVerify := []*row{issuerCol.add(chain[0], issuer.Describe(key), v1alpha1.RoleIssuer)}
	for _, c := range chain[1:] {
		if col.seen[fingerprint(c)] {
			continue
		}
		toVerify = append(toVerify, issuerCol.add(c, issuer.Describe(key), v1alpha1.RoleIntermediate))
	}
	issuerCol.verify(toVerify, chain[1:], anchors, trustRoots.Describe(LinkerdTrustRootsKey))
	return report(append(col.rows, issuerCol.rows...), col.now, col.minValidity)
}
