package controllers_test

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// profileOption changes a test profile.
type profileOption func(*v1alpha1.MeshSecurityProfile)

// profile builds a MeshSecurityProfile for tests from small functional options.
func profile(ns, name string, opts ...profileOption) *v1alpha1.MeshSecurityProfile {
	p := &v1alpha1.MeshSecurityProfile{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	for _, o := range opts {
		o(p)
	}
	return p
}

func withMTLS(m v1alpha1.MTLSMode) profileOption {
	return func(p *v1alpha1.MeshSecurityProfile) { p.Spec.MTLS = &v1alpha1.MTLSSpec{Mode: m} }
}

func withMesh(m v1alpha1.Mesh) profileOption {
	return func(p *v1alpha1.MeshSecurityProfile) { p.Spec.Mesh = m }
}

func withAudit() profileOption {
	return func(p *v1alpha1.MeshSecurityProfile) { p.Spec.Enforcement = v1alpha1.EnforcementAudit }
}

func withDefaultDeny() profileOption {
	return func(p *v1alpha1.MeshSecurityProfile) {
		if p.Spec.Authorization == nil {
			p.Spec.Authorization = &v1alpha1.AuthorizationSpec{}
		}
		p.Spec.Authorization.DefaultDeny = true
	}
}

// withAllowFrom adds an Allow rule admitting the service accounts ("ns/name") to app=api.
func withAllowFrom(rule string, serviceAccounts ...string) profileOption {
	return func(p *v1alpha1.MeshSecurityProfile) {
		if p.Spec.Authorization == nil {
			p.Spec.Authorization = &v1alpha1.AuthorizationSpec{}
		}
		sas := make([]v1alpha1.ServiceAccountRef, len(serviceAccounts))
		for i, s := range serviceAccounts {
			sas[i] = v1alpha1.ServiceAccountRef(s)
		}
		p.Spec.Authorization.Rules = append(p.Spec.Authorization.Rules, v1alpha1.AuthorizationRule{
			Name:     rule,
			Action:   v1alpha1.ActionAllow,
			Selector: &v1alpha1.WorkloadSelector{MatchLabels: map[string]string{"app": "api"}},
			From:     &v1alpha1.RuleSource{ServiceAccounts: sas},
		})
	}
}

func withNetworkDefaultDeny(dirs ...v1alpha1.PolicyDirection) profileOption {
	return func(p *v1alpha1.MeshSecurityProfile) {
		if p.Spec.NetworkPolicy == nil {
			p.Spec.NetworkPolicy = &v1alpha1.NetworkPolicySpec{}
		}
		p.Spec.NetworkPolicy.DefaultDeny = dirs
	}
}

func withAllowDNS() profileOption {
	return func(p *v1alpha1.MeshSecurityProfile) {
		if p.Spec.NetworkPolicy == nil {
			p.Spec.NetworkPolicy = &v1alpha1.NetworkPolicySpec{}
		}
		p.Spec.NetworkPolicy.AllowDNS = true
	}
}

func withLabels(l map[string]string) profileOption {
	return func(p *v1alpha1.MeshSecurityProfile) { p.Labels = l }
}

func withAnnotations(a map[string]string) profileOption {
	return func(p *v1alpha1.MeshSecurityProfile) { p.Annotations = a }
}
