package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Mesh names the service mesh whose security objects meshguard generates.
// +kubebuilder:validation:Enum=Istio;Linkerd
type Mesh string

const (
	// MeshIstio generates Istio security.istio.io objects.
	MeshIstio Mesh = "Istio"
	// MeshLinkerd generates Linkerd policy.linkerd.io objects.
	MeshLinkerd Mesh = "Linkerd"
)

// Enforcement says whether meshguard writes what it computes.
// +kubebuilder:validation:Enum=Enforce;Audit
type Enforcement string

const (
	// EnforcementEnforce applies generated objects and restores them when they drift.
	EnforcementEnforce Enforcement = "Enforce"
	// EnforcementAudit computes, compares and reports, and never writes to the cluster.
	EnforcementAudit Enforcement = "Audit"
)

// MTLSMode is the mutual TLS mode for inbound traffic.
// +kubebuilder:validation:Enum=Strict;Permissive;Disable
type MTLSMode string

const (
	// MTLSStrict accepts only mutual TLS traffic.
	MTLSStrict MTLSMode = "Strict"
	// MTLSPermissive accepts both mutual TLS and plaintext traffic.
	MTLSPermissive MTLSMode = "Permissive"
	// MTLSDisable turns mutual TLS off.
	MTLSDisable MTLSMode = "Disable"
)

// RuleAction is what an authorization rule does to the requests it matches.
// +kubebuilder:validation:Enum=Allow;Deny
type RuleAction string

const (
	// ActionAllow admits matching requests.
	ActionAllow RuleAction = "Allow"
	// ActionDeny rejects matching requests, whatever else allows them.
	ActionDeny RuleAction = "Deny"
)

// RuleEnforcement says whether the mesh enforces authorization or only reports what it would deny.
// +kubebuilder:validation:Enum=Enforce;Shadow
type RuleEnforcement string

const (
	// RuleEnforcementEnforce means the mesh applies the decision.
	RuleEnforcementEnforce RuleEnforcement = "Enforce"
	// RuleEnforcementShadow means the mesh evaluates the rule and logs and counts what it would deny,
	// and denies nothing because of it (Istio's istio.io/dry-run annotation, Linkerd's audit
	// access policy). docs/adoption.md shows how to read what it would have denied.
	RuleEnforcementShadow RuleEnforcement = "Shadow"
)

// PolicyDirection is a NetworkPolicy traffic direction.
// +kubebuilder:validation:Enum=Ingress;Egress
type PolicyDirection string

const (
	// DirectionIngress is traffic into the namespace's pods.
	DirectionIngress PolicyDirection = "Ingress"
	// DirectionEgress is traffic out of the namespace's pods.
	DirectionEgress PolicyDirection = "Egress"
)

// ServiceAccountRef names a Kubernetes service account as "namespace/name".
// +kubebuilder:validation:MaxLength=317
// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$')",message="must be written namespace/name, for example frontend/web"
type ServiceAccountRef string

// MeshSecurityProfileSpec is what a platform team declares for one namespace.
//
// +kubebuilder:validation:XValidation:rule="!(self.mesh == 'Linkerd' && has(self.requestAuthentication))",message="requestAuthentication (JWT) is not supported when mesh is Linkerd: Linkerd has no request authentication"
// +kubebuilder:validation:XValidation:rule="!(self.mesh == 'Linkerd' && has(self.authorization) && has(self.authorization.rules) && self.authorization.rules.exists(r, has(r.from) && has(r.from.requestPrincipals) && size(r.from.requestPrincipals) > 0))",message="authorization.rules[].from.requestPrincipals is not supported when mesh is Linkerd: Linkerd has no JWT principals"
// +kubebuilder:validation:XValidation:rule="!(self.mesh == 'Linkerd' && has(self.authorization) && has(self.authorization.rules) && self.authorization.rules.exists(r, has(r.action) && r.action == 'Deny'))",message="authorization.rules[].action Deny is not supported when mesh is Linkerd: Linkerd policies only allow"
// Istio matches namespaces and service accounts (principals) only on mutual TLS connections: a
// plaintext request carries no identity, so a DENY rule by identity never matches it and the
// request is let through (ISTIO-SECURITY-2021-004, istio.io/latest/news/security/istio-security-2021-004;
// "Note: ... principals ... only available with mutual TLS enabled" in the AuthorizationPolicy
// reference). Overrides that weaken mTLS for some workloads are refused by render (it needs the
// selectors), this rule refuses the namespace-wide case at admission.
// +kubebuilder:validation:XValidation:rule="!(has(self.mtls) && has(self.mtls.mode) && self.mtls.mode != 'Strict' && has(self.authorization) && has(self.authorization.rules) && self.authorization.rules.exists(r, has(r.action) && r.action == 'Deny' && has(r.from) && ((has(r.from.namespaces) && size(r.from.namespaces) > 0) || (has(r.from.serviceAccounts) && size(r.from.serviceAccounts) > 0))))",fieldPath=".authorization.rules",message="a Deny rule by from.namespaces or from.serviceAccounts needs mtls.mode Strict: Istio only sees the identity of mutual TLS connections, so plaintext from those senders would not be denied (ISTIO-SECURITY-2021-004)"
type MeshSecurityProfileSpec struct {
	// mesh is the service mesh whose security objects are generated: Istio or Linkerd.
	// +kubebuilder:default=Istio
	// +optional
	Mesh Mesh `json:"mesh,omitempty"`

	// enforcement is Enforce (apply generated objects and restore them when they drift) or Audit
	// (compute, compare with the cluster and report in status, never write).
	// +kubebuilder:default=Enforce
	// +optional
	Enforcement Enforcement `json:"enforcement,omitempty"`

	// trustDomain is the mesh trust domain used to build workload identities, such as
	// cluster.local/ns/<namespace>/sa/<name> for Istio. Defaults to the manager's --trust-domain
	// (cluster.local).
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9]([-a-zA-Z0-9.]*[a-zA-Z0-9])?$`
	// +optional
	TrustDomain string `json:"trustDomain,omitempty"`

	// adoptExisting lets meshguard take over an existing object that has a generated object's
	// name but no controller owner. When false (the default) such an object is left untouched and
	// reported as a Conflict.
	// +optional
	AdoptExisting bool `json:"adoptExisting,omitempty"`

	// mtls sets mutual TLS for the namespace, with optional per-workload and per-port exceptions.
	// When omitted, the namespace gets Strict mTLS.
	// +kubebuilder:default={mode: Strict}
	// +optional
	MTLS *MTLSSpec `json:"mtls,omitempty"`

	// requestAuthentication validates JWTs on requests to the selected workloads (Istio only).
	// +optional
	RequestAuthentication *RequestAuthenticationSpec `json:"requestAuthentication,omitempty"`

	// authorization says which requests the namespace's workloads accept.
	// +optional
	Authorization *AuthorizationSpec `json:"authorization,omitempty"`

	// networkPolicy generates Kubernetes NetworkPolicies (layer 3/4), which also protect pods
	// outside the mesh.
	// +optional
	NetworkPolicy *NetworkPolicySpec `json:"networkPolicy,omitempty"`

	// certificates sets how mesh CA certificates are judged.
	// +kubebuilder:default={}
	// +optional
	Certificates *CertificatesSpec `json:"certificates,omitempty"`

	// expectations are requests that must be Allowed or Denied, checked on every reconcile against
	// the live policies of the namespace, meshguard's and anyone else's, through every layer
	// (NetworkPolicy, mTLS, JWT, authorization). The result is in status.expectations and the
	// ExpectationsMet condition; a failed expectation makes the profile not Ready.
	// +kubebuilder:validation:MaxItems=32
	// +listType=map
	// +listMapKey=name
	// +optional
	Expectations []Expectation `json:"expectations,omitempty"`
}

// MTLSSpec sets mutual TLS for the namespace.
// +kubebuilder:validation:XValidation:rule="!has(self.overrides) || self.overrides.all(o, !has(o.name)) || self.overrides.filter(o, has(o.name)).map(o, o.name).all(n, self.overrides.filter(o, has(o.name) && o.name == n).size() == 1)",message="override names must be unique"
type MTLSSpec struct {
	// mode is the namespace-wide mode: Strict (only mutual TLS), Permissive (mutual TLS and
	// plaintext) or Disable.
	// +kubebuilder:default=Strict
	// +optional
	Mode MTLSMode `json:"mode,omitempty"`

	// overrides are per-workload and per-port exceptions to mode.
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	Overrides []MTLSOverride `json:"overrides,omitempty"`
}

// MTLSOverride is an mTLS exception for the workloads its selector matches.
// +kubebuilder:validation:XValidation:rule="has(self.mode) || (has(self.ports) && size(self.ports) > 0)",message="an override needs mode or ports"
type MTLSOverride struct {
	// name identifies the override in generated object names. Defaults to a hash of the selector.
	// +kubebuilder:validation:MaxLength=40
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Name string `json:"name,omitempty"`

	// selector chooses the workloads (pods) by label.
	// +required
	Selector WorkloadSelector `json:"selector"`

	// mode is the workloads' own mode. When omitted they inherit the namespace's mode.
	// +optional
	Mode MTLSMode `json:"mode,omitempty"`

	// ports sets the mode of single ports of the selected workloads.
	// +kubebuilder:validation:MaxItems=32
	// +listType=map
	// +listMapKey=port
	// +optional
	Ports []PortMTLS `json:"ports,omitempty"`
}

// PortMTLS is the mTLS mode of one workload port.
type PortMTLS struct {
	// port is the workload (container) port number.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +required
	Port int32 `json:"port"`

	// mode is the port's mTLS mode.
	// +required
	Mode MTLSMode `json:"mode"`
}

// WorkloadSelector chooses pods in the profile's namespace by their labels. Every label must match.
// +kubebuilder:validation:XValidation:rule="self.matchLabels.all(k, size(k) <= 317 && size(self.matchLabels[k]) <= 63)",message="matchLabels keys must be at most 317 characters and values at most 63",fieldPath=".matchLabels"
type WorkloadSelector struct {
	// matchLabels are the labels a pod must carry, all of them.
	// +kubebuilder:validation:MinProperties=1
	// +kubebuilder:validation:MaxProperties=16
	// +required
	MatchLabels map[string]string `json:"matchLabels"`
}

// RequestAuthenticationSpec validates JSON Web Tokens (Istio RequestAuthentication).
type RequestAuthenticationSpec struct {
	// selector limits JWT validation to these workloads. When omitted it applies to every
	// workload in the namespace.
	// +optional
	Selector *WorkloadSelector `json:"selector,omitempty"`

	// requireToken also rejects requests that carry no token. Without it, a RequestAuthentication
	// only rejects invalid tokens and lets requests without a token through.
	// +optional
	RequireToken bool `json:"requireToken,omitempty"`

	// issuers are the token issuers accepted.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +listType=map
	// +listMapKey=issuer
	// +required
	Issuers []JWTIssuer `json:"issuers"`
}

// JWTIssuer is one accepted token issuer.
type JWTIssuer struct {
	// issuer is the token's iss claim; it must be an https URL.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() == 'https' && url(self).getHostname() != ''",message="issuer must be an https URL"
	// +required
	Issuer string `json:"issuer"`

	// jwksUri is the https URL of the issuer's public key set. When omitted the mesh discovers it
	// from the issuer's OpenID configuration.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() == 'https' && url(self).getHostname() != ''",message="jwksUri must be an https URL"
	// +optional
	JwksURI string `json:"jwksUri,omitempty"`

	// audiences are the accepted aud claims. When omitted, any audience is accepted.
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=256
	// +kubebuilder:validation:items:MinLength=1
	// +listType=set
	// +optional
	Audiences []string `json:"audiences,omitempty"`

	// fromHeaders are the headers the token is read from. Default: Authorization: Bearer <token>.
	// +kubebuilder:validation:MaxItems=8
	// +listType=atomic
	// +optional
	FromHeaders []JWTHeader `json:"fromHeaders,omitempty"`

	// fromParams are the query parameters the token is read from.
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=128
	// +kubebuilder:validation:items:MinLength=1
	// +listType=set
	// +optional
	FromParams []string `json:"fromParams,omitempty"`

	// forwardOriginalToken keeps the token on the request forwarded to the workload.
	// +optional
	ForwardOriginalToken bool `json:"forwardOriginalToken,omitempty"`
}

// JWTHeader is a header that carries a token.
type JWTHeader struct {
	// name is the header name, for example Authorization.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+.^_|~-]+$`
	// +required
	Name string `json:"name"`

	// prefix is stripped before the token, for example "Bearer ".
	// +kubebuilder:validation:MaxLength=64
	// +optional
	Prefix string `json:"prefix,omitempty"`
}

// AuthorizationSpec says which requests the namespace's workloads accept.
type AuthorizationSpec struct {
	// defaultDeny rejects every request that no Allow rule admits (an allow-nothing policy).
	// +optional
	DefaultDeny bool `json:"defaultDeny,omitempty"`

	// enforcement is Enforce (the default) or Shadow: the mesh evaluates the default deny and
	// every rule, logs and counts the requests they would deny, and denies none of them (Istio:
	// AuthorizationPolicies annotated istio.io/dry-run, honoured by sidecars and waypoints, not
	// reliably by ztunnel; Linkerd: Servers and the
	// namespace default with the audit access policy). Shadow here puts every rule in shadow,
	// whatever rules[].enforcement says. status.shadowRules lists what is in shadow.
	// +optional
	Enforcement RuleEnforcement `json:"enforcement,omitempty"`

	// rules admit or reject requests. Deny rules win over Allow rules.
	// +kubebuilder:validation:MaxItems=64
	// +listType=map
	// +listMapKey=name
	// +optional
	Rules []AuthorizationRule `json:"rules,omitempty"`
}

// AuthorizationRule admits or rejects the requests it matches. A request matches when it matches
// from and to: within from (and within to) every list that is set must match (AND), and within a
// list any entry may match (OR).
// +kubebuilder:validation:XValidation:rule="has(self.from) || has(self.to)",message="a rule needs from or to"
// +kubebuilder:validation:XValidation:rule="!has(self.from) || (has(self.action) && self.action == 'Deny') || ((!has(self.from.notIpBlocks) || size(self.from.notIpBlocks) == 0) && (!has(self.from.notRequestPrincipals) || size(self.from.notRequestPrincipals) == 0))",message="from.notIpBlocks and from.notRequestPrincipals are for Deny rules only: in an Allow rule they would admit everything they do not name"
// +kubebuilder:validation:XValidation:rule="!has(self.enforcement) || self.enforcement != 'Shadow' || (has(self.action) && self.action == 'Deny')",fieldPath=".enforcement",message="enforcement Shadow is for Deny rules: an Allow rule in shadow allows nothing, so the requests it is meant to admit would stay denied; to try Allow rules, set authorization.enforcement: Shadow"
type AuthorizationRule struct {
	// name identifies the rule; it is part of the generated object's name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=40
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +required
	Name string `json:"name"`

	// action is Allow or Deny.
	// +kubebuilder:default=Allow
	// +optional
	Action RuleAction `json:"action,omitempty"`

	// selector limits the rule to these workloads. When omitted it applies to every workload in
	// the namespace.
	// +optional
	Selector *WorkloadSelector `json:"selector,omitempty"`

	// from is who sends the request.
	// +optional
	From *RuleSource `json:"from,omitempty"`

	// to is what the request asks for.
	// +optional
	To *RuleTarget `json:"to,omitempty"`

	// enforcement is Enforce (the default) or Shadow, for Deny rules: the mesh logs and counts
	// the requests the rule would deny and lets them through (Istio's istio.io/dry-run
	// annotation; sidecars and waypoints, not reliably ztunnel). Linkerd has no Deny rules; use
	// authorization.enforcement.
	// +optional
	Enforcement RuleEnforcement `json:"enforcement,omitempty"`
}

// RuleSource matches the sender of a request. Every list that is set must match.
// An empty list is the same as a list left out; at least one list must have entries.
// +kubebuilder:validation:XValidation:rule="(has(self.serviceAccounts) && size(self.serviceAccounts) > 0) || (has(self.namespaces) && size(self.namespaces) > 0) || (has(self.requestPrincipals) && size(self.requestPrincipals) > 0) || (has(self.ipBlocks) && size(self.ipBlocks) > 0) || (has(self.notRequestPrincipals) && size(self.notRequestPrincipals) > 0) || (has(self.notIpBlocks) && size(self.notIpBlocks) > 0)",message="from needs at least one of serviceAccounts, namespaces, requestPrincipals, ipBlocks, notRequestPrincipals or notIpBlocks"
type RuleSource struct {
	// serviceAccounts are the senders' identities, written namespace/name. They become mesh
	// identities, for example cluster.local/ns/frontend/sa/web.
	// +kubebuilder:validation:MaxItems=64
	// +listType=set
	// +optional
	ServiceAccounts []ServiceAccountRef `json:"serviceAccounts,omitempty"`

	// namespaces are the senders' namespaces.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +listType=set
	// +optional
	Namespaces []string `json:"namespaces,omitempty"`

	// requestPrincipals are JWT principals written issuer/subject ("*" for any valid token).
	// Istio only.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=512
	// +listType=set
	// +optional
	RequestPrincipals []string `json:"requestPrincipals,omitempty"`

	// ipBlocks are the senders' source addresses in CIDR notation, for example 10.0.0.0/8.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=64
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self)",message="must be a CIDR such as 10.0.0.0/8"
	// +listType=set
	// +optional
	IPBlocks []string `json:"ipBlocks,omitempty"`

	// notRequestPrincipals: the rule matches requests whose JWT principal is none of these
	// (issuer/subject, issuer/* for any token of an issuer); a request without a token matches.
	// Deny rules only, Istio only (AuthorizationPolicy Source.notRequestPrincipals). A floor's
	// requireToken is generated as such a Deny on the floor's own issuers.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=512
	// +listType=set
	// +optional
	NotRequestPrincipals []string `json:"notRequestPrincipals,omitempty"`

	// notIpBlocks: the rule matches senders whose address is in none of these CIDRs. Deny rules
	// only, Istio only (AuthorizationPolicy Source.notIpBlocks). A floor's ceilings are
	// generated as Deny rules with ipBlocks and notIpBlocks.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=64
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self)",message="must be a CIDR such as 10.0.0.0/8"
	// +listType=set
	// +optional
	NotIPBlocks []string `json:"notIpBlocks,omitempty"`
}

// RuleTarget matches what a request asks for. Every list that is set must match.
// An empty list is the same as a list left out; at least one list must have entries.
// +kubebuilder:validation:XValidation:rule="(has(self.methods) && size(self.methods) > 0) || (has(self.paths) && size(self.paths) > 0) || (has(self.ports) && size(self.ports) > 0)",message="to needs at least one of methods, paths or ports"
type RuleTarget struct {
	// methods are HTTP methods, for example GET.
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=32
	// +kubebuilder:validation:items:Pattern=`^[A-Z]+$`
	// +listType=set
	// +optional
	Methods []string `json:"methods,omitempty"`

	// paths are HTTP paths; a trailing or leading * matches a prefix or suffix, for example /api/*,
	// and * alone matches every path. A * anywhere else is refused: Istio reads it as a literal
	// character (AuthorizationPolicy reference, "Operation": "exact match, prefix match, suffix
	// match and presence match"), so /users/*/delete would match no real request.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=1024
	// +kubebuilder:validation:items:Pattern=`^(/|\*)`
	// +kubebuilder:validation:items:XValidation:rule="self == '*' || ((size(self) <= 2 || !self.substring(1, size(self) - 1).contains('*')) && !(size(self) > 1 && self.startsWith('*') && self.endsWith('*')))",message="* may only be the whole path, its first character (suffix match) or its last (prefix match), for example /api/* or *.json"
	// +listType=set
	// +optional
	Paths []string `json:"paths,omitempty"`

	// ports are the workload ports.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:Minimum=1
	// +kubebuilder:validation:items:Maximum=65535
	// +listType=set
	// +optional
	Ports []int32 `json:"ports,omitempty"`
}

// NetworkPolicySpec generates Kubernetes NetworkPolicies.
type NetworkPolicySpec struct {
	// defaultDeny denies all traffic in these directions unless a rule allows it.
	// +kubebuilder:validation:MaxItems=2
	// +listType=set
	// +optional
	DefaultDeny []PolicyDirection `json:"defaultDeny,omitempty"`

	// allowDNS lets every pod reach the cluster DNS (kube-dns in kube-system) on UDP and TCP 53.
	// +optional
	AllowDNS bool `json:"allowDNS,omitempty"`

	// allowMeshControlPlane lets every pod reach the mesh control plane: istiod's xDS and CA port
	// (15012) for Istio, the destination, identity and policy controllers for Linkerd.
	// +optional
	AllowMeshControlPlane bool `json:"allowMeshControlPlane,omitempty"`

	// ingress rules allow traffic into selected pods.
	// +kubebuilder:validation:MaxItems=64
	// +listType=map
	// +listMapKey=name
	// +optional
	Ingress []IngressRule `json:"ingress,omitempty"`

	// egress rules allow traffic out of selected pods.
	// +kubebuilder:validation:MaxItems=64
	// +listType=map
	// +listMapKey=name
	// +optional
	Egress []EgressRule `json:"egress,omitempty"`
}

// IngressRule allows traffic from peers into the selected pods.
type IngressRule struct {
	// name identifies the rule; it is part of the generated NetworkPolicy's name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=40
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +required
	Name string `json:"name"`

	// selector chooses the receiving pods in the profile's namespace. When omitted: every pod.
	// +optional
	Selector *LabelSelector `json:"selector,omitempty"`

	// from are the allowed senders.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +required
	From []NetworkPeer `json:"from"`

	// ports are the allowed destination ports. When omitted: every port.
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	Ports []NetworkPort `json:"ports,omitempty"`
}

// EgressRule allows traffic from the selected pods to peers.
type EgressRule struct {
	// name identifies the rule; it is part of the generated NetworkPolicy's name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=40
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +required
	Name string `json:"name"`

	// selector chooses the sending pods in the profile's namespace. When omitted: every pod.
	// +optional
	Selector *LabelSelector `json:"selector,omitempty"`

	// to are the allowed destinations.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +required
	To []NetworkPeer `json:"to"`

	// ports are the allowed destination ports. When omitted: every port.
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	Ports []NetworkPort `json:"ports,omitempty"`
}

// NetworkPeer is a set of pods or addresses. namespaces and podSelector together mean the
// selected pods in those namespaces; podSelector alone means pods in the profile's namespace.
// +kubebuilder:validation:XValidation:rule="has(self.namespaces) || has(self.podSelector) || has(self.ipBlock)",message="a peer needs namespaces, podSelector or ipBlock"
// +kubebuilder:validation:XValidation:rule="!has(self.ipBlock) || (!has(self.namespaces) && !has(self.podSelector))",message="ipBlock cannot be combined with namespaces or podSelector"
type NetworkPeer struct {
	// namespaces are namespace names.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +listType=set
	// +optional
	Namespaces []string `json:"namespaces,omitempty"`

	// podSelector chooses pods by label.
	// +optional
	PodSelector *LabelSelector `json:"podSelector,omitempty"`

	// ipBlock is a range of addresses.
	// +optional
	IPBlock *IPBlock `json:"ipBlock,omitempty"`
}

// LabelSelector is a Kubernetes label selector (metav1.LabelSelector, the same fields and meaning)
// with bounded sizes, so that the API server bounds the work of validating a profile (every list
// of a CRD schema needs maxItems for CEL's cost estimation). {} selects every pod.
// +kubebuilder:validation:XValidation:rule="!has(self.matchLabels) || self.matchLabels.all(k, size(k) <= 317 && size(self.matchLabels[k]) <= 63)",message="matchLabels keys must be at most 317 characters and values at most 63",fieldPath=".matchLabels"
type LabelSelector struct {
	// matchLabels are labels a pod must carry, all of them.
	// +kubebuilder:validation:MaxProperties=16
	// +optional
	MatchLabels map[string]string `json:"matchLabels,omitempty"`

	// matchExpressions are label requirements a pod must meet, all of them.
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	MatchExpressions []LabelSelectorRequirement `json:"matchExpressions,omitempty"`
}

// LabelSelectorRequirement is one requirement of a LabelSelector (metav1.LabelSelectorRequirement).
// +kubebuilder:validation:XValidation:rule="self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0) : (!has(self.values) || size(self.values) == 0)",message="values must be set for In and NotIn and left out for Exists and DoesNotExist"
type LabelSelectorRequirement struct {
	// key is the label key.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=317
	// +required
	Key string `json:"key"`

	// operator is In, NotIn, Exists or DoesNotExist.
	// +kubebuilder:validation:Enum=In;NotIn;Exists;DoesNotExist
	// +required
	Operator metav1.LabelSelectorOperator `json:"operator"`

	// values are the label values for In and NotIn.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=63
	// +listType=atomic
	// +optional
	Values []string `json:"values,omitempty"`
}

// Meta returns the selector as a metav1.LabelSelector (nil for nil), for Kubernetes objects and
// label matching.
func (s *LabelSelector) Meta() *metav1.LabelSelector {
	if s == nil {
		return nil
	}
	out := &metav1.LabelSelector{}
	if s.MatchLabels != nil {
		out.MatchLabels = make(map[string]string, len(s.MatchLabels))
		for k, v := range s.MatchLabels {
			out.MatchLabels[k] = v
		}
	}
	for _, e := range s.MatchExpressions {
		out.MatchExpressions = append(out.MatchExpressions, metav1.LabelSelectorRequirement{
			Key: e.Key, Operator: e.Operator, Values: append([]string(nil), e.Values...),
		})
	}
	return out
}

// IPBlock is a CIDR with optional exceptions.
// +kubebuilder:validation:XValidation:rule="!has(self.except) || !isCIDR(self.cidr) || self.except.all(e, !isCIDR(e) || (cidr(self.cidr).containsCIDR(e) && cidr(e).prefixLength() > cidr(self.cidr).prefixLength()))",message="every except must lie strictly inside cidr (as for a Kubernetes NetworkPolicy ipBlock)"
type IPBlock struct {
	// cidr is the range, for example 10.0.0.0/8.
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="isCIDR(self)",message="cidr must be a CIDR such as 10.0.0.0/8"
	// +required
	CIDR string `json:"cidr"`

	// except are ranges inside cidr that are not included.
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=64
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self)",message="must be a CIDR such as 10.1.0.0/16"
	// +listType=atomic
	// +optional
	Except []string `json:"except,omitempty"`
}

// NetworkPort is a destination port, or a range of ports with endPort.
// +kubebuilder:validation:XValidation:rule="!has(self.endPort) || self.endPort >= self.port",message="endPort must not be below port"
type NetworkPort struct {
	// port is the port number.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +required
	Port int32 `json:"port"`

	// endPort, when set, makes the rule cover port..endPort.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	EndPort *int32 `json:"endPort,omitempty"`

	// protocol is TCP, UDP or SCTP.
	// +kubebuilder:validation:Enum=TCP;UDP;SCTP
	// +kubebuilder:default=TCP
	// +optional
	Protocol string `json:"protocol,omitempty"`
}

// CertificatesSpec sets how mesh CA certificates are judged.
type CertificatesSpec struct {
	// minValidity is how long every mesh CA certificate must remain valid; a certificate that
	// expires sooner is reported ExpiringSoon (linkerd check uses 60 days, 1440h).
	// +kubebuilder:default="1440h"
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Type=string
	// +optional
	MinValidity *metav1.Duration `json:"minValidity,omitempty"`
}

// ResourceState is the state of one generated object.
// +kubebuilder:validation:Enum=InSync;Drifted;Missing;Conflict;Pending
type ResourceState string

const (
	// ResourceInSync means the object is as meshguard applied it.
	ResourceInSync ResourceState = "InSync"
	// ResourceDrifted means someone changed a field meshguard owns.
	ResourceDrifted ResourceState = "Drifted"
	// ResourceMissing means the object does not exist.
	ResourceMissing ResourceState = "Missing"
	// ResourceConflict means an object with this name exists and is not owned by this profile.
	ResourceConflict ResourceState = "Conflict"
	// ResourcePending means the object cannot be applied yet (for example its CRD is not installed).
	ResourcePending ResourceState = "Pending"
)

// ResourceStatus is one generated object.
type ResourceStatus struct {
	// apiVersion of the object.
	APIVersion string `json:"apiVersion"`
	// kind of the object.
	Kind string `json:"kind"`
	// name of the object, in the profile's namespace.
	Name string `json:"name"`
	// state is InSync, Drifted, Missing, Conflict or Pending.
	State ResourceState `json:"state"`
	// message says what is wrong, naming drifted fields.
	// +optional
	Message string `json:"message,omitempty"`
	// lastCorrected is when meshguard last restored this object after drift.
	// +optional
	LastCorrected *metav1.Time `json:"lastCorrected,omitempty"`
	// lastCorrection names the fields meshguard restored at lastCorrected.
	// +optional
	LastCorrection string `json:"lastCorrection,omitempty"`
}

// CertificateRole is the role of a CA certificate in the mesh's trust chain.
// +kubebuilder:validation:Enum=Root;Intermediate;TrustAnchor;Issuer
type CertificateRole string

// Certificate roles: Istio has a root and, with plugged-in CAs, an intermediate; Linkerd has a
// trust anchor and an issuer.
const (
	RoleRoot         CertificateRole = "Root"
	RoleIntermediate CertificateRole = "Intermediate"
	RoleTrustAnchor  CertificateRole = "TrustAnchor"
	RoleIssuer       CertificateRole = "Issuer"
)

// CertificateStatus is one mesh CA certificate that was inspected. It holds public fields only.
type CertificateStatus struct {
	// source is the object the certificate was read from: Kind namespace/name[key].
	Source string `json:"source"`
	// role is Root, Intermediate, TrustAnchor or Issuer.
	Role CertificateRole `json:"role"`
	// subject is the certificate's subject.
	// +optional
	Subject string `json:"subject,omitempty"`
	// serialNumber is the certificate's serial number in hex.
	// +optional
	SerialNumber string `json:"serialNumber,omitempty"`
	// fingerprint is the SHA-256 fingerprint of the certificate.
	// +optional
	Fingerprint string `json:"fingerprint,omitempty"`
	// notBefore is the start of the validity period.
	// +optional
	NotBefore *metav1.Time `json:"notBefore,omitempty"`
	// notAfter is the end of the validity period.
	// +optional
	NotAfter *metav1.Time `json:"notAfter,omitempty"`
	// state is the result of the checks: a certificate reason such as Valid or ExpiringSoon.
	State string `json:"state"`
	// message explains the state.
	// +optional
	Message string `json:"message,omitempty"`
}

// ExternalPolicy is an object meshguard does not own that weakens the profile.
type ExternalPolicy struct {
	// apiVersion of the object.
	APIVersion string `json:"apiVersion"`
	// kind of the object.
	Kind string `json:"kind"`
	// name of the object: its plain name when it is in the profile's namespace, namespace/name
	// when it is elsewhere (an Istio policy of the mesh root namespace, which applies to every
	// namespace).
	Name string `json:"name"`
	// weakens says what it weakens.
	Weakens string `json:"weakens"`
}

// MeshSecurityProfileStatus is what meshguard observed.
type MeshSecurityProfileStatus struct {
	// observedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready (summary), PoliciesApplied, InSync, Effective, CertificatesHealthy,
	// ExpectationsMet (when spec.expectations is set), and the
	// kstatus pair Reconciling / Stalled.
	// +kubebuilder:validation:MaxItems=16
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// resources lists every generated object and its state: those not in sync first when there
	// are more than 128 (status.omitted.resources says how many are left out).
	// +kubebuilder:validation:MaxItems=128
	// +listType=atomic
	// +optional
	Resources []ResourceStatus `json:"resources,omitempty"`

	// certificates lists the mesh CA certificates inspected.
	// +listType=atomic
	// +optional
	Certificates []CertificateStatus `json:"certificates,omitempty"`

	// nearestCertificateExpiry is the earliest notAfter among the inspected certificates.
	// +optional
	NearestCertificateExpiry *metav1.Time `json:"nearestCertificateExpiry,omitempty"`

	// externalPolicies are objects meshguard does not own that weaken the profile: the first 32
	// (status.omitted.externalPolicies says how many more there are).
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	ExternalPolicies []ExternalPolicy `json:"externalPolicies,omitempty"`

	// expectations are the answers for spec.expectations, in the same order.
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	Expectations []ExpectationStatus `json:"expectations,omitempty"`

	// clusterProfiles are the ClusterMeshSecurityProfiles whose floor is merged into this profile.
	// +kubebuilder:validation:MaxItems=64
	// +listType=set
	// +optional
	ClusterProfiles []string `json:"clusterProfiles,omitempty"`

	// shadowRules are the authorization rules in shadow (evaluated and reported by the mesh, not
	// enforced), and default-deny when the default deny is.
	// +kubebuilder:validation:MaxItems=65
	// +listType=atomic
	// +optional
	ShadowRules []string `json:"shadowRules,omitempty"`

	// heldAtFloor are the fields this profile asks for below a cluster profile's floor: they are
	// not applied as written but held at the floor (condition Baseline, reason BelowBaseline).
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	// +optional
	HeldAtFloor []FloorHold `json:"heldAtFloor,omitempty"`

	// openedUnderFloor are this profile's rules that allow traffic a cluster profile's default
	// deny closes and no rule of that floor allows. They are applied: a floor's default deny is a
	// default each namespace may open (only its ceilings and Deny rules cannot be opened). Listed
	// so that the platform team sees what each namespace opens.
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	// +optional
	OpenedUnderFloor []FloorOpening `json:"openedUnderFloor,omitempty"`

	// dataPlane counts the namespace's pods per Istio data plane (sidecar, ambient, waypoint,
	// unmeshed). Istio profiles only.
	// +optional
	DataPlane *DataPlaneStatus `json:"dataPlane,omitempty"`

	// enforcement says, for each part of the profile and each data plane its workloads use, which
	// proxy enforces it, or None with the reason. A part that nothing can enforce where it must
	// makes Ready False (reason Unenforceable). Istio profiles only.
	// +kubebuilder:validation:MaxItems=256
	// +listType=atomic
	// +optional
	Enforcement []RuleEnforcementStatus `json:"enforcement,omitempty"`

	// omitted counts the rows left out of the lists above, which are bounded so that the status
	// stays small however many objects a namespace holds. Absent when nothing is left out.
	// +optional
	Omitted *OmittedRows `json:"omitted,omitempty"`

	// summary is the profile's state in a few scalar fields, one JSONPath each, for fleet tools
	// that collect it from many clusters (Open Cluster Management feedbackRules, Karmada status
	// aggregation, Argo CD): .status.summary.ready, .status.summary.effective,
	// .status.summary.driftCount, .status.summary.earliestCertificateExpiry,
	// .status.summary.dataPlane. It repeats what the conditions and lists above say.
	// +optional
	Summary *FleetSummary `json:"summary,omitempty"`
}

// FleetSummary is the profile's state in scalar fields (docs/multi-cluster.md).
type FleetSummary struct {
	// ready is the status of the Ready condition: True, False or Unknown.
	// +kubebuilder:validation:Enum=True;False;Unknown
	Ready metav1.ConditionStatus `json:"ready"`
	// reason is the reason of the Ready condition.
	// +kubebuilder:validation:MaxLength=128
	// +optional
	Reason string `json:"reason,omitempty"`
	// effective is the status of the Effective condition (True: nothing outside meshguard weakens
	// the profile); absent when it was not checked.
	// +kubebuilder:validation:Enum=True;False;Unknown
	// +optional
	Effective metav1.ConditionStatus `json:"effective,omitempty"`
	// driftCount is how many generated objects are Drifted or Missing (Audit mode leaves them so;
	// Enforce mode restores them at once, so a non-zero count there is a transient or a fight).
	// +optional
	DriftCount int32 `json:"driftCount"`
	// earliestCertificateExpiry is the earliest notAfter among the mesh CA certificates inspected.
	// +optional
	EarliestCertificateExpiry *metav1.Time `json:"earliestCertificateExpiry,omitempty"`
	// dataPlane is the data plane of the namespace's pods: Sidecar, Ambient, Waypoint or Unmeshed
	// when all of them use one (Istio), Mixed when they use several (status.dataPlane counts
	// them), NoPods, or Linkerd.
	// +kubebuilder:validation:Enum=Sidecar;Ambient;Waypoint;Unmeshed;Mixed;NoPods;Linkerd
	// +optional
	DataPlane string `json:"dataPlane,omitempty"`
}

// OmittedRows counts, per status list, the rows left out of it.
type OmittedRows struct {
	// resources left out of status.resources (all of them in sync unless 128 are not).
	// +optional
	Resources int32 `json:"resources,omitempty"`
	// externalPolicies left out of status.externalPolicies.
	// +optional
	ExternalPolicies int32 `json:"externalPolicies,omitempty"`
	// expectations left out of status.expectations.
	// +optional
	Expectations int32 `json:"expectations,omitempty"`
	// heldAtFloor left out of status.heldAtFloor.
	// +optional
	HeldAtFloor int32 `json:"heldAtFloor,omitempty"`
}

// MeshSecurityProfile declares the mesh security of one namespace: mTLS, JWT authentication,
// authorization and network policy. meshguard generates and owns the mesh's objects for it.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=msp,categories=meshguard
// +kubebuilder:printcolumn:name="Mesh",type=string,JSONPath=`.spec.mesh`
// +kubebuilder:printcolumn:name="mTLS",type=string,JSONPath=`.spec.mtls.mode`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="In-Sync",type=string,JSONPath=`.status.conditions[?(@.type=="InSync")].status`
// +kubebuilder:printcolumn:name="Certs",type=string,JSONPath=`.status.conditions[?(@.type=="CertificatesHealthy")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Message",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="Expires",type=string,priority=1,JSONPath=`.status.nearestCertificateExpiry`
// +kubebuilder:printcolumn:name="Expectations",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="ExpectationsMet")].reason`
// +kubebuilder:printcolumn:name="Effective",type=string,priority=1,JSONPath=`.status.summary.effective`
// +kubebuilder:printcolumn:name="Drift",type=integer,priority=1,JSONPath=`.status.summary.driftCount`
// +kubebuilder:printcolumn:name="Data-Plane",type=string,priority=1,JSONPath=`.status.summary.dataPlane`
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 63",message="metadata.name must be at most 63 characters (it is used as a label value)"
type MeshSecurityProfile struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the declared security of the namespace.
	// +kubebuilder:default={}
	// +optional
	Spec MeshSecurityProfileSpec `json:"spec,omitempty"`

	// status is what meshguard observed.
	// +optional
	Status MeshSecurityProfileStatus `json:"status,omitempty"`
}

// MeshSecurityProfileList is a list of MeshSecurityProfiles.
//
// +kubebuilder:object:root=true
type MeshSecurityProfileList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MeshSecurityProfile `json:"items"`
}

func init() {
	SchemeBuilder.Register(addKnownTypes)
}
