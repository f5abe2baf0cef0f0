package render

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/clusterfacts"
	"github.com/meshguard/meshguard/internal/dataplane"
)

// Options are what rendering depends on that is not in the profile: the cluster facts the
// manager, render and explain share (internal/clusterfacts), and what the cluster says about the
// profile's namespace's data planes.
type Options struct {
	clusterfacts.Facts

	// DataPlane are the facts about the profile's namespace that place each workload on Istio's
	// sidecar or ambient data plane (internal/dataplane). nil renders every workload as a sidecar
	// one: what meshguard did before ambient support, and what `manager render` does without a
	// cluster. Istio profiles only.
	DataPlane *dataplane.Facts
	// IstioSourceServiceAccounts says that the installed AuthorizationPolicy CRD has
	// source.serviceAccounts (Istio 1.25+). Policies for ambient workloads then name senders by
	// service account instead of by principal: ztunnel does not rewrite cluster.local principals to
	// the mesh's trust domain (istio/ztunnel#1260), serviceAccounts match in any trust domain.
	IstioSourceServiceAccounts bool
}

// DefaultOptions are the values of a stock cluster (clusterfacts.Defaults).
func DefaultOptions() Options { return Options{Facts: clusterfacts.Defaults()} }

// Result is what a profile renders to.
type Result struct {
	// Objects are the desired objects, sorted by apiVersion, kind and name.
	Objects []*unstructured.Unstructured
	// NamespaceAnnotations are annotations meshguard sets on the profile's Namespace (Linkerd's
	// default inbound policy). They are applied with server-side apply owning only these keys,
	// and removed when the profile goes.
	NamespaceAnnotations map[string]string
	// Warnings say where the mesh enforces the profile more strictly than it reads (it fails
	// closed), as "path: what happens". The objects are applied; the warnings go to status and to
	// `manager render`'s standard error.
	Warnings []string
	// Unsupported lists profile fields the selected mesh cannot express, as "path: why". When it
	// is not empty the profile must not be applied half-way: nothing is applied.
	Unsupported []string
	// Enforcement says where each part of an Istio profile is enforced, per data plane of its
	// workloads. Empty without Options.DataPlane.
	Enforcement []v1alpha1.RuleEnforcementStatus
	// Unenforceable says which parts nothing can enforce where their workloads run, naming the
	// rule and the pods. The objects are rendered without them (fail-closed placeholders stand in);
	// the profile must not be reported Ready.
	Unenforceable []string
	// AmbientBound names the generated AuthorizationPolicies Istio binds to ztunnel or to a
	// waypoint: their ZtunnelAccepted and WaypointAccepted conditions say whether Istio did.
	AmbientBound []string
}

// InvalidSpecError says which fields of a profile cannot be rendered. It is terminal: retrying
// the same spec gives the same error.
type InvalidSpecError struct {
	Errs field.ErrorList
}

func (e *InvalidSpecError) Error() string { return e.Errs.ToAggregate().Error() }

// Render computes the objects a profile generates. It never returns a partial result: either
// every object, or an error (an *InvalidSpecError for bad input).
func Render(p *v1alpha1.MeshSecurityProfile, opts Options) (*Result, error) {
	if p.Name == "" || p.Namespace == "" {
		return nil, &InvalidSpecError{Errs: field.ErrorList{field.Required(field.NewPath("metadata"), "name and namespace are required")}}
	}
	opts.Facts = opts.WithDefaults()
	r := &renderer{p: p, opts: opts}
	if p.Spec.TrustDomain != "" {
		r.opts.TrustDomain = p.Spec.TrustDomain
	}
	r.checkNamespace()
	r.checkOverrideOverlaps()
	switch p.Spec.GetMesh() {
	case v1alpha1.MeshIstio:
		r.istio()
		r.istioShadow()
	case v1alpha1.MeshLinkerd:
		r.linkerd()
		r.linkerdPortScopeWarnings()
		r.linkerdNetworkPolicyPortWarnings()
	default:
		r.errs = append(r.errs, field.NotSupported(field.NewPath("spec", "mesh"), p.Spec.Mesh, []string{string(v1alpha1.MeshIstio), string(v1alpha1.MeshLinkerd)}))
	}
	r.networkPolicies()
	r.networkPolicyIsolationWarnings()
	if len(r.errs) > 0 {
		return nil, &InvalidSpecError{Errs: r.errs}
	}
	if len(r.unsupported) > 0 {
		sort.Strings(r.unsupported)
		return &Result{Unsupported: r.unsupported}, nil
	}
	sortObjects(r.objs)
	sort.Strings(r.warnings)
	res := &Result{Objects: r.objs, NamespaceAnnotations: r.nsAnnots, Warnings: r.warnings}
	r.ambientResult(res)
	return res, nil
}

// renderer accumulates objects and errors for one profile.
type renderer struct {
	p           *v1alpha1.MeshSecurityProfile
	opts        Options
	objs        []*unstructured.Unstructured
	nsAnnots    map[string]string
	errs        field.ErrorList
	unsupported []string
	warnings    []string
	ambient     ambientState
}

// name derives a child's name from the profile name and a suffix; deterministic, so that
// re-rendering finds the same object and renaming a rule prunes the old one. See ChildName.
func (r *renderer) name(parts ...string) string {
	return ChildName(r.p.Name, parts...)
}

// MaxNameLength is the longest name meshguard gives a generated object: a DNS label (RFC 1123),
// the strictest name rule among the kinds it generates and short enough to serve as a label value.
// Object names may be DNS subdomains of 253 characters, but Linkerd and Istio use some names as
// label values and in SPIFFE-like identities, which cannot be longer than 63 characters.
const MaxNameLength = validation.DNS1123LabelMaxLength

// ChildName joins the profile name and the parts with "-". A name longer than MaxNameLength ends
// with "-" and the first 8 hex digits of the SHA-256 of the whole name instead, so that it stays
// valid, deterministic and distinct from the names of other rules that share its start. To keep
// it readable, the profile name is cut first, down to 8 characters (the parts say which rule the
// object is for); only then is the end of the parts cut too.
func ChildName(profile string, parts ...string) string {
	rest := ""
	for _, s := range parts {
		rest += "-" + s
	}
	n := profile + rest
	if len(n) <= MaxNameLength {
		return n
	}
	sum := sha256.Sum256([]byte(n))
	suffix := "-" + hex.EncodeToString(sum[:])[:8]
	room := MaxNameLength - len(suffix)
	// Keep at least minProfile characters of the profile name, so that the name still starts
	// with something the reader recognises.
	const minProfile = 8
	keep := max(room-len(rest), min(minProfile, len(profile)))
	head := trimCut(profile[:keep]) + rest
	if len(head) > room {
		head = trimCut(head[:room])
	}
	return head + suffix
}

// trimCut removes the "-" and "." a cut may leave at the end (they would make "--" or an invalid
// "." before the hash). Names are lower-case alphanumerics, "-" and "." (profile and rule names
// are DNS labels and subdomains, and so are the parts meshguard adds), so a cut never splits a
// character.
func trimCut(s string) string { return strings.TrimRight(s, "-.") }

// add converts a typed object to unstructured, stamps meshguard's labels and the controller
// ownerReference, and records it. Labels of the profile are never copied: Argo CD tracking
// labels on the profile must not make Argo CD think it manages the children.
func (r *renderer) add(gvk metav1.GroupVersionKind, name string, obj any) {
	u, err := toUnstructured(obj)
	if err != nil {
		r.errs = append(r.errs, field.InternalError(field.NewPath("spec"), fmt.Errorf("encode %s %s: %w", gvk.Kind, name, err)))
		return
	}
	u.SetAPIVersion(gvk.Group + "/" + gvk.Version)
	if gvk.Group == "" {
		u.SetAPIVersion(gvk.Version)
	}
	u.SetKind(gvk.Kind)
	u.SetName(name)
	u.SetNamespace(r.p.Namespace)
	u.SetLabels(Labels(r.p.Name))
	u.SetOwnerReferences([]metav1.OwnerReference{OwnerReference(r.p)})
	// Drop fields that must not be part of an apply request.
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "status")
	r.objs = append(r.objs, u)
}

// Labels are the labels of every object generated for the named profile.
func Labels(profile string) map[string]string {
	return map[string]string{
		v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue,
		v1alpha1.LabelProfile:   profile,
	}
}

// OwnerReference is the controller reference from a generated object to its profile, so that
// deleting the profile garbage-collects its objects and Argo CD shows them under it.
func OwnerReference(p *v1alpha1.MeshSecurityProfile) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion:         v1alpha1.GroupVersion.String(),
		Kind:               "MeshSecurityProfile",
		Name:               p.Name,
		UID:                p.UID,
		Controller:         ptr.To(true),
		BlockOwnerDeletion: ptr.To(true),
	}
}

func toUnstructured(obj any) (*unstructured.Unstructured, error) {
	// A JSON round trip honours the custom marshallers of Istio's protobuf-based types.
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	// utiljson decodes integers as int64, as the API server's objects are, so that comparing a
	// rendered object with a live one does not trip over float64 numbers.
	m := map[string]any{}
	if err := utiljson.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return &unstructured.Unstructured{Object: m}, nil
}

func sortObjects(objs []*unstructured.Unstructured) {
	sort.SliceStable(objs, func(i, j int) bool {
		a, b := objs[i], objs[j]
		if a.GetAPIVersion() != b.GetAPIVersion() {
			return a.GetAPIVersion() < b.GetAPIVersion()
		}
		if a.GetKind() != b.GetKind() {
			return a.GetKind() < b.GetKind()
		}
		return a.GetName() < b.GetName()
	})
}

// forEachRule calls f for every authorization rule whose name is a valid DNS label and unique;
// the others are errors naming the field (the CRD refuses them, so they only come from a spec
// that slipped past admission).
func (r *renderer) forEachRule(az *v1alpha1.AuthorizationSpec, path *field.Path, f func(rule *v1alpha1.AuthorizationRule, p *field.Path)) {
	seen := map[string]bool{}
	for i := range az.Rules {
		rule := &az.Rules[i]
		p := path.Child("rules").Index(i)
		if errs := validation.IsDNS1123Label(rule.Name); len(errs) > 0 {
			r.errs = append(r.errs, field.Invalid(p.Child("name"), rule.Name, strings.Join(errs, "; ")))
			continue
		}
		if seen[rule.Name] {
			r.errs = append(r.errs, field.Duplicate(p.Child("name"), rule.Name))
			continue
		}
		seen[rule.Name] = true
		f(rule, p)
	}
}

// sortedSet returns the sorted distinct elements of in; nil for an empty list.
func sortedSet(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	return sets.List(sets.New(in...))
}
