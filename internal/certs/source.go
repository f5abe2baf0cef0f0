package certs

import "fmt"

// Names of the objects that hold the Istio CA. The Secrets live in Istio's namespace, the root
// ConfigMap in every namespace of the mesh.
const (
	// IstioRootConfigMap is the ConfigMap istiod distributes to every namespace with the roots
	// that workloads trust, under IstioRootConfigMapKey.
	IstioRootConfigMap = "istio-ca-root-cert"
	// IstioRootConfigMapKey is the key of IstioRootConfigMap that holds the roots.
	IstioRootConfigMapKey = "root-cert.pem"
	// IstioCACertsSecret is the plugged-in CA Secret. When it exists, istiod signs with it.
	IstioCACertsSecret = "cacerts"
	// IstioSelfSignedCASecret is the Secret of istiod's self-signed CA, used when there is no
	// IstioCACertsSecret.
	IstioSelfSignedCASecret = "istio-ca-secret"
)

// Keys of the Istio CA Secrets. Istio reads the kubernetes.io/tls layout (KeyTLSCert, KeyCACrt)
// when KeyTLSCert is present, and the istiod layout (KeyCACert, KeyCertChain, KeyRootCert)
// otherwise.
const (
	// KeyCACert is the signing CA certificate of the istiod layout.
	KeyCACert = "ca-cert.pem"
	// KeyCertChain is the chain from the signing CA certificate to the root, istiod layout.
	KeyCertChain = "cert-chain.pem"
	// KeyRootCert holds the root certificates of the istiod layout.
	KeyRootCert = "root-cert.pem"
	// KeyTLSCert is the signing CA certificate, optionally followed by its chain, of the
	// kubernetes.io/tls layout (Istio) and of Linkerd's kubernetes.io/tls issuer scheme.
	KeyTLSCert = "tls.crt"
	// KeyCACrt is the root certificate of the kubernetes.io/tls layout.
	KeyCACrt = "ca.crt"
)

// Names and keys of the objects that hold the Linkerd CA, in Linkerd's namespace.
const (
	// LinkerdTrustRootsConfigMap holds the trust anchors under LinkerdTrustRootsKey.
	LinkerdTrustRootsConfigMap = "linkerd-identity-trust-roots"
	// LinkerdTrustRootsKey is the key of LinkerdTrustRootsConfigMap that holds the anchors.
	LinkerdTrustRootsKey = "ca-bundle.crt"
	// LinkerdIssuerSecret holds the identity issuer certificate, under KeyLinkerdIssuerCert
	// (linkerd.io/tls scheme) or KeyTLSCert (kubernetes.io/tls scheme).
	LinkerdIssuerSecret = "linkerd-identity-issuer"
	// KeyLinkerdIssuerCert is the issuer certificate of the linkerd.io/tls scheme.
	KeyLinkerdIssuerCert = "crt.pem"
)

// Source is one ConfigMap or Secret as the caller read it. ConfigMap data is converted to bytes
// by the caller. Only the certificate keys named in this package are ever read from Data.
//
// Kind, Namespace and Name are set even when the object does not exist: they name it in the
// report.
type Source struct {
	// Kind is ConfigMap or Secret.
	Kind string
	// Namespace and Name identify the object.
	Namespace, Name string
	// Data is the object's data.
	Data map[string][]byte
	// Found is false when the object does not exist; Data is then ignored.
	Found bool
}

// Describe names a key of the source as certificate statuses show it:
// "ConfigMap istio-system/istio-ca-root-cert[root-cert.pem]". An empty key names the object only.
func (s Source) Describe(key string) string {
	if key == "" {
		return fmt.Sprintf("%s %s/%s", s.Kind, s.Namespace, s.Name)
	}
	return fmt.Sprintf("%s %s/%s[%s]", s.Kind, s.Namespace, s.Name, key)
}

// String names the object: "Secret istio-system/cacerts".
func (s Source) String() string { return s.Describe("") }

// has reports whether the object exists and has the key, even with an empty value.
func (s Source) has(key string) bool {
	if !s.Found {
		return false
	}
	_, ok := s.Data[key]
	return ok
}
