package controllers

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/controllers/pipeline"
	"github.com/meshguard/meshguard/internal/certs"
)

// CacheOptions keep the informer caches to what meshguard needs: every profile, and of every
// other kind only the objects labelled as meshguard's. Without the default selector, reading one
// NetworkPolicy would cache every NetworkPolicy of the cluster. Managed fields are stripped: they
// are often half of an object's size and meshguard compares fields itself.
func CacheOptions() cache.Options {
	return cache.Options{
		DefaultLabelSelector: labels.SelectorFromSet(labels.Set{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}),
		// Generated objects are cached as metadata, status and a hash of the rest
		// (pipeline/cachedbody.go): held whole they were 40 % of the heap at 1,000 profiles.
		DefaultTransform: pipeline.ChainTransforms(cache.TransformStripManagedFields(), pipeline.StripGeneratedBodies),
		ByObject: map[client.Object]cache.ByObject{
			&v1alpha1.MeshSecurityProfile{}: {Label: labels.Everything()},
			// Cluster floors, and the metadata (labels) of every Namespace for their selectors.
			&v1alpha1.ClusterMeshSecurityProfile{}: {Label: labels.Everything()},
			pipeline.NamespaceMeta():               {Label: labels.Everything()},
			// Only the istio-ca-root-cert ConfigMaps (one per namespace, public data), so that a
			// root rotation triggers a recheck of the namespace's profile.
			&corev1.ConfigMap{}: {
				Label: labels.Everything(),
				Field: fields.OneTermEqualSelector("metadata.name", certs.IstioRootConfigMap),
			},
		},
	}
}

// ClientOptions make the manager's client read generated objects (handled as unstructured, since
// Istio and Linkerd types are not compiled in) from the cache as well.
func ClientOptions() client.Options {
	return client.Options{Cache: &client.CacheOptions{Unstructured: true}}
}
