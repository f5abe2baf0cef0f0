package effective

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// Cluster-scoped network policies of sigs.k8s.io/network-policy-api. An AdminNetworkPolicy
// (v1alpha1) is evaluated before any NetworkPolicy: "AdminNetworkPolicyRuleActionAllow indicates
// that matching traffic will be allowed regardless of NetworkPolicy and BaselineAdminNetworkPolicy
// rules. Users cannot block traffic which has been matched by an "Allow" rule"
// (network-policy-api apis/v1alpha1/shared_types.go). A ClusterNetworkPolicy (v1alpha2, v1beta1)
// of tier Admin is the same with the action Accept (apis/v1alpha2/clusternetworkpolicy_types.go:
// "Accept indicates that matching traffic will be accepted … regardless of … NetworkPolicy").
// A BaselineAdminNetworkPolicy, and the Baseline tier, apply only where no NetworkPolicy selects
// the pod, so they cannot open what the profile's default deny closes, and Deny or Pass rules
// never open anything: neither is reported.
const (
	groupNetworkPolicyAPI    = "policy.networking.k8s.io"
	kindAdminNetworkPolicy   = "AdminNetworkPolicy"
	kindClusterNetworkPolicy = "ClusterNetworkPolicy"
)

// adminPolicy is the part of an AdminNetworkPolicy or ClusterNetworkPolicy that decides whether
// it can open a direction: its subject and the names and actions of its rules.
type adminPolicy struct {
	Tier     string `json:"tier,omitempty"`
	Priority int32  `json:"priority"`
	Subject  struct {
		Namespaces *metav1.LabelSelector `json:"namespaces,omitempty"`
		Pods       *struct {
			NamespaceSelector metav1.LabelSelector `json:"namespaceSelector"`
		} `json:"pods,omitempty"`
	} `json:"subject"`
	Ingress []adminRule `json:"ingress,omitempty"`
	Egress  []adminRule `json:"egress,omitempty"`
}

type adminRule struct {
	Name   string `json:"name,omitempty"`
	Action string `json:"action"`
}

// adminNetworkPolicy judges an AdminNetworkPolicy or a ClusterNetworkPolicy: every Allow (ANP)
// or Accept (CNP, Admin tier) rule in a direction the profile's networkPolicy.defaultDeny closes,
// of a policy whose subject may select the profile's namespace, widens the profile: no
// NetworkPolicy can take back what it admits. The subject's pod selector is not looked at: the
// profile's default deny selects every pod of its namespace.
func (f *finder) adminNetworkPolicy(u *unstructured.Unstructured) []v1alpha1.ExternalPolicy {
	spec := f.p.Spec.NetworkPolicy
	if spec == nil || len(spec.DefaultDeny) == 0 {
		return nil
	}
	raw, _, _ := unstructured.NestedMap(u.Object, "spec")
	var ap adminPolicy
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &ap); err != nil {
		return []v1alpha1.ExternalPolicy{f.notUnderstood(u, "networkPolicy.defaultDeny", err)}
	}
	allow := "Allow"
	if u.GetKind() == kindClusterNetworkPolicy {
		if ap.Tier != "Admin" {
			return nil
		}
		allow = "Accept"
	}
	sel := ap.Subject.Namespaces
	if ap.Subject.Pods != nil {
		sel = &ap.Subject.Pods.NamespaceSelector
	}
	if sel == nil {
		// Neither is set: the API requires one; read as selecting every namespace (fail closed).
		sel = &metav1.LabelSelector{}
	}
	if !f.namespaceMaySelect(sel) {
		return nil
	}
	var out []v1alpha1.ExternalPolicy
	for _, dir := range deniedDirections(spec.DefaultDeny) {
		rules := ap.Ingress
		if dir == v1alpha1.DirectionEgress {
			rules = ap.Egress
		}
		for i, r := range rules {
			if r.Action != allow {
				continue
			}
			name := r.Name
			if name == "" {
				name = fmt.Sprintf("#%d", i)
			}
			out = append(out, f.report(u, fmt.Sprintf(
				"networkPolicy.defaultDeny %s: %s rule %s (priority %d) admits traffic before any NetworkPolicy is evaluated; no NetworkPolicy can deny it",
				dir, dir, name, ap.Priority)))
		}
	}
	return out
}

// namespaceMaySelect says whether a namespace selector may select the profile's namespace. With
// the namespace's labels known it is exact; without them only a selector on the namespace's name
// label can rule it out (fail closed).
func (f *finder) namespaceMaySelect(sel *metav1.LabelSelector) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return true
	}
	nsLabels := f.nsLabels
	if nsLabels == nil {
		if v, ok := sel.MatchLabels[labelNamespaceName]; ok {
			return v == f.p.Namespace
		}
		return true
	}
	return s.Matches(labels.Set(nsLabels))
}
