package authzcheck

import (
	"fmt"
	"math/rand/v2"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// profileNS is the namespace of every generated profile.
const profileNS = "shop"

// issuer is the JWT issuer a generated requestAuthentication accepts.
const issuer = "https://auth.example.com"

// source is a sender of the sampled world.
type source struct {
	namespace, serviceAccount string // empty namespace: an address outside the cluster's pods
	labels                    map[string]string
	ip                        string
	unmeshed                  bool
}

func (s source) String() string {
	m := ""
	if s.unmeshed {
		m = " (no proxy)"
	}
	if s.namespace == "" {
		return s.ip + m
	}
	return fmt.Sprintf("%s/%s %s%s", s.namespace, s.serviceAccount, s.ip, m)
}

// The world requests are sampled from.
var (
	sources = []source{
		{namespace: "frontend", serviceAccount: "web", labels: map[string]string{"app": "web"}, ip: "10.1.1.1"},
		{namespace: "frontend", serviceAccount: "batch", labels: map[string]string{"app": "batch"}, ip: "10.1.1.2"},
		{namespace: "frontend", serviceAccount: "web", labels: map[string]string{"app": "web"}, ip: "10.1.1.3", unmeshed: true},
		{namespace: "ops", serviceAccount: "admin", labels: map[string]string{"app": "admin"}, ip: "10.1.2.1"},
		{namespace: "shop", serviceAccount: "web", labels: map[string]string{"app": "web"}, ip: "10.1.0.2"},
		{namespace: "shop", serviceAccount: "api", labels: map[string]string{"app": "api"}, ip: "10.1.0.1"},
		{namespace: "other", serviceAccount: "web", labels: map[string]string{"app": "web"}, ip: "10.1.3.1"},
		{namespace: "other", serviceAccount: "default", labels: map[string]string{}, ip: "10.1.3.2", unmeshed: true},
		{ip: "203.0.113.7", unmeshed: true},
		{ip: "198.51.100.9", unmeshed: true},
	}
	destLabels = []map[string]string{{"app": "api"}, {"app": "web"}, {"app": "db"}, {}}
	destPorts  = []int32{8080, 9090, 5432}
	methods    = []string{"GET", "POST", "DELETE", "PUT"}
	paths      = []string{"/", "/api", "/api/", "/api/items", "/apix", "/admin", "/admin/users", "/healthz", "/report.json"}
	principals = []string{"", issuer + "/alice", issuer + "/bob", "https://other.example.com/carol"}

	ruleServiceAccounts = []string{"frontend/web", "frontend/batch", "ops/admin", "shop/web"}
	ruleNamespaces      = []string{"frontend", "ops", "shop"}
	rulePrincipals      = []string{issuer + "/alice", issuer + "/*", "*"}
	ruleIPBlocks        = []string{"10.1.1.0/24", "203.0.113.0/24", "10.1.0.0/16"}
	ruleMethods         = []string{"GET", "POST", "DELETE"}
	rulePathsLinkerd    = []string{"/api/*", "/healthz", "*", "/admin"}
	rulePathsIstio      = []string{"/api/*", "/healthz", "*", "/admin*", "*.json", "/admin"}
	rulePorts           = []int32{8080, 9090}
	ruleSelectors       = []map[string]string{{"app": "api"}, {"app": "web"}}
)

// genProfile makes a random profile: Istio or Linkerd, any mTLS mode, defaultDeny or not, up to
// four rules. Linkerd profiles keep to what Linkerd expresses (Allow rules with ports, no JWT),
// and their rules select either every workload or disjoint ones, so that no two Servers select
// the same pod and port.
func genProfile(r *rand.Rand, i int) *v1alpha1.MeshSecurityProfile {
	linkerd := r.IntN(2) == 0
	p := &v1alpha1.MeshSecurityProfile{ObjectMeta: metav1.ObjectMeta{Namespace: profileNS, Name: fmt.Sprintf("p%d", i)}}
	p.Spec.Mesh = v1alpha1.MeshIstio
	if linkerd {
		p.Spec.Mesh = v1alpha1.MeshLinkerd
	}
	p.Spec.MTLS = &v1alpha1.MTLSSpec{Mode: []v1alpha1.MTLSMode{v1alpha1.MTLSStrict, v1alpha1.MTLSPermissive, v1alpha1.MTLSDisable}[r.IntN(3)]}
	if !linkerd && r.IntN(2) == 0 {
		ra := &v1alpha1.RequestAuthenticationSpec{
			RequireToken: r.IntN(3) == 0,
			Issuers:      []v1alpha1.JWTIssuer{{Issuer: issuer, JwksURI: issuer + "/.well-known/jwks.json"}},
		}
		if r.IntN(2) == 0 {
			ra.Selector = &v1alpha1.WorkloadSelector{MatchLabels: map[string]string{"app": "api"}}
		}
		p.Spec.RequestAuthentication = ra
	}
	az := &v1alpha1.AuthorizationSpec{DefaultDeny: r.IntN(2) == 0}
	labelled := r.IntN(2) == 0 // Linkerd: every rule selects a label, or none does
	for j := range r.IntN(5) {
		rule := v1alpha1.AuthorizationRule{Name: fmt.Sprintf("r%d", j), Action: v1alpha1.ActionAllow}
		if !linkerd && r.IntN(4) == 0 {
			rule.Action = v1alpha1.ActionDeny
		}
		if (linkerd && labelled) || (!linkerd && r.IntN(3) > 0) {
			rule.Selector = &v1alpha1.WorkloadSelector{MatchLabels: ruleSelectors[r.IntN(len(ruleSelectors))]}
		}
		rule.From = genFrom(r, linkerd)
		rule.To = genTo(r, linkerd)
		if rule.From == nil && rule.To == nil {
			rule.To = &v1alpha1.RuleTarget{Ports: []int32{8080}}
		}
		az.Rules = append(az.Rules, rule)
	}
	p.Spec.Authorization = az
	return p
}

func genFrom(r *rand.Rand, linkerd bool) *v1alpha1.RuleSource {
	if r.IntN(5) == 0 {
		return nil
	}
	f := &v1alpha1.RuleSource{}
	for f.ServiceAccounts == nil && f.Namespaces == nil && f.RequestPrincipals == nil && f.IPBlocks == nil {
		if r.IntN(2) == 0 {
			for _, sa := range subset(r, ruleServiceAccounts) {
				f.ServiceAccounts = append(f.ServiceAccounts, v1alpha1.ServiceAccountRef(sa))
			}
		}
		if r.IntN(3) == 0 {
			f.Namespaces = subset(r, ruleNamespaces)
		}
		if !linkerd && r.IntN(3) == 0 {
			f.RequestPrincipals = subset(r, rulePrincipals)
		}
		if r.IntN(4) == 0 {
			f.IPBlocks = subset(r, ruleIPBlocks)
		}
	}
	return f
}

func genTo(r *rand.Rand, linkerd bool) *v1alpha1.RuleTarget {
	if !linkerd && r.IntN(4) == 0 {
		return nil
	}
	t := &v1alpha1.RuleTarget{}
	if r.IntN(2) == 0 {
		t.Methods = subset(r, ruleMethods)
	}
	if r.IntN(2) == 0 {
		if linkerd {
			t.Paths = subset(r, rulePathsLinkerd)
		} else {
			t.Paths = subset(r, rulePathsIstio)
		}
	}
	if linkerd || r.IntN(2) == 0 || (t.Methods == nil && t.Paths == nil) {
		t.Ports = subset(r, rulePorts)
	}
	return t
}

// subset is a random non-empty subset, in the order of from.
func subset[T any](r *rand.Rand, from []T) []T {
	for {
		var out []T
		for _, x := range from {
			if r.IntN(2) == 0 {
				out = append(out, x)
			}
		}
		if len(out) > 0 {
			return out
		}
	}
}
