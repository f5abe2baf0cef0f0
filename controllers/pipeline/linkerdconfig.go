package pipeline

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"
)

// linkerdConfigMap is the ConfigMap of Linkerd's control plane namespace that holds the values it
// was installed with (linkerd2 charts/linkerd-control-plane/templates/config.yaml, key "values",
// with the private keys removed). Only it is read: never a Secret.
const linkerdConfigMap = "linkerd-config"

// Reading linkerd-config needs get on that one ConfigMap name.
// +kubebuilder:rbac:groups="",resources=configmaps,resourceNames=linkerd-config,verbs=get

// linkerdFacts are the cluster-wide Linkerd settings expectations depend on.
type linkerdFacts struct {
	// clusterNetworks: the networks the cluster-* default policies admit; nil: Linkerd's default.
	clusterNetworks []string
	// defaultInboundPolicy is proxy.defaultInboundPolicy; "": Linkerd's default.
	defaultInboundPolicy string
	// inboundPort is proxy.ports.inbound, the port meshed traffic arrives on; 0: Linkerd's default.
	inboundPort int32
	// probeNetworks is policyController.probeNetworks; nil: Linkerd's default.
	probeNetworks []string
}

// parseLinkerdValues reads clusterNetworks (a comma-separated string, charts/linkerd-control-plane
// values.yaml), proxy.defaultInboundPolicy, proxy.ports.inbound and
// policyController.probeNetworks from the values linkerd-config carries.
func parseLinkerdValues(values string) (linkerdFacts, error) {
	var v struct {
		ClusterNetworks string `json:"clusterNetworks"`
		Proxy           struct {
			DefaultInboundPolicy string `json:"defaultInboundPolicy"`
			Ports                struct {
				Inbound int32 `json:"inbound"`
			} `json:"ports"`
		} `json:"proxy"`
		PolicyController struct {
			ProbeNetworks []string `json:"probeNetworks"`
		} `json:"policyController"`
	}
	if err := yaml.Unmarshal([]byte(values), &v); err != nil {
		return linkerdFacts{}, fmt.Errorf("data.values: %w", err)
	}
	var f linkerdFacts
	for _, n := range strings.Split(v.ClusterNetworks, ",") {
		if n = strings.TrimSpace(n); n != "" {
			f.clusterNetworks = append(f.clusterNetworks, n)
		}
	}
	f.defaultInboundPolicy = v.Proxy.DefaultInboundPolicy
	f.inboundPort = v.Proxy.Ports.Inbound
	f.probeNetworks = v.PolicyController.ProbeNetworks
	return f, nil
}

// linkerdFacts reads linkerd-config from the Linkerd namespace. A missing ConfigMap leaves
// Linkerd's defaults; one that cannot be read is an error (the expectations are then not
// evaluated rather than evaluated on a guess).
func (r *Pipeline) linkerdFacts(ctx context.Context) (linkerdFacts, error) {
	cm := &corev1.ConfigMap{}
	key := types.NamespacedName{Namespace: r.RenderOptions.LinkerdNamespace, Name: linkerdConfigMap}
	if err := r.APIReader.Get(ctx, key, cm); err != nil {
		if apierrors.IsNotFound(err) {
			return linkerdFacts{}, nil
		}
		return linkerdFacts{}, fmt.Errorf("get ConfigMap %s: %w", key, err)
	}
	f, err := parseLinkerdValues(cm.Data["values"])
	if err != nil {
		return linkerdFacts{}, fmt.Errorf("ConfigMap %s: %w", key, err)
	}
	return f, nil
}
