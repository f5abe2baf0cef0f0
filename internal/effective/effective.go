package effective

import (
	"encoding/json"
	"sort"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/render"
)

// DefaultIstioRootNamespace is Istio's default root namespace (meshConfig.rootNamespace).
const DefaultIstioRootNamespace = "istio-system"

// Groups and kinds of the objects Find judges.
const (
	groupIstioSecurity = "security.istio.io"
	groupNetworking    = "networking.k8s.io"

	kindPeerAuthentication  = "PeerAuthentication"
	kindAuthorizationPolicy = "AuthorizationPolicy"
	kindNetworkPolicy       = "NetworkPolicy"
)

// Options are the cluster facts Find depends on that are not in the profile.
type Options struct {
	// IstioRootNamespace is Istio's root namespace, whose AuthorizationPolicies apply to every
	// namespace and whose namespace-wide PeerAuthentication is the mesh-wide one. Default
	// istio-system.
	IstioRootNamespace string

	// Render are the options the profile's own objects are rendered with. Find renders the
	// profile to know which NetworkPolicy and AuthorizationPolicy rules the profile itself
	// declares, including the allowDNS and allowMeshControlPlane rules, so they must be the
	// manager's. Empty fields take render's defaults.
	Render render.Options
}

// Find returns the objects among foreign that weaken the profile, with what each weakens, sorted
// by kind, name and what they weaken. An object may appear once per part of the profile it
// weakens (a NetworkPolicy that opens both ingress and egress appears twice).
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
func Find(p *v1alpha1.MeshSecurityProfile, foreign []*unstructured.Unstructured, opts Options) []v1alpha1.ExternalPolicy {
	if p == nil {
		return nil
	}
	f := newFinder(p, opts)
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
		if ns != p.Namespace && ns != f.root {
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
	// ingress and egress are the rules of the profile's rendered NetworkPolicies.
	ingress, egress []netRule
}

func newFinder(p *v1alpha1.MeshSecurityProfile, opts Options) *finder {
	f := &finder{
		p:     p,
		root:  opts.IstioRootNamespace,
		istio: p.Spec.Mesh == "" || p.Spec.Mesh == v1alpha1.MeshIstio,
	}
	if f.root == "" {
		f.root = DefaultIstioRootNamespace
	}
	f.nsMode = modeStrict
	if p.Spec.MTLS != nil {
		f.nsMode = profileMode(p.Spec.MTLS.Mode)
	}
	if f.istio && p.Spec.Authorization != nil {
		f.authz = profileAuthorization(renderPart(p, opts.Render, func(s *v1alpha1.MeshSecurityProfileSpec) {
			s.Authorization = p.Spec.Authorization
		}))
	}
	if !f.istio {
		f.lkServers = linkerdServers(p, opts.Render)
		f.linkerd = newLinkerdIntent(p, renderPart(p, opts.Render, func(s *v1alpha1.MeshSecurityProfileSpec) {
			s.MTLS, s.Authorization = p.Spec.MTLS, p.Spec.Authorization
		}))
	}
	if p.Spec.NetworkPolicy != nil {
		f.ingress, f.egress = profileNetworkRules(renderPart(p, opts.Render, func(s *v1alpha1.MeshSecurityProfileSpec) {
			s.NetworkPolicy = p.Spec.NetworkPolicy
		}))
	}
	return f
}

// renderPart renders one part of the profile alone, so that an error or an unsupported field
// elsewhere in the spec does not hide the rules of this part. When the part cannot be rendered
// the profile is reported invalid by others; here it then declares no rules, and every foreign
// rule counts as opening traffic.
func renderPart(p *v1alpha1.MeshSecurityProfile, opts render.Options, set func(*v1alpha1.MeshSecurityProfileSpec)) []*unstructured.Unstructured {
	part := &v1alpha1.MeshSecurityProfile{}
	part.Name, part.Namespace, part.UID = p.Name, p.Namespace, p.UID
	if part.Name == "" {
		part.Name = "profile"
	}
	if part.Namespace == "" {
		part.Namespace = "default"
	}
	part.Spec.Mesh = p.Spec.Mesh
	part.Spec.TrustDomain = p.Spec.TrustDomain
	set(&part.Spec)
	res, err := render.Render(part, opts)
	if err != nil || res == nil {
		return nil
	}
	return res.Objects
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

// decodeSpec decodes the object's spec into out. A JSON round trip reads numbers the same
// whether the object came from the API server (int64) or from YAML (float64).
func decodeSpec(u *unstructured.Unstructured, out any) bool {
	spec, ok := u.Object["spec"]
	if !ok {
		return true
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return false
	}
	return json.Unmarshal(b, out) == nil
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
