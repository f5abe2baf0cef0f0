package effective

import (
	"fmt"
	"sort"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/clusterfacts"
	"github.com/meshguard/meshguard/internal/dataplane"
	"github.com/meshguard/meshguard/internal/meshapi"
	"github.com/meshguard/meshguard/internal/meshsem"
)

// Groups and kinds of the objects Find judges.
const (
	groupIstioSecurity = meshapi.GroupIstioSecurity
	groupNetworking    = meshapi.GroupNetworking

	kindPeerAuthentication  = "PeerAuthentication"
	kindAuthorizationPolicy = "AuthorizationPolicy"
	kindNetworkPolicy       = "NetworkPolicy"
)

// Options are the cluster facts Find depends on that are not in the profile: the facts the manager,
// render and explain share (Find reads Istio's root namespace, RootNamespace, whose
// AuthorizationPolicies apply to every namespace and whose namespace-wide PeerAuthentication is the
// mesh-wide one), and the labels of the profile's namespace.
type Options struct {
	clusterfacts.Facts
	// NamespaceLabels are the labels of the profile's namespace, for the namespace selectors of
	// cluster-scoped policies (AdminNetworkPolicy, ClusterNetworkPolicy). nil: not known, and
	// only a selector on the namespace's name can rule the namespace out.
	NamespaceLabels map[string]string
	// DataPlane are the data plane facts of the profile's namespace (internal/dataplane): which
	// pods a waypoint serves, so that a foreign policy bound with targetRefs is judged against the
	// pods behind it (waypoint.go). nil: not known.
	DataPlane *dataplane.Facts
}

// Desired is what render decided for the profile (render.Result): the objects it renders to and
// the annotations it sets on the profile's Namespace (Linkerd's default inbound policy). Find
// judges foreign objects against these, never deciding again what the profile means.
type Desired struct {
	Objects              []*unstructured.Unstructured
	NamespaceAnnotations map[string]string
}

// Find returns the objects among foreign that weaken the profile, with what each weakens, sorted
// by kind, name and what they weaken. An object may appear once per part of the profile it
// weakens (a NetworkPolicy that opens both ingress and egress appears twice).
//
// desired is what the profile renders to (render.Render's Result, rendered with the manager's
// options): Find reads from its objects which NetworkPolicy, AuthorizationPolicy and Linkerd
// Server rules the profile itself declares, including the allowDNS and allowMeshControlPlane
// rules, so that a foreign rule the profile also declares is not reported, and from its namespace
// annotations the Linkerd default inbound policy foreign Servers are judged against. With no
// desired objects the profile declares no rules, and every foreign rule counts as opening
// traffic.
//
// foreign are live PeerAuthentications, RequestAuthentications, AuthorizationPolicies
// (security.istio.io), Linkerd's Servers, AuthorizationPolicies, HTTPRoutes,
// MeshTLSAuthentications and NetworkAuthentications (policy.linkerd.io) and NetworkPolicies
// (networking.k8s.io) of the profile's namespace and of the Istio root namespace
// that the profile does not control; objects of other kinds or namespaces are ignored. Objects
// the profile does control are skipped as well: those with a controller ownerReference to the
// profile's UID, and those of the profile's namespace labelled as generated for it. An object
// outside the profile's namespace is named namespace/name.
//
// Find never modifies its arguments.
func Find(p *v1alpha1.MeshSecurityProfile, desired Desired, foreign []*unstructured.Unstructured, opts Options) []v1alpha1.ExternalPolicy {
	if p == nil {
		return nil
	}
	f := newFinder(p, desired, opts)
	f.meshMode = meshWideMode(foreign, f.root)
	// Linkerd authentications are judged through the AuthorizationPolicies that require them.
	authns := map[string]*unstructured.Unstructured{}
	for _, u := range foreign {
		if u != nil && !f.ownedByProfile(u) && f.namespaceOf(u) == p.Namespace && (u.GetKind() == kindMeshTLSAuthn || u.GetKind() == kindNetworkAuthn) {
			authns[u.GetKind()+"/"+u.GetName()] = u
		}
	}
	routeParents := linkerdRouteParents(foreign, p.Namespace)
	var out []v1alpha1.ExternalPolicy
	for _, u := range foreign {
		if u == nil || f.ownedByProfile(u) {
			continue
		}
		gv, err := schema.ParseGroupVersion(u.GetAPIVersion())
		if err != nil {
			continue
		}
		ns := f.namespaceOf(u)
		if u.GetNamespace() != "" && ns != p.Namespace && ns != f.root {
			continue
		}
		switch gvk := gv.WithKind(u.GetKind()); {
		case gvk.Group == groupIstioSecurity && gvk.Kind == kindPeerAuthentication && f.istio:
			out = append(out, f.peerAuthentication(u)...)
		case gvk.Group == groupIstioSecurity && gvk.Kind == kindAuthorizationPolicy && f.istio:
			out = append(out, f.authorizationPolicy(u)...)
		case gvk.Group == groupIstioSecurity && gvk.Kind == kindRequestAuthentication && f.istio:
			out = append(out, f.requestAuthentication(u)...)
		case gvk.Group == groupLinkerdPolicy && gvk.Kind == kindServer && !f.istio && ns == p.Namespace:
			// One Server per pod port: it competes with the profile's Servers (linkerd.go), and
			// elsewhere replaces the namespace default (linkerdpolicy.go).
			out = append(out, f.linkerdServer(u)...)
			out = append(out, f.linkerdForeignServer(u)...)
		case gvk.Group == groupLinkerd && gvk.Kind == kindAuthorizationPolicy && f.linkerd != nil && ns == p.Namespace:
			out = append(out, f.linkerdAuthorizationPolicy(u, authns, routeParents)...)
		case gvk.Group == groupLinkerd && gvk.Kind == kindServerAuthorization && f.linkerd != nil && ns == p.Namespace:
			out = append(out, f.serverAuthorization(u)...)
		case gvk.Group == groupNetworkPolicyAPI && (gvk.Kind == kindAdminNetworkPolicy || gvk.Kind == kindClusterNetworkPolicy) && u.GetNamespace() == "":
			// Cluster-scoped: they select namespaces by label.
			out = append(out, f.adminNetworkPolicy(u)...)
		case gvk.Group == groupNetworking && gvk.Kind == kindNetworkPolicy && ns == p.Namespace:
			// A NetworkPolicy only selects pods of its own namespace.
			out = append(out, f.networkPolicy(u)...)
		}
	}
	return sortedUnique(out)
}

// finder holds what Find derives once from the profile.
type finder struct {
	p     *v1alpha1.MeshSecurityProfile
	root  string
	istio bool

	// nsMode is the profile's namespace-wide mTLS mode.
	nsMode mode
	// meshMode is the mesh-wide mode a namespace-wide PeerAuthentication without a mode falls
	// back to.
	meshMode mode
	// authz are the rules of the profile's rendered ALLOW AuthorizationPolicies, by ruleKey.
	authz map[string]bool
	// linkerd is what the profile's rendered Linkerd objects declare; nil for Istio.
	linkerd *linkerdIntent
	// lkServers are the pod ports the profile's rendered Linkerd Servers select.
	lkServers []lkServer
	// lkServerMeta are the names and labels of the profile's rendered Linkerd Servers.
	lkServerMeta []serverMeta
	// nsLabels are the labels of the profile's namespace; nil when not known.
	nsLabels map[string]string
	// ingress and egress are the rules of the profile's rendered NetworkPolicies.
	ingress, egress []netRule
	// dataPlane are the facts of the profile's namespace; nil when not known (waypoint.go).
	dataPlane *dataplane.Facts
}

func newFinder(p *v1alpha1.MeshSecurityProfile, d Desired, opts Options) *finder {
	desired := d.Objects
	f := &finder{
		p:        p,
		root:     opts.RootNamespace(),
		istio:    p.Spec.GetMesh() == v1alpha1.MeshIstio,
		nsLabels: opts.NamespaceLabels,

		dataPlane: opts.DataPlane,
	}
	f.nsMode = profileMode(meshsem.NamespaceMode(p.Spec.MTLS))
	if f.istio && p.Spec.Authorization != nil {
		f.authz = profileAuthorization(ofGroup(desired, groupIstioSecurity))
	}
	if !f.istio {
		linkerdObjs := ofGroup(desired, groupLinkerdPolicy)
		f.lkServers = linkerdServers(linkerdObjs)
		f.lkServerMeta = linkerdServerMeta(linkerdObjs)
		f.linkerd = newLinkerdIntent(p, linkerdObjs, d.NamespaceAnnotations)
	}
	if p.Spec.NetworkPolicy != nil {
		f.ingress, f.egress = profileNetworkRules(ofGroup(desired, groupNetworking))
	}
	return f
}

// ofGroup returns the objects of one API group: Istio and Linkerd both have an
// AuthorizationPolicy kind.
func ofGroup(objs []*unstructured.Unstructured, group string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, u := range objs {
		if u == nil {
			continue
		}
		if gv, err := schema.ParseGroupVersion(u.GetAPIVersion()); err == nil && gv.Group == group {
			out = append(out, u)
		}
	}
	return out
}

// ownedByProfile says whether the profile controls u, so that it is not foreign at all.
func (f *finder) ownedByProfile(u *unstructured.Unstructured) bool {
	if f.p.UID != "" {
		for _, ref := range u.GetOwnerReferences() {
			if ref.Controller != nil && *ref.Controller && ref.UID == f.p.UID {
				return true
			}
		}
	}
	// A profile of the same name in another namespace labels its objects the same way.
	l := u.GetLabels()
	return f.namespaceOf(u) == f.p.Namespace &&
		l[v1alpha1.LabelManagedBy] == v1alpha1.ManagedByValue && l[v1alpha1.LabelProfile] == f.p.Name
}

// namespaceOf is the object's namespace; an object without one is taken to be in the profile's.
func (f *finder) namespaceOf(u *unstructured.Unstructured) string {
	if ns := u.GetNamespace(); ns != "" {
		return ns
	}
	return f.p.Namespace
}

// maxWeakens bounds what a row says, so that a policy with long lists cannot bloat the status.
const maxWeakens = 512

// report makes the row for u.
func (f *finder) report(u *unstructured.Unstructured, weakens string) v1alpha1.ExternalPolicy {
	if len(weakens) > maxWeakens {
		cut := maxWeakens - len("...")
		for cut > 0 && !utf8.RuneStart(weakens[cut]) {
			cut--
		}
		weakens = weakens[:cut] + "..."
	}
	name := u.GetName()
	if ns := f.namespaceOf(u); ns != f.p.Namespace {
		name = ns + "/" + name
	}
	return v1alpha1.ExternalPolicy{APIVersion: u.GetAPIVersion(), Kind: u.GetKind(), Name: name, Weakens: weakens}
}

// notUnderstood is the row for a foreign object whose spec meshguard cannot fully read (a field
// of a newer mesh version, a wrong type): it may weaken the profile, so it is reported, never
// ignored (fail closed).
func (f *finder) notUnderstood(u *unstructured.Unstructured, field string, err error) v1alpha1.ExternalPolicy {
	return f.report(u, fmt.Sprintf("%s: may weaken the profile: %v", field, err))
}

func sortedUnique(in []v1alpha1.ExternalPolicy) []v1alpha1.ExternalPolicy {
	sort.Slice(in, func(i, j int) bool {
		a, b := in[i], in[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.APIVersion != b.APIVersion {
			return a.APIVersion < b.APIVersion
		}
		return a.Weakens < b.Weakens
	})
	var out []v1alpha1.ExternalPolicy
	for _, e := range in {
		if len(out) > 0 && out[len(out)-1] == e {
			continue
		}
		out = append(out, e)
	}
	return out
}
