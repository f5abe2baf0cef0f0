package crds

import (
	"os"
	"path/filepath"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

const (
	// NetworkPolicyAPIModule is the module of SIG Network's cluster-scoped network policy APIs.
	NetworkPolicyAPIModule = "sigs.k8s.io/network-policy-api"
	// NetworkPolicyAPIAdminVersion is the last release that carries AdminNetworkPolicy and
	// BaselineAdminNetworkPolicy (policy.networking.k8s.io/v1alpha1) in config/crd.
	NetworkPolicyAPIAdminVersion = "v0.1.1"
	// NetworkPolicyAPIClusterVersion is the release whose standard channel carries
	// ClusterNetworkPolicy (v1alpha2 and v1beta1, which replace the two above).
	NetworkPolicyAPIClusterVersion = "v0.3.0"
)

// NetworkPolicyAPICRDs returns AdminNetworkPolicy, BaselineAdminNetworkPolicy and
// ClusterNetworkPolicy, read from the CRD files of the two pinned releases of
// sigs.k8s.io/network-policy-api (downloaded into the module cache when missing).
func NetworkPolicyAPICRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	files := []struct{ version, path string }{
		{NetworkPolicyAPIAdminVersion, "config/crd/policy.networking.k8s.io_adminnetworkpolicies.yaml"},
		{NetworkPolicyAPIAdminVersion, "config/crd/policy.networking.k8s.io_baselineadminnetworkpolicies.yaml"},
		{NetworkPolicyAPIClusterVersion, "config/crd/standard/policy.networking.k8s.io_clusternetworkpolicies.yaml"},
	}
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, f := range files {
		dir, err := downloadModule(NetworkPolicyAPIModule, f.version)
		if err != nil {
			return nil, err
		}
		path := filepath.Join(dir, filepath.FromSlash(f.path))
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		c, err := parseCRDs(path, b)
		if err != nil {
			return nil, err
		}
		out = append(out, c...)
	}
	return out, nil
}
