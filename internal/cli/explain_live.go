package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshguard/meshguard/internal/meshapi"
)

// ExplainKinds are the kinds a live explain reads: namespaced ones in the namespaces of the
// source, the destination and Istio's root namespace, cluster-scoped ones (admin network
// policies, cluster profiles) once. Kinds whose CRD is not installed are skipped.
var ExplainKinds = []schema.GroupKind{
	{Group: "", Kind: "Pod"},
	// Services and waypoint Gateways place ambient pods behind their waypoint (internal/dataplane).
	{Group: "", Kind: "Service"},
	{Group: meshapi.GroupGatewayAPI, Kind: "Gateway"},
	{Group: "policy.networking.k8s.io", Kind: "AdminNetworkPolicy"},
	{Group: "policy.networking.k8s.io", Kind: "BaselineAdminNetworkPolicy"},
	{Group: "policy.networking.k8s.io", Kind: "ClusterNetworkPolicy"},
	{Group: "security.meshguard.dev", Kind: "ClusterMeshSecurityProfile"},
	{Group: meshapi.GroupNetworking, Kind: "NetworkPolicy"},
	{Group: meshapi.GroupIstioSecurity, Kind: "PeerAuthentication"},
	{Group: meshapi.GroupIstioSecurity, Kind: "RequestAuthentication"},
	{Group: meshapi.GroupIstioSecurity, Kind: "AuthorizationPolicy"},
	{Group: meshapi.GroupIstioNetworking, Kind: "EnvoyFilter"},
	{Group: meshapi.GroupLinkerdPolicy, Kind: "Server"},
	{Group: meshapi.GroupLinkerdPolicy, Kind: "ServerAuthorization"},
	{Group: meshapi.GroupLinkerdPolicy, Kind: "AuthorizationPolicy"},
	{Group: meshapi.GroupLinkerdPolicy, Kind: "MeshTLSAuthentication"},
	{Group: meshapi.GroupLinkerdPolicy, Kind: "NetworkAuthentication"},
	{Group: meshapi.GroupLinkerdPolicy, Kind: "HTTPRoute"},
	{Group: meshapi.GroupGatewayAPI, Kind: "HTTPRoute"},
}

// liveReader lists policies with a dynamic client; it never writes.
type liveReader struct {
	client dynamic.Interface
	mapper meta.RESTMapper
}

func newClusterReader(kubeconfig, kubeContext string) (ClusterReader, error) {
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig},
		&clientcmd.ConfigOverrides{CurrentContext: kubeContext}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("--kubeconfig %s: %w", kubeconfig, err)
	}
	return NewClusterReader(cfg)
}

// NewClusterReader reads policies through cfg.
func NewClusterReader(cfg *rest.Config) (ClusterReader, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	groups, err := restmapper.GetAPIGroupResources(dc)
	if err != nil {
		return nil, fmt.Errorf("discover the cluster's API: %w", err)
	}
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &liveReader{client: client, mapper: restmapper.NewDiscoveryRESTMapper(groups)}, nil
}

// Policies lists ExplainKinds in each namespace (duplicates and empty names skipped) and gets
// the Namespace objects (labels for namespaceSelectors, Linkerd's annotation).
func (r *liveReader) Policies(ctx context.Context, namespaces []string) ([]*unstructured.Unstructured, []string, error) {
	seen := map[string]bool{}
	var nss []string
	for _, ns := range namespaces {
		if ns != "" && !seen[ns] {
			seen[ns] = true
			nss = append(nss, ns)
		}
	}
	sort.Strings(nss)
	var out []*unstructured.Unstructured
	var notes []string
	for _, gk := range ExplainKinds {
		m, err := r.mapper.RESTMapping(gk)
		if meta.IsNoMatchError(err) {
			notes = append(notes, fmt.Sprintf("%s.%s is not installed in the cluster", gk.Kind, gk.Group))
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", gk, err)
		}
		scopes := nss
		if m.Scope.Name() == meta.RESTScopeNameRoot {
			scopes = []string{""}
		}
		for _, ns := range scopes {
			list, err := r.client.Resource(m.Resource).Namespace(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, nil, fmt.Errorf("list %s in %s: %w", gk, ns, err)
			}
			for i := range list.Items {
				u := list.Items[i]
				u.SetAPIVersion(m.GroupVersionKind.GroupVersion().String())
				u.SetKind(m.GroupVersionKind.Kind)
				out = append(out, &u)
			}
		}
	}
	nsRes := schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	for _, ns := range nss {
		u, err := r.client.Resource(nsRes).Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			notes = append(notes, "namespace "+ns+" does not exist")
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("get namespace %s: %w", ns, err)
		}
		u.SetAPIVersion("v1")
		u.SetKind("Namespace")
		out = append(out, u)
	}
	return out, notes, nil
}

// Served returns those of kinds (Kind.group) the cluster serves.
func (r *liveReader) Served(kinds []string) []string {
	var out []string
	for _, k := range kinds {
		kind, group, _ := strings.Cut(k, ".")
		if _, err := r.mapper.RESTMapping(schema.GroupKind{Group: group, Kind: kind}); err == nil {
			out = append(out, k)
		}
	}
	return out
}
