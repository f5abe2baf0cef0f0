package effective

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/meshapi"
	"github.com/meshguard/meshguard/internal/meshsem"
)

// Linkerd's policy model (linkerd.io/2/reference/authorization-policy): a pod port is governed
// by one Server (when several select it, the oldest; Linkerd's webhook only refuses identical
// selectors), whose accessPolicy (default deny) applies to traffic no AuthorizationPolicy
// targeting it (or one of its HTTPRoutes, or the Namespace) authorizes; a port without a Server
// uses the pod's default inbound policy. AuthorizationPolicies only ever authorize, through the
// MeshTLSAuthentications and NetworkAuthentications they require. So a foreign object weakens a
// profile when it authorizes on a port the profile governs, or replaces one of the profile's
// Servers, or the namespace default, with a looser one.
const (
	groupLinkerd         = meshapi.GroupLinkerdPolicy
	kindLinkerdServer    = "Server"
	kindLinkerdHTTPRoute = "HTTPRoute"
	kindMeshTLSAuthn     = "MeshTLSAuthentication"
	kindNetworkAuthn     = "NetworkAuthentication"
)

// linkerdServerSel is a Linkerd Server: the pods of a selector, one port.
type linkerdServerSel struct {
	name   string
	labels map[string]string
	// exprs: the selector also has matchExpressions, which only narrow it.
	exprs bool
	// pods: it selects pods (not ExternalWorkloads).
	pods   bool
	port   intstr.IntOrString
	access string
}

func decodeLinkerdServer(u *unstructured.Unstructured) (linkerdServerSel, bool) {
	spec, err := meshapi.Server(u)
	if err != nil {
		return linkerdServerSel{}, false
	}
	s := linkerdServerSel{name: u.GetName(), port: spec.Port, access: spec.AccessPolicy}
	if s.access == "" {
		s.access = meshsem.LinkerdServerDefaultAccess
	}
	if spec.PodSelector != nil {
		s.pods = true
		s.labels = spec.PodSelector.MatchLabels
		s.exprs = len(spec.PodSelector.MatchExpressions) > 0
	}
	return s, true
}

// linkerdIntent is what the profile's rendered Linkerd objects declare.
type linkerdIntent struct {
	servers   []linkerdServerSel
	routes    map[string]bool
	nsDefault string
	// nsField names the profile field that sets the namespace default.
	nsField string
}

// newLinkerdIntent reads the profile's Linkerd objects and the namespace default inbound policy
// render decided (its namespace annotation). Without one (the profile did not render) the
// default is taken as deny, so that every foreign Server that admits anything is reported (fail
// closed). The field named is authorization.defaultDeny where the default denies, else mtls.mode.
func newLinkerdIntent(p *v1alpha1.MeshSecurityProfile, objs []*unstructured.Unstructured, nsAnnotations map[string]string) *linkerdIntent {
	li := &linkerdIntent{routes: map[string]bool{}, nsDefault: meshsem.LinkerdDeny}
	if v, ok := nsAnnotations[meshsem.LinkerdDefaultInboundPolicyAnnotation]; ok {
		li.nsDefault = v
	}
	li.nsField = "mtls.mode " + string(meshsem.NamespaceMode(p.Spec.MTLS))
	if li.nsDefault == meshsem.LinkerdDeny {
		li.nsField = "authorization.defaultDeny"
	}
	for _, u := range objs {
		switch u.GetKind() {
		case kindLinkerdServer:
			if s, ok := decodeLinkerdServer(u); ok {
				li.servers = append(li.servers, s)
			}
		case kindLinkerdHTTPRoute:
			li.routes[u.GetName()] = true
		}
	}
	return li
}

// samePort says whether two Server ports can be the same pod port: a named port can be any.
func samePort(a, b intstr.IntOrString) bool {
	if a.Type == intstr.String || b.Type == intstr.String {
		return true
	}
	return a.IntVal == b.IntVal
}

// competing lists the profile's Servers that a Server may share a pod port with.
func (li *linkerdIntent) competing(s linkerdServerSel) []linkerdServerSel {
	var out []linkerdServerSel
	for _, ps := range li.servers {
		if samePort(s.port, ps.port) && meshsem.MayOverlap(s.labels, ps.labels) {
			out = append(out, ps)
		}
	}
	return out
}

// linkerdForeignServer judges a foreign Server on the pod ports the profile's Servers do not
// cover: there it replaces the namespace default inbound policy, so an accessPolicy that admits
// more than the default weakens the profile. (Where it may share a pod port with one of the
// profile's Servers, linkerdServer reports it, whatever its accessPolicy.) A Server of
// ExternalWorkloads selects no pod.
func (f *finder) linkerdForeignServer(u *unstructured.Unstructured) []v1alpha1.ExternalPolicy {
	s, ok := decodeLinkerdServer(u)
	if !ok || !s.pods {
		return nil
	}
	for _, ps := range f.linkerd.competing(s) {
		if s.port.Type == intstr.Int && meshsem.Selects(ps.labels, s.labels) {
			// Every pod port it selects is one of the profile's Servers'.
			return nil
		}
	}
	if !meshsem.LinkerdAdmitsMore(s.access, f.linkerd.nsDefault) {
		return nil
	}
	return []v1alpha1.ExternalPolicy{f.report(u, fmt.Sprintf("%s: accessPolicy %s on port %s of pods %s, where the namespace default is %s",
		f.linkerd.nsField, s.access, s.port.String(), labelsOrAll(s.labels), f.linkerd.nsDefault))}
}

// linkerdAuthorizationPolicy judges a foreign AuthorizationPolicy (policy.linkerd.io): it only
// authorizes, so it weakens the profile wherever it applies to a port the profile governs: every
// Server of the namespace when it targets the Namespace, one of the profile's Servers or
// HTTPRoutes, or, under defaultDeny, any Server (the namespace default denies what it opens).
// The authentications it requires are named, with what the foreign ones admit.
func (f *finder) linkerdAuthorizationPolicy(u *unstructured.Unstructured, authns map[string]*unstructured.Unstructured, routes linkerdRoutes) []v1alpha1.ExternalPolicy {
	spec, err := meshapi.LinkerdAuthorizationPolicy(u)
	if err != nil {
		return []v1alpha1.ExternalPolicy{f.notUnderstood(u, "authorization", err)}
	}
	routeParents := routes.parents
	t := spec.TargetRef
	var where, fieldName string
	profileServer := func(name string) bool {
		for _, s := range f.linkerd.servers {
			if s.name == name {
				return true
			}
		}
		return false
	}
	switch {
	case t.Kind == "Namespace" && (len(f.linkerd.servers) > 0 || f.linkerd.nsDefault == meshsem.LinkerdDeny):
		where, fieldName = "every Server of the namespace", "authorization"
	case t.Kind == kindLinkerdServer && profileServer(t.Name):
		where, fieldName = "the profile's Server "+t.Name, "authorization"
	case t.Kind == kindLinkerdHTTPRoute && f.linkerd.routes[t.Name]:
		where, fieldName = "the profile's HTTPRoute "+t.Name, "authorization"
	case t.Kind == kindLinkerdHTTPRoute && routes.notUnderstood[t.Name] != nil && len(f.linkerd.servers) > 0:
		// Its parentRefs cannot be read: it may attach to any of the profile's Servers.
		where, fieldName = "HTTPRoute "+t.Name+", which may attach to the profile's Servers ("+routes.notUnderstood[t.Name].Error()+")", "authorization"
	case t.Kind == kindLinkerdHTTPRoute && slices.ContainsFunc(routeParents[t.Name], profileServer):
		// A foreign route attached to one of the profile's Servers admits on its port.
		where, fieldName = "HTTPRoute "+t.Name+" of the profile's Server "+strings.Join(slices.DeleteFunc(slices.Clone(routeParents[t.Name]), func(n string) bool { return !profileServer(n) }), ", "), "authorization"
	case f.linkerd.nsDefault == meshsem.LinkerdDeny && t.Kind != "":
		where, fieldName = t.Kind+" "+t.Name, "authorization.defaultDeny"
	default:
		return nil
	}
	var refs []string
	var rows []v1alpha1.ExternalPolicy
	for _, r := range spec.RequiredAuthenticationRefs {
		ref := r.Kind + " " + r.Name
		if a := authns[r.Kind+"/"+r.Name]; a != nil {
			ref += " (" + authnText(a) + ")"
			rows = append(rows, f.report(a, fmt.Sprintf("%s: admits %s through AuthorizationPolicy %s on %s", fieldName, authnText(a), u.GetName(), where)))
		}
		refs = append(refs, ref)
	}
	sort.Strings(refs)
	who := "any client"
	if len(refs) > 0 {
		who = strings.Join(refs, " and ")
	}
	return append(rows, f.report(u, fmt.Sprintf("%s: authorizes %s on %s", fieldName, who, where)))
}

// authnText says what a MeshTLSAuthentication or NetworkAuthentication admits.
func authnText(a *unstructured.Unstructured) string {
	if a.GetKind() == kindNetworkAuthn {
		spec, err := meshapi.NetworkAuthentication(a)
		if err != nil {
			return "not understood, may admit any client: " + err.Error()
		}
		if len(spec.Networks) > 0 {
			cidrs := make([]string, 0, len(spec.Networks))
			for _, n := range spec.Networks {
				cidrs = append(cidrs, n.CIDR)
			}
			return "networks " + strings.Join(cidrs, ", ")
		}
		return "nothing declared"
	}
	spec, err := meshapi.MeshTLSAuthentication(a)
	switch {
	case err != nil:
		return "not understood, may admit any client: " + err.Error()
	case len(spec.Identities) > 0:
		return "identities " + strings.Join(spec.Identities, ", ")
	case len(spec.IdentityRefs) > 0:
		names := make([]string, 0, len(spec.IdentityRefs))
		for _, r := range spec.IdentityRefs {
			names = append(names, r.Kind+" "+r.Name)
		}
		return "identities of " + strings.Join(names, ", ")
	}
	return "nothing declared"
}

func labelsOrAll(l map[string]string) string {
	if len(l) == 0 {
		return "(all)"
	}
	return labelsText(l)
}

// linkerdRoutes are the foreign Linkerd HTTPRoutes of the namespace: the Servers each attaches
// to (parentRefs of kind Server), and those whose spec is not understood.
type linkerdRoutes struct {
	parents       map[string][]string
	notUnderstood map[string]error
}

func linkerdRouteParents(foreign []*unstructured.Unstructured, namespace string) linkerdRoutes {
	out := linkerdRoutes{parents: map[string][]string{}, notUnderstood: map[string]error{}}
	for _, u := range foreign {
		if u == nil || u.GetKind() != kindLinkerdHTTPRoute || u.GetNamespace() != namespace || !strings.HasPrefix(u.GetAPIVersion(), groupLinkerd+"/") {
			continue
		}
		spec, err := meshapi.HTTPRoute(u)
		if err != nil {
			out.notUnderstood[u.GetName()] = err
			continue
		}
		for _, r := range spec.ParentRefs {
			if r.Kind == kindLinkerdServer {
				out.parents[u.GetName()] = append(out.parents[u.GetName()], r.Name)
			}
		}
	}
	return out
}
