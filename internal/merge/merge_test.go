package merge

import (
	"errors"
	"reflect"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

type specOpt func(*v1alpha1.MeshSecurityProfileSpec)

func floor(name string, opts ...specOpt) *v1alpha1.ClusterMeshSecurityProfile {
	c := &v1alpha1.ClusterMeshSecurityProfile{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for _, o := range opts {
		o(&c.Spec.MeshSecurityProfileSpec)
	}
	return c
}

func profile(opts ...specOpt) *v1alpha1.MeshSecurityProfile {
	p := &v1alpha1.MeshSecurityProfile{ObjectMeta: metav1.ObjectMeta{Name: "team", Namespace: "shop"}}
	for _, o := range opts {
		o(&p.Spec)
	}
	return p
}

func withMesh(m v1alpha1.Mesh) specOpt {
	return func(s *v1alpha1.MeshSecurityProfileSpec) { s.Mesh = m }
}
func withTrustDomain(td string) specOpt {
	return func(s *v1alpha1.MeshSecurityProfileSpec) { s.TrustDomain = td }
}
func withAdopt() specOpt { return func(s *v1alpha1.MeshSecurityProfileSpec) { s.AdoptExisting = true } }
func withEnforcement(e v1alpha1.Enforcement) specOpt {
	return func(s *v1alpha1.MeshSecurityProfileSpec) { s.Enforcement = e }
}
func withMTLS(mode v1alpha1.MTLSMode) specOpt {
	return func(s *v1alpha1.MeshSecurityProfileSpec) {
		if s.MTLS == nil {
			s.MTLS = &v1alpha1.MTLSSpec{}
		}
		s.MTLS.Mode = mode
	}
}
func withOverride(name string, app string, mode v1alpha1.MTLSMode, ports ...v1alpha1.PortMTLS) specOpt {
	return func(s *v1alpha1.MeshSecurityProfileSpec) {
		if s.MTLS == nil {
			s.MTLS = &v1alpha1.MTLSSpec{Mode: v1alpha1.MTLSStrict}
		}
		s.MTLS.Overrides = append(s.MTLS.Overrides, v1alpha1.MTLSOverride{
			Name: name, Selector: v1alpha1.WorkloadSelector{MatchLabels: map[string]string{"app": app}}, Mode: mode, Ports: ports,
		})
	}
}
func port(p int32, mode v1alpha1.MTLSMode) v1alpha1.PortMTLS {
	return v1alpha1.PortMTLS{Port: p, Mode: mode}
}
func withAuthz(defaultDeny bool, rules ...v1alpha1.AuthorizationRule) specOpt {
	return func(s *v1alpha1.MeshSecurityProfileSpec) {
		s.Authorization = &v1alpha1.AuthorizationSpec{DefaultDeny: defaultDeny, Rules: rules}
	}
}
func allow(name, fromNamespace string) v1alpha1.AuthorizationRule {
	return v1alpha1.AuthorizationRule{Name: name, Action: v1alpha1.ActionAllow, From: &v1alpha1.RuleSource{Namespaces: []string{fromNamespace}}}
}
func deny(name, fromNamespace string) v1alpha1.AuthorizationRule {
	r := allow(name, fromNamespace)
	r.Action = v1alpha1.ActionDeny
	return r
}
func withJWT(requireToken bool, sel map[string]string, issuers ...string) specOpt {
	return func(s *v1alpha1.MeshSecurityProfileSpec) {
		ra := &v1alpha1.RequestAuthenticationSpec{RequireToken: requireToken}
		if sel != nil {
			ra.Selector = &v1alpha1.WorkloadSelector{MatchLabels: sel}
		}
		for _, is := range issuers {
			ra.Issuers = append(ra.Issuers, v1alpha1.JWTIssuer{Issuer: is})
		}
		s.RequestAuthentication = ra
	}
}
func withIssuerAudience(aud string) specOpt {
	return func(s *v1alpha1.MeshSecurityProfileSpec) {
		s.RequestAuthentication.Issuers[0].Audiences = []string{aud}
	}
}
func withNetpol(dirs ...v1alpha1.PolicyDirection) specOpt {
	return func(s *v1alpha1.MeshSecurityProfileSpec) {
		if s.NetworkPolicy == nil {
			s.NetworkPolicy = &v1alpha1.NetworkPolicySpec{}
		}
		s.NetworkPolicy.DefaultDeny = dirs
	}
}
func withDNS() specOpt {
	return func(s *v1alpha1.MeshSecurityProfileSpec) { ensureNP(s).AllowDNS = true }
}
func withControlPlane() specOpt {
	return func(s *v1alpha1.MeshSecurityProfileSpec) { ensureNP(s).AllowMeshControlPlane = true }
}
func withIngress(name, fromNamespace string) specOpt {
	return func(s *v1alpha1.MeshSecurityProfileSpec) {
		np := ensureNP(s)
		np.Ingress = append(np.Ingress, v1alpha1.IngressRule{Name: name, From: []v1alpha1.NetworkPeer{{Namespaces: []string{fromNamespace}}}})
	}
}
func withEgress(name, cidr string) specOpt {
	return func(s *v1alpha1.MeshSecurityProfileSpec) {
		np := ensureNP(s)
		np.Egress = append(np.Egress, v1alpha1.EgressRule{Name: name, To: []v1alpha1.NetworkPeer{{IPBlock: &v1alpha1.IPBlock{CIDR: cidr}}}})
	}
}
func ensureNP(s *v1alpha1.MeshSecurityProfileSpec) *v1alpha1.NetworkPolicySpec {
	if s.NetworkPolicy == nil {
		s.NetworkPolicy = &v1alpha1.NetworkPolicySpec{}
	}
	return s.NetworkPolicy
}
func withMinValidity(d time.Duration) specOpt {
	return func(s *v1alpha1.MeshSecurityProfileSpec) {
		s.Certificates = &v1alpha1.CertificatesSpec{MinValidity: &metav1.Duration{Duration: d}}
	}
}

func held(field, asked, heldAt, cluster string) v1alpha1.FloorHold {
	return v1alpha1.FloorHold{Field: field, Asked: asked, HeldAt: heldAt, ClusterProfile: cluster}
}

const (
	strict     = v1alpha1.MTLSStrict
	permissive = v1alpha1.MTLSPermissive
	disable    = v1alpha1.MTLSDisable
	ingress    = v1alpha1.DirectionIngress
	egress     = v1alpha1.DirectionEgress
)

// TestMergeRule is the merge rule of docs/cluster-profiles.md, field by field, with the floor and
// the namespace profile each asking more, less or the same.
func withAuthzShadow(shadow bool) specOpt {
	return func(s *v1alpha1.MeshSecurityProfileSpec) {
		s.Authorization = &v1alpha1.AuthorizationSpec{DefaultDeny: true}
		if shadow {
			s.Authorization.Enforcement = v1alpha1.RuleEnforcementShadow
		}
	}
}

func TestMergeRule(t *testing.T) {
	cases := []struct {
		name   string
		floors []*v1alpha1.ClusterMeshSecurityProfile
		ns     *v1alpha1.MeshSecurityProfile
		check  func(g Gomega, s v1alpha1.MeshSecurityProfileSpec)
		held   []v1alpha1.FloorHold
	}{
		// mesh, trustDomain, adoptExisting
		{name: "a floor alone gives its mesh, Istio when it names none",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("f")},
			check:  func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) { g.Expect(s.Mesh).To(Equal(v1alpha1.MeshIstio)) }},
		{name: "a namespace profile on the floor's mesh keeps it",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("f", withMesh(v1alpha1.MeshLinkerd))},
			ns:     profile(withMesh(v1alpha1.MeshLinkerd)),
			check:  func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) { g.Expect(s.Mesh).To(Equal(v1alpha1.MeshLinkerd)) }},
		{name: "a trust domain set by one side only is used",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("f", withTrustDomain("prod.example.com"))},
			ns:     profile(),
			check: func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) {
				g.Expect(s.TrustDomain).To(Equal("prod.example.com"))
			}},
		{name: "adoptExisting is or",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("f")},
			ns:     profile(withAdopt()),
			check:  func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) { g.Expect(s.AdoptExisting).To(BeTrue()) }},

		// enforcement
		{name: "an Enforce floor holds a namespace profile asking for Audit",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("f")},
			ns:     profile(withEnforcement(v1alpha1.EnforcementAudit)),
			check: func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) {
				g.Expect(s.Enforcement).To(Equal(v1alpha1.EnforcementEnforce))
			},
			held: []v1alpha1.FloorHold{held("spec.enforcement", "Audit", "Enforce", "f")}},
		{name: "an Audit floor under an enforcing namespace profile is enforced with it",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("f", withEnforcement(v1alpha1.EnforcementAudit))},
			ns:     profile(),
			check: func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) {
				g.Expect(s.Enforcement).To(Equal(v1alpha1.EnforcementEnforce))
			}},
		{name: "an Audit floor alone stays Audit",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("f", withEnforcement(v1alpha1.EnforcementAudit))},
			check: func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) {
				g.Expect(s.Enforcement).To(Equal(v1alpha1.EnforcementAudit))
			}},

		// authorization in shadow
		{name: "a floor with enforced authorization holds a namespace profile asking for Shadow",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("f", withAuthzShadow(false))},
			ns:     profile(withAuthzShadow(true)),
			check: func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) {
				g.Expect(s.Authorization.Enforcement).To(BeEmpty())
				g.Expect(s.Authorization.DefaultDeny).To(BeTrue())
			},
			held: []v1alpha1.FloorHold{held("spec.authorization.enforcement", "Shadow", "Enforce", "f")}},
		{name: "a floor in shadow does not put an enforcing namespace profile's rules in shadow",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("f", withAuthzShadow(true))},
			ns:     profile(withAuthzShadow(false)),
			check: func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) {
				g.Expect(s.Authorization.Enforcement).To(BeEmpty())
			}},
		{name: "Shadow stays when every section asks for it",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("f", withAuthzShadow(true))},
			ns:     profile(withAuthzShadow(true)),
			check: func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) {
				g.Expect(s.Authorization.Enforcement).To(Equal(v1alpha1.RuleEnforcementShadow))
			}},

		// mtls, namespace-wide
		{name: "a Strict floor holds a Permissive namespace profile at Strict",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("f", withMTLS(strict))},
			ns:     profile(withMTLS(permissive)),
			check:  func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) { g.Expect(s.MTLS.Mode).To(Equal(strict)) },
			held:   []v1alpha1.FloorHold{held("spec.mtls.mode", "Permissive", "Strict", "f")}},
		{name: "a Permissive floor holds a Disable namespace profile at Permissive",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("f", withMTLS(permissive))},
			ns:     profile(withMTLS(disable)),
			check:  func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) { g.Expect(s.MTLS.Mode).To(Equal(permissive)) },
			held:   []v1alpha1.FloorHold{held("spec.mtls.mode", "Disable", "Permissive", "f")}},
		{name: "migration: a Permissive floor under a Strict namespace profile gives Strict, nothing held",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("migration", withMTLS(permissive))},
			ns:     profile(withMTLS(strict)),
			check:  func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) { g.Expect(s.MTLS.Mode).To(Equal(strict)) }},
		{name: "migration: a Permissive floor alone stays Permissive",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("migration", withMTLS(permissive))},
			check:  func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) { g.Expect(s.MTLS.Mode).To(Equal(permissive)) }},
		{name: "an omitted mode is the API default Strict on either side",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("f")},
			ns:     profile(withMTLS(disable)),
			check:  func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) { g.Expect(s.MTLS.Mode).To(Equal(strict)) },
			held:   []v1alpha1.FloorHold{held("spec.mtls.mode", "Disable", "Strict", "f")}},
		{name: "two floors give the strictest mode, held in the name of the strict one",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("b-strict", withMTLS(strict)), floor("a-permissive", withMTLS(permissive))},
			ns:     profile(withMTLS(disable)),
			check:  func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) { g.Expect(s.MTLS.Mode).To(Equal(strict)) },
			held:   []v1alpha1.FloorHold{held("spec.mtls.mode", "Disable", "Strict", "b-strict")}},

		// mtls, per workload and port
		{name: "a namespace override weaker than the Strict floor is held and dropped",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("f", withMTLS(strict))},
			ns:     profile(withMTLS(strict), withOverride("legacy", "legacy", permissive)),
			check:  func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) { g.Expect(s.MTLS.Overrides).To(BeEmpty()) },
			held:   []v1alpha1.FloorHold{held("spec.mtls.overrides[0].mode", "Permissive", "Strict", "f")}},
		{name: "migration: a floor's Permissive exception for one workload under a Strict namespace is tightened away",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("f", withMTLS(strict), withOverride("legacy", "legacy", permissive))},
			ns:     profile(withMTLS(strict)),
			check:  func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) { g.Expect(s.MTLS.Overrides).To(BeEmpty()) }},
		{name: "a floor's Permissive exception stays where the namespace profile is Permissive too",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("f", withMTLS(strict), withOverride("legacy", "legacy", permissive))},
			ns:     profile(withMTLS(permissive)),
			check: func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) {
				g.Expect(s.MTLS.Mode).To(Equal(strict))
				g.Expect(s.MTLS.Overrides).To(HaveLen(1))
				g.Expect(s.MTLS.Overrides[0].Name).To(Equal("f-legacy"))
				g.Expect(s.MTLS.Overrides[0].Mode).To(Equal(permissive))
			},
			held: []v1alpha1.FloorHold{held("spec.mtls.mode", "Permissive", "Strict", "f")}},
		{name: "a namespace override stricter than a Permissive floor is kept under the namespace's name",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("f", withMTLS(permissive))},
			ns:     profile(withMTLS(permissive), withOverride("db", "db", strict)),
			check: func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) {
				g.Expect(s.MTLS.Overrides).To(ConsistOf(v1alpha1.MTLSOverride{Name: "db", Selector: v1alpha1.WorkloadSelector{MatchLabels: map[string]string{"app": "db"}}, Mode: strict}))
			}},
		{name: "per port: the strictest of the floor's and the namespace's port modes",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("f", withMTLS(permissive), withOverride("", "db", "", port(9187, disable), port(5432, strict)))},
			ns:     profile(withMTLS(permissive), withOverride("db", "db", "", port(9187, permissive), port(5432, disable))),
			check: func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) {
				g.Expect(s.MTLS.Overrides).To(HaveLen(1))
				g.Expect(s.MTLS.Overrides[0].Name).To(Equal("db"))
				g.Expect(s.MTLS.Overrides[0].Ports).To(Equal([]v1alpha1.PortMTLS{port(5432, strict)}), "9187: Permissive is the workloads' mode, so it is inherited")
			},
			held: []v1alpha1.FloorHold{held("spec.mtls.overrides[0].ports[port=5432].mode", "Disable", "Strict", "f")}},
		{name: "per port: a namespace port exception under a Strict floor without exceptions is held",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("f", withMTLS(strict))},
			ns:     profile(withMTLS(strict), withOverride("db", "db", "", port(9187, permissive))),
			check:  func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) { g.Expect(s.MTLS.Overrides).To(BeEmpty()) },
			held:   []v1alpha1.FloorHold{held("spec.mtls.overrides[0].ports[port=9187].mode", "Permissive", "Strict", "f")}},
		{name: "per port: a floor's port exception is kept where the namespace asks no more",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("f", withMTLS(strict), withOverride("", "db", "", port(9187, permissive)))},
			ns:     profile(withMTLS(strict), withOverride("", "db", "", port(9187, permissive))),
			check: func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) {
				g.Expect(s.MTLS.Overrides).To(HaveLen(1))
				g.Expect(s.MTLS.Overrides[0].Ports).To(Equal([]v1alpha1.PortMTLS{port(9187, permissive)}))
			}},

		// requestAuthentication
		{name: "JWT issuers are the union and requireToken is or",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("f", withJWT(true, nil, "https://platform.example.com"))},
			ns:     profile(withJWT(false, nil, "https://team.example.com")),
			check: func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) {
				g.Expect(s.RequestAuthentication.RequireToken).To(BeTrue())
				g.Expect(s.RequestAuthentication.Issuers).To(HaveLen(2))
				g.Expect(s.RequestAuthentication.Issuers[0].Issuer).To(Equal("https://platform.example.com"))
			},
			held: []v1alpha1.FloorHold{held("spec.requestAuthentication.requireToken", "false", "true", "f")}},
		{name: "a namespace requiring tokens under a floor that does not keeps requireToken",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("f", withJWT(false, nil, "https://platform.example.com"))},
			ns:     profile(withJWT(true, nil, "https://platform.example.com")),
			check: func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) {
				g.Expect(s.RequestAuthentication.RequireToken).To(BeTrue())
				g.Expect(s.RequestAuthentication.Issuers).To(HaveLen(1))
			}},
		{name: "a floor's JWT section applies to a namespace profile without one",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("f", withJWT(true, map[string]string{"app": "api"}, "https://platform.example.com"))},
			ns:     profile(),
			check: func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) {
				g.Expect(s.RequestAuthentication.Selector.MatchLabels).To(Equal(map[string]string{"app": "api"}))
				g.Expect(s.RequestAuthentication.RequireToken).To(BeTrue())
			}},
		{name: "a JWT section without selector covers every workload, which wins over a selector",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("f", withJWT(false, map[string]string{"app": "api"}, "https://platform.example.com"))},
			ns:     profile(withJWT(false, nil, "https://team.example.com")),
			check: func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) {
				g.Expect(s.RequestAuthentication.Selector).To(BeNil())
			}},
		{name: "an issuer the namespace configures differently from the floor is held at the floor's",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("f", withJWT(false, nil, "https://auth.example.com"), withIssuerAudience("platform"))},
			ns:     profile(withJWT(false, nil, "https://auth.example.com"), withIssuerAudience("anything")),
			check: func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) {
				g.Expect(s.RequestAuthentication.Issuers).To(HaveLen(1))
				g.Expect(s.RequestAuthentication.Issuers[0].Audiences).To(Equal([]string{"platform"}))
			},
			held: []v1alpha1.FloorHold{held("spec.requestAuthentication.issuers[issuer=https://auth.example.com]", "a different configuration", "the floor's configuration", "f")}},

		// authorization
		{name: "a default-deny floor holds a namespace profile without defaultDeny",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("f", withAuthz(true))},
			ns:     profile(withAuthz(false, allow("web", "frontend"))),
			check: func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) {
				g.Expect(s.Authorization.DefaultDeny).To(BeTrue())
				g.Expect(s.Authorization.Rules).To(ConsistOf(allow("web", "frontend")))
			},
			held: []v1alpha1.FloorHold{held("spec.authorization.defaultDeny", "false", "true", "f")}},
		{name: "a namespace profile may turn on defaultDeny under a floor without it",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("f", withAuthz(false, allow("prometheus", "monitoring")))},
			ns:     profile(withAuthz(true)),
			check: func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) {
				g.Expect(s.Authorization.DefaultDeny).To(BeTrue())
				g.Expect(s.Authorization.Rules).To(ConsistOf(allow("f-prometheus", "monitoring")))
			}},
		{name: "a namespace profile without an authorization section is not held, the floor applies",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("f", withAuthz(true, allow("prometheus", "monitoring")))},
			ns:     profile(),
			check: func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) {
				g.Expect(s.Authorization.DefaultDeny).To(BeTrue())
				g.Expect(s.Authorization.Rules).To(HaveLen(1))
			}},
		{name: "Allow and Deny rules are the union, the floor's named after it",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("f", withAuthz(true, allow("prometheus", "monitoring"), deny("internet", "untrusted")))},
			ns:     profile(withAuthz(true, allow("web", "frontend"), deny("legacy", "legacy"))),
			check: func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) {
				g.Expect(s.Authorization.Rules).To(Equal([]v1alpha1.AuthorizationRule{
					deny("f-internet", "untrusted"), allow("f-prometheus", "monitoring"), deny("legacy", "legacy"), allow("web", "frontend"),
				}))
			}},
		{name: "a namespace rule named like a floor's scoped rule does not replace it when they are the same",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("f", withAuthz(true, allow("prometheus", "monitoring")))},
			ns:     profile(withAuthz(true, allow("f-prometheus", "monitoring"))),
			check: func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) {
				g.Expect(s.Authorization.Rules).To(HaveLen(1))
			}},

		// networkPolicy
		{name: "default-deny directions are the union",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("f", withNetpol(ingress))},
			ns:     profile(withNetpol(egress)),
			check: func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) {
				g.Expect(s.NetworkPolicy.DefaultDeny).To(Equal([]v1alpha1.PolicyDirection{ingress, egress}))
			},
			held: []v1alpha1.FloorHold{held("spec.networkPolicy.defaultDeny", "without Ingress", "with Ingress", "f")}},
		{name: "a namespace profile may add the egress direction to an ingress-only floor",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("f", withNetpol(ingress))},
			ns:     profile(withNetpol(ingress, egress)),
			check: func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) {
				g.Expect(s.NetworkPolicy.DefaultDeny).To(Equal([]v1alpha1.PolicyDirection{ingress, egress}))
			}},
		{name: "allowDNS and allowMeshControlPlane are or, from either side",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("f", withNetpol(ingress, egress), withDNS())},
			ns:     profile(withNetpol(ingress, egress), withControlPlane()),
			check: func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) {
				g.Expect(s.NetworkPolicy.AllowDNS).To(BeTrue())
				g.Expect(s.NetworkPolicy.AllowMeshControlPlane).To(BeTrue())
			}},
		{name: "ingress and egress rules are the union, the floor's named after it",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("platform", withNetpol(ingress, egress), withIngress("prometheus", "monitoring"), withEgress("proxy", "10.0.0.0/8"))},
			ns:     profile(withIngress("web", "frontend")),
			check: func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) {
				g.Expect(s.NetworkPolicy.Ingress).To(HaveLen(2))
				g.Expect(s.NetworkPolicy.Ingress[0].Name).To(Equal("platform-prometheus"))
				g.Expect(s.NetworkPolicy.Ingress[1].Name).To(Equal("web"))
				g.Expect(s.NetworkPolicy.Egress).To(HaveLen(1))
				g.Expect(s.NetworkPolicy.Egress[0].Name).To(Equal("platform-proxy"))
			},
			held: []v1alpha1.FloorHold{
				held("spec.networkPolicy.defaultDeny", "without Ingress", "with Ingress", "platform"),
				held("spec.networkPolicy.defaultDeny", "without Egress", "with Egress", "platform"),
			}},

		// certificates
		{name: "the longest minValidity is kept, a shorter one of the namespace is held",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("f", withMinValidity(2160*time.Hour))},
			ns:     profile(withMinValidity(720 * time.Hour)),
			check: func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) {
				g.Expect(s.Certificates.MinValidity.Duration).To(Equal(2160 * time.Hour))
			},
			held: []v1alpha1.FloorHold{held("spec.certificates.minValidity", "720h0m0s", "2160h0m0s", "f")}},
		{name: "a namespace may ask for a longer minValidity",
			floors: []*v1alpha1.ClusterMeshSecurityProfile{floor("f", withMinValidity(720*time.Hour))},
			ns:     profile(withMinValidity(1440 * time.Hour)),
			check: func(g Gomega, s v1alpha1.MeshSecurityProfileSpec) {
				g.Expect(s.Certificates.MinValidity.Duration).To(Equal(1440 * time.Hour))
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			res, err := Merge(tc.floors, tc.ns)
			g.Expect(err).NotTo(HaveOccurred())
			tc.check(g, res.Spec)
			g.Expect(res.Held).To(Equal(tc.held))
		})
	}
}

func TestProfilesThatCannotBeMergedAreAConflictNamingEveryone(t *testing.T) {
	cases := []struct {
		name     string
		floors   []*v1alpha1.ClusterMeshSecurityProfile
		ns       *v1alpha1.MeshSecurityProfile
		clusters []string
		profile  string
		reason   string
	}{
		{name: "two floors on different meshes",
			floors:   []*v1alpha1.ClusterMeshSecurityProfile{floor("istio-floor"), floor("linkerd-floor", withMesh(v1alpha1.MeshLinkerd))},
			clusters: []string{"istio-floor", "linkerd-floor"},
			reason:   "spec.mesh: ClusterMeshSecurityProfile istio-floor says Istio, ClusterMeshSecurityProfile linkerd-floor says Linkerd"},
		{name: "a namespace profile on another mesh than its floor",
			floors:   []*v1alpha1.ClusterMeshSecurityProfile{floor("f")},
			ns:       profile(withMesh(v1alpha1.MeshLinkerd)),
			clusters: []string{"f"}, profile: "team",
			reason: "spec.mesh: ClusterMeshSecurityProfile f says Istio, the namespace's MeshSecurityProfile says Linkerd"},
		{name: "two trust domains",
			floors:   []*v1alpha1.ClusterMeshSecurityProfile{floor("a", withTrustDomain("a.example.com")), floor("b", withTrustDomain("b.example.com"))},
			clusters: []string{"a", "b"},
			reason:   "spec.trustDomain: ClusterMeshSecurityProfile a says a.example.com, ClusterMeshSecurityProfile b says b.example.com"},
		{name: "two JWT sections on different workloads",
			floors:   []*v1alpha1.ClusterMeshSecurityProfile{floor("f", withJWT(false, map[string]string{"app": "api"}, "https://a.example.com"))},
			ns:       profile(withJWT(false, map[string]string{"app": "web"}, "https://a.example.com")),
			clusters: []string{"f"}, profile: "team",
			reason: "spec.requestAuthentication.selector: ClusterMeshSecurityProfile f selects app=api, the namespace's MeshSecurityProfile selects app=web: one RequestAuthentication cannot carry both"},
		{name: "a namespace rule of a floor rule's scoped name that differs from it",
			floors:   []*v1alpha1.ClusterMeshSecurityProfile{floor("f", withAuthz(true, allow("prometheus", "monitoring")))},
			ns:       profile(withAuthz(true, allow("f-prometheus", "everyone"))),
			clusters: []string{"f"}, profile: "team",
			reason: "spec.authorization.rules[name=f-prometheus]: the namespace's MeshSecurityProfile has a different rule of the same name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := Merge(tc.floors, tc.ns)
			var ce *ConflictError
			g.Expect(errors.As(err, &ce)).To(BeTrue(), "got %v", err)
			g.Expect(ce.ClusterProfiles).To(Equal(tc.clusters))
			g.Expect(ce.Profile).To(Equal(tc.profile))
			g.Expect(ce.Reasons).To(ConsistOf(tc.reason))
		})
	}
}

func TestTheOrderOfFloorsDoesNotMatter(t *testing.T) {
	g := NewWithT(t)
	a := floor("a", withMTLS(permissive), withAuthz(true, allow("x", "monitoring")), withNetpol(ingress), withIngress("p", "monitoring"))
	b := floor("b", withMTLS(strict), withAuthz(false, deny("y", "untrusted")), withNetpol(egress), withDNS())
	ab, err := Merge([]*v1alpha1.ClusterMeshSecurityProfile{a, b}, profile(withMTLS(disable)))
	g.Expect(err).NotTo(HaveOccurred())
	ba, err := Merge([]*v1alpha1.ClusterMeshSecurityProfile{b, a}, profile(withMTLS(disable)))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ba).To(Equal(ab))
	g.Expect(ab.ClusterProfiles).To(Equal([]string{"a", "b"}))
}

func TestWithoutFloorsTheNamespaceProfileIsUnchanged(t *testing.T) {
	g := NewWithT(t)
	p := profile(withMTLS(permissive), withAuthz(false, allow("web", "frontend")))
	res, err := Merge(nil, p)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Spec).To(Equal(p.Spec))
	g.Expect(res.Held).To(BeEmpty())
}

func TestMergingNeverChangesItsInputs(t *testing.T) {
	g := NewWithT(t)
	f := floor("f", withMTLS(strict), withAuthz(true, allow("prometheus", "monitoring")), withIngress("p", "monitoring"))
	p := profile(withMTLS(permissive), withAuthz(false, allow("web", "frontend")))
	fc, pc := f.DeepCopy(), p.DeepCopy()
	_, err := Merge([]*v1alpha1.ClusterMeshSecurityProfile{f}, p)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f).To(Equal(fc))
	g.Expect(p).To(Equal(pc))
}

func TestAFloorRuleNameStaysADNSLabel(t *testing.T) {
	g := NewWithT(t)
	long := "a-very-long-cluster-profile-name-for-the-platform-team"
	n := scoped(long, "prometheus-scrapes-every-pod")
	g.Expect(len(n)).To(BeNumerically("<=", 63))
	g.Expect(n).To(HavePrefix("a-very-long-cluster-profile-name"))
	g.Expect(scoped(long, "prometheus-scrapes-every-pod")).To(Equal(n), "deterministic")
	g.Expect(scoped(long, "prometheus-scrapes-every-pod-2")).NotTo(Equal(n))
}

func TestSelects(t *testing.T) {
	cases := []struct {
		name     string
		selector metav1.LabelSelector
		exclude  []string
		ns       string
		labels   map[string]string
		want     bool
	}{
		{name: "an empty selector selects every namespace", ns: "shop", want: true},
		{name: "an excluded namespace is never selected", exclude: []string{"kube-system"}, ns: "kube-system", want: false},
		{name: "matchLabels selects labelled namespaces", selector: metav1.LabelSelector{MatchLabels: map[string]string{"floor": "platform"}}, ns: "shop", labels: map[string]string{"floor": "platform"}, want: true},
		{name: "matchLabels does not select other namespaces", selector: metav1.LabelSelector{MatchLabels: map[string]string{"floor": "platform"}}, ns: "shop", want: false},
		{name: "matchExpressions NotIn opts a namespace out", selector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "floor", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"off"}}}}, ns: "shop", labels: map[string]string{"floor": "off"}, want: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			c := floor("f")
			c.Spec.NamespaceSelector = tc.selector
			c.Spec.ExcludeNamespaces = tc.exclude
			got, err := Selects(c, tc.ns, tc.labels)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tc.want))
		})
	}
	t.Run("an invalid selector is an error naming the field", func(t *testing.T) {
		g := NewWithT(t)
		c := floor("f")
		c.Spec.NamespaceSelector = metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "x", Operator: "Near"}}}
		_, err := Selects(c, "shop", nil)
		g.Expect(err).To(MatchError(ContainSubstring("spec.namespaceSelector")))
	})
}

func TestTheOldestFloorGovernsANamespaceWithoutProfile(t *testing.T) {
	g := NewWithT(t)
	old, young, sameAsOld := floor("z-old"), floor("a-young"), floor("m-same")
	old.CreationTimestamp = metav1.NewTime(time.Unix(100, 0))
	young.CreationTimestamp = metav1.NewTime(time.Unix(200, 0))
	sameAsOld.CreationTimestamp = metav1.NewTime(time.Unix(100, 0))
	g.Expect(Governor([]*v1alpha1.ClusterMeshSecurityProfile{young, old, sameAsOld}).Name).To(Equal("m-same"))
	g.Expect(Governor(nil)).To(BeNil())
}

// TestEveryFieldOfTheProfileBodyHasAMergeRule fails when MeshSecurityProfileSpec gains a field:
// Merge builds the merged spec field by field, so a field without a rule would be dropped
// silently from every namespace a floor selects. Add its rule (and a row in
// docs/cluster-profiles.md), then add it here.
func TestEveryFieldOfTheProfileBodyHasAMergeRule(t *testing.T) {
	handled := []string{"Mesh", "Enforcement", "TrustDomain", "AdoptExisting", "MTLS", "RequestAuthentication",
		"Authorization", "NetworkPolicy", "Certificates", "Expectations"}
	var fields []string
	ty := reflect.TypeOf(v1alpha1.MeshSecurityProfileSpec{})
	for i := 0; i < ty.NumField(); i++ {
		fields = append(fields, ty.Field(i).Name)
	}
	NewWithT(t).Expect(fields).To(ConsistOf(handled))
}

func TestTheNamespaceProfilesExpectationsAreKept(t *testing.T) {
	g := NewWithT(t)
	p := profile()
	p.Spec.Expectations = []v1alpha1.Expectation{{Name: "web-reads-api"}}
	res, err := Merge([]*v1alpha1.ClusterMeshSecurityProfile{floor("f")}, p)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Spec.Expectations).To(Equal(p.Spec.Expectations))
}

func TestReachesIntoSaysWhetherAnyAddressOfARuleIsOneACeilingDenies(t *testing.T) {
	internet := v1alpha1.IPBlock{CIDR: "0.0.0.0/0", Except: []string{"10.0.0.0/8"}}
	for _, c := range []struct {
		name   string
		cidr   string
		except []string
		want   bool
	}{
		{"the whole internet reaches into it", "0.0.0.0/0", nil, true},
		{"a range inside the exception does not", "10.1.0.0/16", nil, false},
		{"a range that covers the exception and more does", "8.0.0.0/6", nil, true},
		{"a range whose own except removes everything outside the exception does not", "10.0.0.0/7", []string{"11.0.0.0/8"}, false},
		{"an IPv6 range does not reach into an IPv4 ceiling", "::/0", nil, false},
		{"an address that does not parse reaches everywhere (refused)", "nonsense", nil, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(ReachesInto(c.cidr, c.except, internet)).To(Equal(c.want))
		})
	}
}

func TestACeilingHoldsALinkerdRuleThatAdmitsItsAddressesAndAnyRuleWithoutSendersWhenNotStrict(t *testing.T) {
	g := NewWithT(t)
	f := floor("fl", withMesh(v1alpha1.MeshLinkerd), withMTLS(v1alpha1.MTLSPermissive))
	f.Spec.Ceilings = &v1alpha1.FloorCeilings{DeniedIngressFrom: []v1alpha1.IPBlock{{CIDR: "0.0.0.0/0", Except: []string{"10.0.0.0/8"}}}}
	open := v1alpha1.AuthorizationRule{Name: "open", To: &v1alpha1.RuleTarget{Ports: []int32{8080}}}
	internet := v1alpha1.AuthorizationRule{Name: "internet", From: &v1alpha1.RuleSource{IPBlocks: []string{"0.0.0.0/0"}}, To: &v1alpha1.RuleTarget{Ports: []int32{8080}}}
	office := v1alpha1.AuthorizationRule{Name: "office", From: &v1alpha1.RuleSource{IPBlocks: []string{"10.1.0.0/16"}}, To: &v1alpha1.RuleTarget{Ports: []int32{8080}}}
	res, err := Merge([]*v1alpha1.ClusterMeshSecurityProfile{f}, profile(withMesh(v1alpha1.MeshLinkerd), withMTLS(v1alpha1.MTLSPermissive), withAuthz(true, open, internet, office)))
	g.Expect(err).NotTo(HaveOccurred())
	var names []string
	for _, r := range res.Spec.Authorization.Rules {
		names = append(names, r.Name)
	}
	g.Expect(names).To(Equal([]string{"office"}), "Linkerd cannot deny: no Deny rule is added, the two rules admitting outside addresses are refused")
	g.Expect(res.Held).To(ConsistOf(HaveField("Field", "spec.authorization.rules[name=open]"), HaveField("Field", "spec.authorization.rules[name=internet]")))
}

func TestSystemNamespacesAreLeftOutUnlessAFloorOptsIn(t *testing.T) {
	g := NewWithT(t)
	sys := System{Meshguard: "meshguard-system", ControlPlane: []string{"istio-system", "linkerd"}}
	f := floor("all")
	for ns, want := range map[string]string{
		"kube-system": "a kube-* system namespace (spec.includeSystemNamespaces is false)", "kube-public": "a kube-* system namespace (spec.includeSystemNamespaces is false)",
		"meshguard-system": "meshguard's own namespace (spec.includeSystemNamespaces is false)", "istio-system": "a mesh control-plane namespace",
		"linkerd": "a mesh control-plane namespace", "shop": "",
	} {
		ok, why, err := sys.Selects(f, ns, map[string]string{})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(why).To(Equal(want), ns)
		g.Expect(ok).To(Equal(want == ""), ns)
	}
	f.Spec.IncludeSystemNamespaces = true
	for ns, want := range map[string]bool{"kube-system": true, "meshguard-system": true, "istio-system": false} {
		ok, _, _ := sys.Selects(f, ns, map[string]string{})
		g.Expect(ok).To(Equal(want), ns)
	}
}
