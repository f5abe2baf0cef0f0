package merge

import (
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/api/equality"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// authorization: defaultDeny is or; rules are the union. Deny rules win in both meshes (Istio
// evaluates DENY before ALLOW: https://istio.io/latest/docs/concepts/security/#implicit-enablement;
// Linkerd only allows, and the CRD refuses Deny there), so a floor's Deny rule stays in force
// whatever the namespace allows. Allow rules are unioned too: the floor's allowed flows (Prometheus
// scraping) are the platform's decision. A floor's rule is named <floor>-<rule>.
func (m *merger) authorization() {
	var out *v1alpha1.AuthorizationSpec
	floorDeny, from := false, ""
	// Shadow (nothing enforced) only when every section that has authorization asks for it: a
	// floor's enforced rules and default deny stay enforced whatever the namespace asks, and a
	// floor in shadow does not put the namespace's own rules in shadow.
	shadow, enforcedBy := true, ""
	for _, f := range m.floors {
		az := f.spec.Authorization
		if az == nil {
			continue
		}
		if az.Enforcement != v1alpha1.RuleEnforcementShadow {
			shadow = false
			if enforcedBy == "" {
				enforcedBy = f.cluster
			}
		}
		if out == nil {
			out = &v1alpha1.AuthorizationSpec{}
		}
		if az.DefaultDeny && !floorDeny {
			floorDeny, from = true, f.cluster
		}
		for _, r := range az.Rules {
			r := *r.DeepCopy()
			r.Name = m.scoped(f.cluster, r.Name)
			out.Rules = m.addRule(out.Rules, r, f)
		}
	}
	if m.ns != nil && m.ns.spec.Authorization != nil {
		az := m.ns.spec.Authorization
		if out == nil {
			out = &v1alpha1.AuthorizationSpec{}
		}
		if !az.DefaultDeny && floorDeny {
			m.hold("spec.authorization.defaultDeny", "false", "true", from)
		}
		for _, r := range az.Rules {
			out.Rules = m.addRule(out.Rules, *r.DeepCopy(), *m.ns)
		}
		if az.Enforcement != v1alpha1.RuleEnforcementShadow {
			shadow = false
		} else if enforcedBy != "" {
			m.hold("spec.authorization.enforcement", string(v1alpha1.RuleEnforcementShadow), string(v1alpha1.RuleEnforcementEnforce), enforcedBy)
		}
	}
	if out != nil && shadow {
		out.Enforcement = v1alpha1.RuleEnforcementShadow
	}
	if out != nil {
		out.DefaultDeny = floorDeny || (m.ns != nil && m.ns.spec.Authorization != nil && m.ns.spec.Authorization.DefaultDeny)
		sortByName(out.Rules)
	}
	m.res.Spec.Authorization = out
}

func sortByName(rules []v1alpha1.AuthorizationRule) {
	sort.SliceStable(rules, func(i, j int) bool { return rules[i].Name < rules[j].Name })
}

// addRule appends a rule unless one of the same name is there: the same rule twice is one rule;
// two different rules of one name cannot both be generated (their objects share a name).
func (m *merger) addRule(rules []v1alpha1.AuthorizationRule, r v1alpha1.AuthorizationRule, s source) []v1alpha1.AuthorizationRule {
	for _, have := range rules {
		if have.Name == r.Name {
			if !equality.Semantic.DeepEqual(have, r) {
				m.conflict(s.cluster == "", "spec.authorization.rules[name=%s]: %s has a different rule of the same name", r.Name, s)
			}
			return rules
		}
	}
	return append(rules, r)
}

// requestAuthentication: issuers are the union and requireToken is or. One RequestAuthentication
// is generated, so the workload selectors must agree; a section without selector covers every
// workload, which is the stricter choice (more workloads reject invalid tokens), and wins. An issuer
// the namespace profile lists differently from a floor is held at the floor's entry.
func (m *merger) requestAuthentication() {
	var out *v1alpha1.RequestAuthenticationSpec
	issuerFrom := map[string]string{} // issuer → floor that listed it
	requireFrom := ""
	selFrom := source{}
	all := m.all()
	for _, s := range all {
		ra := s.spec.RequestAuthentication
		if ra == nil {
			continue
		}
		if out == nil {
			out = &v1alpha1.RequestAuthenticationSpec{Selector: ra.Selector.DeepCopy()}
			selFrom = s
		} else {
			switch {
			case out.Selector == nil:
			case ra.Selector == nil:
				out.Selector = nil
			case selectorKey(*out.Selector) != selectorKey(*ra.Selector):
				m.conflict(s.cluster == "", "spec.requestAuthentication.selector: %s selects %s, %s selects %s: one RequestAuthentication cannot carry both",
					selFrom, selectorKey(*out.Selector), s, selectorKey(*ra.Selector))
			}
		}
		if s.cluster != "" && ra.RequireToken && requireFrom == "" {
			requireFrom = s.cluster
		}
		if s.cluster == "" && !ra.RequireToken && requireFrom != "" {
			m.hold("spec.requestAuthentication.requireToken", "false", "true", requireFrom)
		}
		out.RequireToken = out.RequireToken || ra.RequireToken
		for _, is := range ra.Issuers {
			found := false
			for _, have := range out.Issuers {
				if have.Issuer != is.Issuer {
					continue
				}
				found = true
				if equality.Semantic.DeepEqual(have, is) {
					break
				}
				if s.cluster != "" {
					m.conflict(false, "spec.requestAuthentication.issuers[issuer=%s]: ClusterMeshSecurityProfiles %s and %s configure it differently", is.Issuer, issuerFrom[is.Issuer], s.cluster)
				} else {
					m.hold(fmt.Sprintf("spec.requestAuthentication.issuers[issuer=%s]", is.Issuer), "a different configuration", "the floor's configuration", issuerFrom[is.Issuer])
				}
				break
			}
			if !found {
				out.Issuers = append(out.Issuers, *is.DeepCopy())
				if s.cluster != "" {
					issuerFrom[is.Issuer] = s.cluster
				}
			}
		}
	}
	if out != nil {
		sort.SliceStable(out.Issuers, func(i, j int) bool { return out.Issuers[i].Issuer < out.Issuers[j].Issuer })
	}
	m.res.Spec.RequestAuthentication = out
}

// networkPolicy: the default-deny directions are the union, allowDNS and allowMeshControlPlane are
// or, ingress and egress rules are the union (a floor's rule named <floor>-<rule>). Kubernetes
// NetworkPolicies are additive allow-lists
// (https://kubernetes.io/docs/concepts/services-networking/network-policies/#the-two-sorts-of-pod-isolation),
// so the union is exactly what several policies in one namespace mean.
func (m *merger) networkPolicy() {
	var out *v1alpha1.NetworkPolicySpec
	dirFrom := map[v1alpha1.PolicyDirection]string{}
	for _, f := range m.floors {
		np := f.spec.NetworkPolicy
		if np == nil {
			continue
		}
		if out == nil {
			out = &v1alpha1.NetworkPolicySpec{}
		}
		for _, d := range np.DefaultDeny {
			if _, ok := dirFrom[d]; !ok {
				dirFrom[d] = f.cluster
			}
		}
		out.AllowDNS = out.AllowDNS || np.AllowDNS
		out.AllowMeshControlPlane = out.AllowMeshControlPlane || np.AllowMeshControlPlane
		for _, r := range np.Ingress {
			r := *r.DeepCopy()
			r.Name = m.scoped(f.cluster, r.Name)
			out.Ingress = addNamed(m, out.Ingress, r, r.Name, f, "ingress")
		}
		for _, r := range np.Egress {
			r := *r.DeepCopy()
			r.Name = m.scoped(f.cluster, r.Name)
			out.Egress = addNamed(m, out.Egress, r, r.Name, f, "egress")
		}
	}
	dirs := map[v1alpha1.PolicyDirection]bool{}
	for d := range dirFrom {
		dirs[d] = true
	}
	if m.ns != nil && m.ns.spec.NetworkPolicy != nil {
		np := m.ns.spec.NetworkPolicy
		if out == nil {
			out = &v1alpha1.NetworkPolicySpec{}
		}
		asked := map[v1alpha1.PolicyDirection]bool{}
		for _, d := range np.DefaultDeny {
			asked[d] = true
			dirs[d] = true
		}
		for _, d := range []v1alpha1.PolicyDirection{v1alpha1.DirectionIngress, v1alpha1.DirectionEgress} {
			if from, ok := dirFrom[d]; ok && !asked[d] {
				m.hold("spec.networkPolicy.defaultDeny", "without "+string(d), "with "+string(d), from)
			}
		}
		out.AllowDNS = out.AllowDNS || np.AllowDNS
		out.AllowMeshControlPlane = out.AllowMeshControlPlane || np.AllowMeshControlPlane
		for _, r := range np.Ingress {
			out.Ingress = addNamed(m, out.Ingress, *r.DeepCopy(), r.Name, *m.ns, "ingress")
		}
		for _, r := range np.Egress {
			out.Egress = addNamed(m, out.Egress, *r.DeepCopy(), r.Name, *m.ns, "egress")
		}
	}
	if out != nil {
		out.DefaultDeny = nil
		for _, d := range []v1alpha1.PolicyDirection{v1alpha1.DirectionIngress, v1alpha1.DirectionEgress} {
			if dirs[d] {
				out.DefaultDeny = append(out.DefaultDeny, d)
			}
		}
	}
	m.res.Spec.NetworkPolicy = out
}

type namedRule interface {
	v1alpha1.IngressRule | v1alpha1.EgressRule
}

func addNamed[T namedRule](m *merger, rules []T, r T, name string, s source, list string) []T {
	for _, have := range rules {
		if nameOf(have) == name {
			if !equality.Semantic.DeepEqual(have, r) {
				m.conflict(s.cluster == "", "spec.networkPolicy.%s[name=%s]: %s has a different rule of the same name", list, name, s)
			}
			return rules
		}
	}
	out := append(rules, r)
	sort.SliceStable(out, func(i, j int) bool { return nameOf(out[i]) < nameOf(out[j]) })
	return out
}

func nameOf[T namedRule](r T) string {
	switch v := any(r).(type) {
	case v1alpha1.IngressRule:
		return v.Name
	case v1alpha1.EgressRule:
		return v.Name
	}
	return ""
}
