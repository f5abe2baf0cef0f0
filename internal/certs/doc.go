// Package certs judges the health of a service mesh's CA certificates: it parses the PEM data of
// the objects that hold them, checks each certificate the way `linkerd check` does (key
// algorithm, validity period, minimum remaining validity, chain to the trust roots) and extends
// those checks to Istio (plugged-in or self-signed CA, and the root distributed to the namespace).
//
// The package is pure: no Kubernetes client, no clock, no logging. The caller reads the
// ConfigMaps and Secrets into Sources, passes the current time, and gets a Report that holds
// only public certificate fields (subject, serial number, fingerprint, validity, verdict).
//
// Private keys never leave, nor even enter, this package: only the certificate keys of an
// object's data (root-cert.pem, ca-cert.pem, cert-chain.pem, tls.crt, ca.crt, crt.pem,
// ca-bundle.crt) are read. Key entries (ca-key.pem, tls.key, key.pem) are ignored, and a
// certificate entry that holds anything but CERTIFICATE blocks is reported Unreadable without
// quoting its content.
//
// # Verdicts
//
// Every certificate gets one state, a certificate reason of api/v1alpha1; when several apply, the
// worst one by this order, worst first:
//
//	NotFound             the object or the data key does not exist (or is empty)
//	Unreadable           the data is not PEM-encoded X.509 certificates
//	Expired              now is at or after notAfter
//	NotYetValid          now is before notBefore
//	UntrustedChain       the certificate does not chain to the trust roots, or is not a CA
//	RootMismatch         the namespace's root bundle does not contain the mesh CA's root
//	UnsupportedAlgorithm the key is neither ECDSA P-256/P-384 nor RSA of at least 2048 bits
//	ExpiringSoon         less than minValidity is left before notAfter
//	Valid                none of the above
//
// Missing or unreadable input comes first because it hides the other checks; then the states in
// which the mesh's mTLS is failing now; then trust problems; then policy; then the warning.
// The Report's Reason is the worst state of its certificates.
//
// Every state but Valid and ExpiringSoon is blocking: the profile cannot be Ready, because
// mTLS is failing or meshguard cannot vouch for it. ExpiringSoon is a warning only.
//
// Thresholds are instants: a certificate is NotYetValid before notBefore, ExpiringSoon from
// notAfter-minValidity and Expired from notAfter on, so Report.NextCheck is exactly the first
// instant at which a verdict changes. A negative minValidity counts as zero.
package certs
