package pipeline

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/certs"
	"github.com/meshguard/meshguard/internal/clusterfacts"
)

// defaultMinValidity is spec.certificates.minValidity when the profile sets none (linkerd check's 60 days).
const defaultMinValidity = 1440 * time.Hour

// DefaultCertificateRecheck is the longest time between two checks of a profile's certificates.
// Changes of the CA objects are watched and trigger a check at once; this bounds what a missed
// event could cost.
const DefaultCertificateRecheck = 5 * time.Minute

// The CA objects are watched by name, each by an informer of its own restricted to that object
// (casources.go): no cluster-wide or namespace-wide Secret informer exists, RBAC is limited to these
// names (list and watch are authorized by resourceNames because they select metadata.name), and
// private keys are stripped before anything is cached.
// +kubebuilder:rbac:groups="",resources=configmaps,resourceNames=istio-ca-root-cert;linkerd-identity-trust-roots,verbs=get;list;watch
// +kubebuilder:rbac:groups="",namespace=istio-system,resources=secrets,resourceNames=cacerts;istio-ca-secret,verbs=get;list;watch
// +kubebuilder:rbac:groups="",namespace=linkerd,resources=secrets,resourceNames=linkerd-identity-issuer,verbs=get;list;watch

// observeCertificates checks the mesh CA certificates the profile's namespace relies on.
func (r *Pipeline) observeCertificates(ctx context.Context, p *v1alpha1.MeshSecurityProfile) (certs.Report, error) {
	now := r.Now()
	minValidity := defaultMinValidity
	if p.Spec.Certificates != nil && p.Spec.Certificates.MinValidity != nil {
		minValidity = p.Spec.Certificates.MinValidity.Duration
	}
	if p.Spec.GetMesh() == v1alpha1.MeshLinkerd {
		roots, err := r.source(ctx, &corev1.ConfigMap{}, r.RenderOptions.LinkerdNamespace, certs.LinkerdTrustRootsConfigMap)
		if err != nil {
			return certs.Report{}, err
		}
		issuer, err := r.source(ctx, &corev1.Secret{}, r.RenderOptions.LinkerdNamespace, certs.LinkerdIssuerSecret)
		if err != nil {
			return certs.Report{}, err
		}
		return r.certificateVerdicts.check(now, minValidity, func() certs.Report {
			return certs.CheckLinkerd(roots, issuer, now, minValidity)
		}, roots, issuer), nil
	}
	nsRoot, err := r.source(ctx, &corev1.ConfigMap{}, p.Namespace, certs.IstioRootConfigMap)
	if err != nil {
		return certs.Report{}, err
	}
	if r.RenderOptions.IstioCA == clusterfacts.IstioCAExternal {
		return r.certificateVerdicts.check(now, minValidity, func() certs.Report {
			return certs.CheckIstioExternal(nsRoot, now, minValidity)
		}, nsRoot), nil
	}
	cacerts, err := r.source(ctx, &corev1.Secret{}, r.RenderOptions.IstioNamespace, certs.IstioCACertsSecret)
	if err != nil {
		return certs.Report{}, err
	}
	selfSigned, err := r.source(ctx, &corev1.Secret{}, r.RenderOptions.IstioNamespace, certs.IstioSelfSignedCASecret)
	if err != nil {
		return certs.Report{}, err
	}
	return r.certificateVerdicts.check(now, minValidity, func() certs.Report {
		return certs.CheckIstio(nsRoot, cacerts, selfSigned, now, minValidity)
	}, nsRoot, cacerts, selfSigned), nil
}

// source reads one named ConfigMap or Secret into a certs.Source. Only the data reaches the pure
// checker, which reads certificate keys and ignores private keys.
func (r *Pipeline) source(ctx context.Context, obj client.Object, namespace, name string) (certs.Source, error) {
	src := certs.Source{Namespace: namespace, Name: name}
	// Every source is cached: the namespace roots by the manager's cache (field selector), the CA
	// objects by their own informers. The API reader is only a fallback for unknown names.
	reader := r.APIReader
	if s := r.caSourceFor(namespace, name); s != nil {
		reader = s.Cache
	} else if _, ok := obj.(*corev1.ConfigMap); ok && name == certs.IstioRootConfigMap {
		reader = r.Client
	}
	err := reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, obj)
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		src.Kind = "ConfigMap"
		if err == nil {
			src.Data = map[string][]byte{}
			for k, v := range o.Data {
				src.Data[k] = []byte(v)
			}
			for k, v := range o.BinaryData {
				src.Data[k] = v
			}
		}
	case *corev1.Secret:
		src.Kind = "Secret"
		if err == nil {
			src.Data = o.Data
		}
	}
	switch {
	case apierrors.IsNotFound(err):
		return src, nil
	case err != nil:
		// Forbidden is a deployment problem the user must see; the message names the object only.
		return src, fmt.Errorf("read %s %s/%s: %w", src.Kind, namespace, name, err)
	}
	src.Found = true
	return src, nil
}

// certificateVerdicts remembers the verdicts on sets of CA objects. Every profile of a mesh reads
// the same CA objects (and namespaces' root ConfigMaps are usually alike), and a reconcile
// triggered by a child's event reads them unchanged: the certificates are parsed and checked again
// only when the data, minValidity or a threshold crossing (the report's NextCheck) can change the
// answer. Only healthy verdicts are kept (unhealthy messages count time, "expires in 9d", and are
// always computed afresh), keyed by a hash of the data: no certificate data is stored here.
type certificateVerdicts struct {
	mu       sync.Mutex
	verdicts map[[sha256.Size]byte]certs.Report
}

// check returns the remembered verdict on these sources, or computes and remembers it.
func (v *certificateVerdicts) check(now time.Time, minValidity time.Duration, compute func() certs.Report, sources ...certs.Source) certs.Report {
	h := sha256.New()
	fmt.Fprintf(h, "%d\n", minValidity)
	for _, s := range sources {
		fmt.Fprintf(h, "%s/%s/%s %t\n", s.Kind, s.Namespace, s.Name, s.Found)
		keys := make([]string, 0, len(s.Data))
		for k := range s.Data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(h, "%s %d\n", k, len(s.Data[k]))
			h.Write(s.Data[k])
		}
	}
	var key [sha256.Size]byte
	h.Sum(key[:0])
	v.mu.Lock()
	defer v.mu.Unlock()
	if rep, ok := v.verdicts[key]; ok && (rep.NextCheck.IsZero() || now.Before(rep.NextCheck)) {
		return copyReport(rep)
	}
	rep := compute()
	if !rep.Healthy {
		// Messages of unhealthy certificates count time ("expires in 9d"): always fresh.
		return rep
	}
	if v.verdicts == nil || len(v.verdicts) > 1024 {
		// Rotated-away CA data is never asked for again: start afresh rather than grow.
		v.verdicts = map[[sha256.Size]byte]certs.Report{}
	}
	v.verdicts[key] = rep
	return copyReport(rep)
}

// copyReport gives each profile's status certificate rows of its own.
func copyReport(rep certs.Report) certs.Report {
	rows := make([]v1alpha1.CertificateStatus, len(rep.Certificates))
	for i := range rep.Certificates {
		rep.Certificates[i].DeepCopyInto(&rows[i])
	}
	rep.Certificates = rows
	return rep
}

// certificateRecheck is when the profile must be looked at again for its certificates: just
// after the next threshold crossing, and at least every interval.
func certificateRecheck(rep certs.Report, now time.Time, interval time.Duration) time.Duration {
	if interval <= 0 {
		interval = DefaultCertificateRecheck
	}
	if !rep.NextCheck.IsZero() {
		// A second past the crossing, so that the check sees the new state.
		if d := rep.NextCheck.Sub(now) + time.Second; d < interval {
			if d < time.Second {
				d = time.Second
			}
			return d
		}
	}
	return interval
}

// setCertificateStatus writes the certificate rows and the CertificatesHealthy condition.
func setCertificateStatus(st *v1alpha1.MeshSecurityProfileStatus, gen int64, rep *certs.Report, readErr error) {
	c := metav1.Condition{Type: v1alpha1.ConditionCertificatesHealthy, ObservedGeneration: gen}
	switch {
	case readErr != nil:
		c.Status, c.Reason, c.Message = metav1.ConditionUnknown, v1alpha1.ReasonCertUnreadable, readErr.Error()
	case rep == nil:
		c.Status, c.Reason, c.Message = metav1.ConditionUnknown, v1alpha1.ReasonNotChecked, "not checked"
	default:
		st.Certificates = rep.Certificates
		st.NearestCertificateExpiry = nil
		if !rep.NearestExpiry.IsZero() {
			t := metav1.NewTime(rep.NearestExpiry)
			st.NearestCertificateExpiry = &t
		}
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, rep.Reason, rep.Message
		if rep.Healthy {
			c.Status = metav1.ConditionTrue
			if c.Message == "" {
				c.Message = fmt.Sprintf("%d CA certificates valid", len(rep.Certificates))
			}
		}
	}
	c.Message = trim(c.Message)
	meta.SetStatusCondition(&st.Conditions, c)
}
