package effective

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/meshapi"
)

const (
	groupLinkerdPolicy = meshapi.GroupLinkerdPolicy
	kindServer         = "Server"
)

// lkServer is a pod port a Server of the profile selects.
type lkServer struct {
	name   string
	labels map[string]string
	port   int64
}

// linkerdServers are the Servers among the profile's rendered Linkerd objects (mTLS overrides and
// rules), for judging foreign Servers.
func linkerdServers(objs []*unstructured.Unstructured) []lkServer {
	var out []lkServer
	for _, o := range objs {
		if o.GetKind() != kindServer {
			continue
		}
		labels, _, _ := unstructured.NestedStringMap(o.Object, "spec", "podSelector", "matchLabels")
		port, _, _ := unstructured.NestedInt64(o.Object, "spec", "port")
		out = append(out, lkServer{name: o.GetName(), labels: labels, port: port})
	}
	return out
}

// linkerdServer judges a foreign Server. Linkerd gives a pod port to one Server only (Servers
// "must not overlap: they must not select the same pod/port pairs", Linkerd's authorization policy
// reference; its admission webhook refuses only identical selectors), so a foreign Server that
// may select a pod port of one of the profile's Servers competes with it: if Linkerd picks the
// foreign one, its accessPolicy and the policies that target it apply instead of the profile's.
// It is reported whatever its accessPolicy. A selector may select the same pods unless the two
// label sets contradict (same key, other value); matchExpressions and named ports cannot be
// resolved without the pods, so they are taken as overlapping (fail closed). A Server that selects
// ExternalWorkloads, not pods, competes with none.
func (f *finder) linkerdServer(u *unstructured.Unstructured) []v1alpha1.ExternalPolicy {
	spec, err := meshapi.Server(u)
	if err != nil {
		// It may select any of the profile's pod ports (linkerdForeignServer says nothing more).
		return []v1alpha1.ExternalPolicy{f.notUnderstood(u, "Servers of the profile", err)}
	}
	if spec.PodSelector == nil {
		return nil
	}
	access := spec.AccessPolicy
	if access == "" {
		access = "deny"
	}
	var out []v1alpha1.ExternalPolicy
	for _, s := range f.lkServers {
		if spec.Port.Type == intstr.Int && int64(spec.Port.IntVal) != s.port {
			continue
		}
		if len(spec.PodSelector.MatchExpressions) == 0 && labelsContradict(spec.PodSelector.MatchLabels, s.labels) {
			continue
		}
		out = append(out, f.report(u, fmt.Sprintf(
			"Server %s (port %d of pods %s): Linkerd applies one Server per pod port, and this one (port %s, accessPolicy %s) may select the same; its policies would apply instead of the profile's",
			s.name, s.port, lkSelectorText(s.labels), spec.Port.String(), access)))
	}
	return out
}

// labelsContradict says whether no pod can carry both label sets.
func labelsContradict(a, b map[string]string) bool {
	for k, v := range a {
		if w, ok := b[k]; ok && w != v {
			return true
		}
	}
	return false
}

func lkSelectorText(labels map[string]string) string {
	if len(labels) == 0 {
		return "(all)"
	}
	pairs := make([]string, 0, len(labels))
	for k, v := range labels {
		pairs = append(pairs, k+"="+v)
	}
	sort.Strings(pairs)
	return strings.Join(pairs, ",")
}
