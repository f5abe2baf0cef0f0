package effective

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// kindServerAuthorization is Linkerd's older authorization kind (policy.linkerd.io v1beta1). It
// is deprecated but still enforced: the policy controller merges every ServerAuthorization whose
// server name or selector selects a Server into that Server's authorizations
// (linkerd2 policy-controller/k8s/index/src/inbound/index.rs, client_authzs;
// server_authorization.rs: a selector {} selects every Server of the namespace). It only ever
// authorizes, so one that selects a Server of the profile admits clients the profile's own
// AuthorizationPolicies may not.
const kindServerAuthorization = "ServerAuthorization"

type serverAuthorization struct {
	Server struct {
		Name     string                `json:"name,omitempty"`
		Selector *metav1.LabelSelector `json:"selector,omitempty"`
	} `json:"server"`
	Client struct {
		Unauthenticated bool `json:"unauthenticated,omitempty"`
		MeshTLS         *struct {
			Identities         []string `json:"identities,omitempty"`
			ServiceAccounts    []any    `json:"serviceAccounts,omitempty"`
			UnauthenticatedTLS bool     `json:"unauthenticatedTLS,omitempty"`
		} `json:"meshTLS,omitempty"`
		Networks []any `json:"networks,omitempty"`
	} `json:"client"`
}

// serverAuthorization judges a ServerAuthorization of the profile's namespace: it is reported
// once per Server of the profile it selects (by name or by the Server's labels).
func (f *finder) serverAuthorization(u *unstructured.Unstructured) []v1alpha1.ExternalPolicy {
	raw, _, _ := unstructured.NestedMap(u.Object, "spec")
	var sa serverAuthorization
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &sa); err != nil {
		return []v1alpha1.ExternalPolicy{f.notUnderstood(u, "Servers of the profile", err)}
	}
	var sel labels.Selector
	if sa.Server.Selector != nil {
		s, err := metav1.LabelSelectorAsSelector(sa.Server.Selector)
		if err != nil {
			return []v1alpha1.ExternalPolicy{f.notUnderstood(u, "Servers of the profile", err)}
		}
		sel = s
	}
	var out []v1alpha1.ExternalPolicy
	for _, s := range f.lkServerMeta {
		if sa.Server.Name != s.name && (sel == nil || !sel.Matches(labels.Set(s.labels))) {
			continue
		}
		out = append(out, f.report(u, fmt.Sprintf(
			"Server %s: this ServerAuthorization (deprecated, still enforced by Linkerd) authorizes %s on it, besides the profile's own authorizations",
			s.name, sa.clientText())))
	}
	return out
}

func (sa serverAuthorization) clientText() string {
	c := sa.Client
	var parts []string
	if c.Unauthenticated {
		parts = append(parts, "unauthenticated clients")
	}
	if m := c.MeshTLS; m != nil {
		switch {
		case m.UnauthenticatedTLS:
			parts = append(parts, "any TLS client")
		case len(m.Identities) > 0:
			parts = append(parts, "identities "+strings.Join(m.Identities, ","))
		case len(m.ServiceAccounts) > 0:
			parts = append(parts, fmt.Sprintf("%d service account(s)", len(m.ServiceAccounts)))
		default:
			parts = append(parts, "meshed clients")
		}
	}
	if len(parts) == 0 {
		parts = append(parts, "clients")
	}
	if len(c.Networks) > 0 {
		parts = append(parts, fmt.Sprintf("from %d network(s)", len(c.Networks)))
	}
	return strings.Join(parts, " ")
}

// serverMeta is a Server the profile renders: its name and its own labels, which a
// ServerAuthorization's server.selector matches.
type serverMeta struct {
	name   string
	labels map[string]string
}

func linkerdServerMeta(objs []*unstructured.Unstructured) []serverMeta {
	var out []serverMeta
	for _, o := range objs {
		if o.GetKind() == kindServer {
			out = append(out, serverMeta{name: o.GetName(), labels: o.GetLabels()})
		}
	}
	return out
}
