package meshsem

import (
	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// Linkerd's inbound policies (https://linkerd.io/2/reference/authorization-policy/, "Default
// policies"; linkerd2 policy-controller core DefaultPolicy). A pod port that no Server selects
// follows the default inbound policy, taken from the pod's or its namespace's
// config.linkerd.io/default-inbound-policy annotation; a Server's accessPolicy is one of the same
// policies (default deny) and applies to what no AuthorizationPolicy of the Server authorizes.
const (
	// LinkerdDefaultInboundPolicyAnnotation is the namespace (or pod) annotation that sets the
	// inbound policy of ports no Server selects. Linkerd reads it when a pod's proxy starts: pods
	// that already run keep their old default until they restart.
	LinkerdDefaultInboundPolicyAnnotation = "config.linkerd.io/default-inbound-policy"

	LinkerdAllUnauthenticated     = "all-unauthenticated"
	LinkerdAllAuthenticated       = "all-authenticated"
	LinkerdClusterUnauthenticated = "cluster-unauthenticated"
	LinkerdClusterAuthenticated   = "cluster-authenticated"
	LinkerdDeny                   = "deny"
	// LinkerdAudit admits everything, and the proxy logs and counts what deny would refuse.
	LinkerdAudit = "audit"

	// LinkerdServerDefaultAccess is a Server's accessPolicy when it sets none (Server v1beta3
	// CRD, accessPolicy default "deny").
	LinkerdServerDefaultAccess = LinkerdDeny
)

// LinkerdAccess is what a Linkerd default or access policy admits.
type LinkerdAccess struct {
	// Known: the policy is one of Linkerd's; an unknown one is read as admitting everything, so
	// that it is never taken as stricter than it may be.
	Known bool
	// None: it admits nothing (deny).
	None bool
	// Authenticated: it admits only meshed (mutual TLS) clients.
	Authenticated bool
	// ClusterOnly: it admits only clients from the cluster networks.
	ClusterOnly bool
	// Audit: it admits everything and flags what deny would refuse.
	Audit bool
}

// ReadLinkerdPolicy reads a policy name: deny admits nothing; all-authenticated admits mTLS
// clients from anywhere, cluster-authenticated only from the cluster networks;
// all-unauthenticated admits everything, cluster-unauthenticated everything from the cluster
// networks; audit admits everything.
func ReadLinkerdPolicy(policy string) LinkerdAccess {
	switch policy {
	case LinkerdDeny:
		return LinkerdAccess{Known: true, None: true}
	case LinkerdAllAuthenticated:
		return LinkerdAccess{Known: true, Authenticated: true}
	case LinkerdClusterAuthenticated:
		return LinkerdAccess{Known: true, Authenticated: true, ClusterOnly: true}
	case LinkerdClusterUnauthenticated:
		return LinkerdAccess{Known: true, ClusterOnly: true}
	case LinkerdAllUnauthenticated:
		return LinkerdAccess{Known: true}
	case LinkerdAudit:
		return LinkerdAccess{Known: true, Audit: true}
	}
	return LinkerdAccess{}
}

// LinkerdAdmitsMore says whether policy got admits some connection that policy want refuses.
func LinkerdAdmitsMore(got, want string) bool {
	g, w := ReadLinkerdPolicy(got), ReadLinkerdPolicy(want)
	switch {
	case g.None:
		return false
	case w.None:
		return true
	}
	return (w.Authenticated && !g.Authenticated) || (w.ClusterOnly && !g.ClusterOnly)
}

// LinkerdPolicyForMode is the Linkerd policy that admits what an mTLS mode admits; ok is false
// for a mode Linkerd cannot express.
//
// Disable maps to all-unauthenticated, as Permissive does. Linkerd cannot switch mTLS off: meshed
// clients always talk mTLS to meshed servers. What Disable changes for a server is that plaintext
// clients are admitted, and all-unauthenticated admits them; meshed traffic staying encrypted is
// stronger than the profile asks, never weaker, so Disable is rendered rather than refused.
// (Clients that cannot speak through the proxy at all need Linkerd's skip-inbound-ports, which is
// a workload annotation meshguard does not manage.)
func LinkerdPolicyForMode(m v1alpha1.MTLSMode) (string, bool) {
	switch m {
	case "", v1alpha1.MTLSStrict:
		return LinkerdAllAuthenticated, true
	case v1alpha1.MTLSPermissive, v1alpha1.MTLSDisable:
		return LinkerdAllUnauthenticated, true
	}
	return "", false
}

// LinkerdDenyPolicy is what a Linkerd Server or the namespace default admits where the profile
// denies: deny; in shadow, the policy that admits what the port's mTLS mode admits and lets the
// proxy count what it serves by a default (audit where that is all-unauthenticated).
func LinkerdDenyPolicy(mode v1alpha1.MTLSMode, shadow bool) string {
	if !shadow {
		return LinkerdDeny
	}
	p, _ := LinkerdPolicyForMode(mode)
	if p == LinkerdAllUnauthenticated {
		return LinkerdAudit
	}
	return p
}

// LinkerdNamespacePolicy is the default inbound policy a profile sets on its namespace: the
// policy of mtls.mode, replaced by deny (stricter than any mode) under authorization.defaultDeny,
// or by its shadow policy while the whole authorization is in Shadow (shadow). ok is false for a
// mode Linkerd cannot express.
func LinkerdNamespacePolicy(spec *v1alpha1.MeshSecurityProfileSpec, shadow bool) (string, bool) {
	mode := NamespaceMode(spec.MTLS)
	policy, ok := LinkerdPolicyForMode(mode)
	if !ok {
		return "", false
	}
	if az := spec.Authorization; az != nil && az.DefaultDeny {
		policy = LinkerdDenyPolicy(mode, shadow)
	}
	return policy, true
}
