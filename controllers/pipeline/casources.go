package pipeline

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/certs"
)

// caSource is one named mesh CA object in a mesh namespace. Each gets an informer of its own,
// restricted to that one object by a field selector, so that a CA rotation triggers a recheck at
// once while RBAC stays limited to resourceNames and no other Secret is ever listed or cached.
type caSource struct {
	mesh      v1alpha1.Mesh
	Obj       client.Object
	namespace string
	name      string
	Cache     cache.Cache
}

// certificateKeys are the data keys that hold certificates. Everything else in a CA Secret (the
// private keys above all) is dropped before the object enters the cache: key material never
// reaches meshguard's memory beyond the decoding of a watch event.
var certificateKeys = map[string]bool{
	certs.KeyCACert: true, certs.KeyCertChain: true, certs.KeyRootCert: true,
	certs.KeyTLSCert: true, certs.KeyCACrt: true, certs.KeyLinkerdIssuerCert: true,
	certs.LinkerdTrustRootsKey: true,
}

// stripKeyMaterial keeps only certificate entries of Secrets, and drops managed fields.
func stripKeyMaterial(in any) (any, error) {
	if s, ok := in.(*corev1.Secret); ok {
		for k := range s.Data {
			if !certificateKeys[k] {
				delete(s.Data, k)
			}
		}
		for k := range s.StringData {
			if !certificateKeys[k] {
				delete(s.StringData, k)
			}
		}
		s.Annotations = nil // kubectl's last-applied-configuration would hold the keys again
	}
	return cache.TransformStripManagedFields()(in)
}

// newCASources creates the per-object caches and adds them to the manager, which starts them.
func newCASources(mgr ctrl.Manager, istioNamespace, linkerdNamespace string) ([]*caSource, error) {
	srcs := []*caSource{
		{mesh: v1alpha1.MeshIstio, Obj: &corev1.Secret{}, namespace: istioNamespace, name: certs.IstioCACertsSecret},
		{mesh: v1alpha1.MeshIstio, Obj: &corev1.Secret{}, namespace: istioNamespace, name: certs.IstioSelfSignedCASecret},
		{mesh: v1alpha1.MeshLinkerd, Obj: &corev1.ConfigMap{}, namespace: linkerdNamespace, name: certs.LinkerdTrustRootsConfigMap},
		{mesh: v1alpha1.MeshLinkerd, Obj: &corev1.Secret{}, namespace: linkerdNamespace, name: certs.LinkerdIssuerSecret},
	}
	for _, s := range srcs {
		c, err := cache.New(mgr.GetConfig(), cache.Options{
			Scheme:               mgr.GetScheme(),
			Mapper:               mgr.GetRESTMapper(),
			DefaultNamespaces:    map[string]cache.Config{s.namespace: {}},
			DefaultFieldSelector: fields.OneTermEqualSelector("metadata.name", s.name),
			DefaultLabelSelector: labels.Everything(),
			DefaultTransform:     stripKeyMaterial,
		})
		if err != nil {
			return nil, fmt.Errorf("cache for %s/%s: %w", s.namespace, s.name, err)
		}
		if err := mgr.Add(c); err != nil {
			return nil, err
		}
		s.Cache = c
	}
	return srcs, nil
}

// Watch makes changes of the CA object recheck every profile of its mesh (profiles read by c).
func (s *caSource) Watch(c client.Reader) source.Source {
	return source.Kind[client.Object](s.Cache, s.Obj.DeepCopyObject().(client.Object), handler.EnqueueRequestsFromMapFunc(
		func(ctx context.Context, _ client.Object) []reconcile.Request {
			var list v1alpha1.MeshSecurityProfileList
			if err := c.List(ctx, &list); err != nil {
				return nil
			}
			var reqs []reconcile.Request
			for _, p := range list.Items {
				if p.Spec.GetMesh() == s.mesh {
					reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: p.Namespace, Name: p.Name}})
				}
			}
			return reqs
		}))
}

// caSourceFor returns the cache that holds a CA object, or nil when it is not one of them.
func (r *Pipeline) caSourceFor(namespace, name string) *caSource {
	for _, s := range r.CaSources {
		if s.namespace == namespace && s.name == name {
			return s
		}
	}
	return nil
}
