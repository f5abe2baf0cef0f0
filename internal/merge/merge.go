package merge

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// Result is the merged profile of one namespace.
type Result struct {
	// Spec is the merged profile body: render it as the namespace's profile.
	Spec v1alpha1.MeshSecurityProfileSpec
	// ClusterProfiles are the names of the floors merged in, sorted.
	ClusterProfiles []string
	// Held are the namespace profile's fields that ask for less than a floor, or go past one of
	// its ceilings, and are held at it, in field order.
	Held []v1alpha1.FloorHold
	// Opened are the namespace profile's rules that open what a floor's default deny closes and
	// no rule of the floors allows: applied, and reported.
	Opened []v1alpha1.FloorOpening
}

// ConflictError says that the profiles selecting a namespace cannot be merged into one. The
// namespace must get nothing new from any of them, and each must report the conflict.
type ConflictError struct {
	// ClusterProfiles are the floors involved, sorted.
	ClusterProfiles []string
	// Profile is the namespace's MeshSecurityProfile, when it is involved.
	Profile string
	// Reasons say what disagrees, one line per field.
	Reasons []string
}

func (e *ConflictError) Error() string {
	return "cannot merge " + strings.Join(e.involved(), ", ") + ": " + strings.Join(e.Reasons, "; ")
}

func (e *ConflictError) involved() []string {
	var out []string
	for _, c := range e.ClusterProfiles {
		out = append(out, "ClusterMeshSecurityProfile "+c)
	}
	if e.Profile != "" {
		out = append(out, "MeshSecurityProfile "+e.Profile)
	}
	return out
}

// source is one profile taking part in a merge: a floor (cluster set) or the namespace's own.
type source struct {
	cluster string // the ClusterMeshSecurityProfile's name; "" for the namespace profile
	spec    *v1alpha1.MeshSecurityProfileSpec
}

func (s source) String() string {
	if s.cluster != "" {
		return "ClusterMeshSecurityProfile " + s.cluster
	}
	return "the namespace's MeshSecurityProfile"
}

// Merge folds the floors that select a namespace and the namespace's own profile (nil when it
// has none) into one profile body. The order of floors does not matter. With no floors, the
// namespace profile's spec is returned unchanged.
func Merge(floors []*v1alpha1.ClusterMeshSecurityProfile, ns *v1alpha1.MeshSecurityProfile) (*Result, error) {
	sorted := append([]*v1alpha1.ClusterMeshSecurityProfile(nil), floors...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	m := &merger{}
	for _, f := range sorted {
		m.floors = append(m.floors, source{cluster: f.Name, spec: f.Spec.MeshSecurityProfileSpec.DeepCopy()})
		m.floorSpecs = append(m.floorSpecs, floorSpec{Name: f.Name, Ceilings: f.Spec.Ceilings.DeepCopy(), MeshSecurityProfileSpec: m.floors[len(m.floors)-1].spec})
		m.res.ClusterProfiles = append(m.res.ClusterProfiles, f.Name)
	}
	if ns != nil {
		m.ns = &source{spec: ns.Spec.DeepCopy()}
		m.nsName = ns.Name
	}
	if len(m.floors) == 0 {
		if m.ns == nil {
			return nil, fmt.Errorf("nothing to merge: no cluster profile and no namespace profile")
		}
		m.res.Spec = *m.ns.spec
		return &m.res, nil
	}
	m.identity()
	if len(m.conflicts) > 0 {
		return nil, m.conflictError()
	}
	m.enforcement()
	m.expectations()
	m.mtls()
	m.requestAuthentication()
	m.authorization()
	m.networkPolicy()
	m.certificates()
	m.requireFloorIssuers()
	m.ceilings()
	m.openings()
	if len(m.conflicts) > 0 {
		return nil, m.conflictError()
	}
	return &m.res, nil
}

// merger accumulates the merged spec, the holds and the conflicts.
type merger struct {
	floors     []source
	floorSpecs []floorSpec
	ns         *source
	nsName     string
	res        Result
	conflicts  []string
	nsInvolved bool
}

// floorSpec is a floor's profile body with its name and ceilings.
type floorSpec struct {
	Name     string
	Ceilings *v1alpha1.FloorCeilings
	*v1alpha1.MeshSecurityProfileSpec
}

// all returns the floors, then the namespace profile.
func (m *merger) all() []source {
	out := append([]source(nil), m.floors...)
	if m.ns != nil {
		out = append(out, *m.ns)
	}
	return out
}

func (m *merger) hold(field, asked, heldAt, cluster string) {
	m.res.Held = append(m.res.Held, v1alpha1.FloorHold{Field: field, Asked: asked, HeldAt: heldAt, ClusterProfile: cluster})
}

func (m *merger) conflict(nsInvolved bool, format string, args ...any) {
	m.conflicts = append(m.conflicts, fmt.Sprintf(format, args...))
	m.nsInvolved = m.nsInvolved || nsInvolved
}

func (m *merger) conflictError() *ConflictError {
	e := &ConflictError{ClusterProfiles: m.res.ClusterProfiles, Reasons: m.conflicts}
	if m.nsInvolved {
		e.Profile = m.nsName
	}
	return e
}

// identity merges what must be equal: the mesh (objects of one mesh cannot carry another's floor)
// and the trust domain (identities are built from it). A profile that leaves trustDomain empty
// agrees with any.
func (m *merger) identity() {
	mesh, meshFrom := v1alpha1.Mesh(""), source{}
	td, tdFrom := "", source{}
	for _, s := range m.all() {
		sm := s.spec.GetMesh()
		switch {
		case mesh == "":
			mesh, meshFrom = sm, s
		case sm != mesh:
			m.conflict(s.cluster == "", "spec.mesh: %s says %s, %s says %s", meshFrom, mesh, s, sm)
		}
		if s.spec.TrustDomain == "" {
			continue
		}
		switch {
		case td == "":
			td, tdFrom = s.spec.TrustDomain, s
		case s.spec.TrustDomain != td:
			m.conflict(s.cluster == "", "spec.trustDomain: %s says %s, %s says %s", tdFrom, td, s, s.spec.TrustDomain)
		}
	}
	m.res.Spec.Mesh = mesh
	m.res.Spec.TrustDomain = td
	for _, s := range m.all() {
		m.res.Spec.AdoptExisting = m.res.Spec.AdoptExisting || s.spec.AdoptExisting
	}
}

// enforcement: Enforce is stricter than Audit (Audit writes nothing). "" is the API default, Enforce.
func (m *merger) enforcement() {
	floor, from := v1alpha1.EnforcementAudit, ""
	for _, f := range m.floors {
		if enforcementOf(f.spec) == v1alpha1.EnforcementEnforce {
			floor, from = v1alpha1.EnforcementEnforce, f.cluster
			break
		}
	}
	got := floor
	if m.ns != nil {
		asked := enforcementOf(m.ns.spec)
		if asked == v1alpha1.EnforcementAudit && floor == v1alpha1.EnforcementEnforce {
			m.hold("spec.enforcement", string(asked), string(floor), from)
		}
		if asked == v1alpha1.EnforcementEnforce {
			got = asked
		}
	}
	m.res.Spec.Enforcement = got
}

// expectations are the namespace profile's own: questions about live traffic, answered in its
// status in its order; they change nothing that is generated. A cluster profile cannot hold any
// (its CRD refuses them).
func (m *merger) expectations() {
	if m.ns != nil && len(m.ns.spec.Expectations) > 0 {
		m.res.Spec.Expectations = m.ns.spec.Expectations
	}
}

func enforcementOf(s *v1alpha1.MeshSecurityProfileSpec) v1alpha1.Enforcement {
	if s.Enforcement == "" {
		return v1alpha1.EnforcementEnforce
	}
	return s.Enforcement
}

// certificates: the longest minValidity is the strictest (a certificate must stay valid longer).
func (m *merger) certificates() {
	var floor *metav1.Duration
	from := ""
	for _, f := range m.floors {
		if d := minValidityOf(f.spec); d != nil && (floor == nil || d.Duration > floor.Duration) {
			floor, from = d, f.cluster
		}
	}
	got := floor
	if m.ns != nil {
		if asked := minValidityOf(m.ns.spec); asked != nil {
			if floor != nil && asked.Duration < floor.Duration {
				m.hold("spec.certificates.minValidity", asked.Duration.String(), floor.Duration.String(), from)
			}
			if got == nil || asked.Duration > got.Duration {
				got = asked
			}
		}
	}
	if got != nil {
		m.res.Spec.Certificates = &v1alpha1.CertificatesSpec{MinValidity: &metav1.Duration{Duration: got.Duration}}
	}
}

func minValidityOf(s *v1alpha1.MeshSecurityProfileSpec) *metav1.Duration {
	if s.Certificates == nil {
		return nil
	}
	return s.Certificates.MinValidity
}

// scoped is scopedName for this merge, except where one floor alone is merged for a namespace
// without a profile of its own: its objects are then named after that floor already
// (render.FloorProfile), its rules cannot collide with another's, and a prefix would say the
// floor's name twice (platform-floor-rule-platform-floor-scrapes).
func (m *merger) scoped(cluster, name string) string {
	if m.ns == nil && len(m.floors) == 1 {
		return name
	}
	return scoped(cluster, name)
}

// scoped is the name a floor's rule (or override) takes in the merged profile: prefixed with the
// floor's name, so that a namespace rule of the same name never collides with it and the
// generated object names say where the rule comes from. Names stay DNS labels (63 characters):
// a longer one is cut and ends with a hash of the full name.
func scoped(cluster, name string) string {
	n := cluster + "-" + name
	if len(n) <= 63 {
		return n
	}
	sum := sha256.Sum256([]byte(n))
	return strings.TrimRight(n[:54], "-") + "-" + hex.EncodeToString(sum[:])[:8]
}

// Selects says whether a cluster profile applies to a namespace with these labels: the selector
// matches and the namespace is not excluded (excludeNamespaces, or a system namespace kube-*
// without includeSystemNamespaces). An invalid selector is an error naming the field. Callers
// that know meshguard's and the meshes' namespaces use System.Selects.
func Selects(c *v1alpha1.ClusterMeshSecurityProfile, namespace string, nsLabels map[string]string) (bool, error) {
	ok, _, err := System{}.Selects(c, namespace, nsLabels)
	return ok, err
}

// System names the namespaces a floor is not applied to unless it says so: a default deny there
// cuts off cluster DNS, webhooks, meshguard itself or the mesh's control plane (issue 22).
type System struct {
	// Meshguard is the namespace meshguard runs in.
	Meshguard string
	// ControlPlane are the mesh control-plane namespaces (Istio's, its root namespace, Linkerd's).
	// A profile cannot govern them (render refuses them), so no floor applies there, whatever
	// includeSystemNamespaces says.
	ControlPlane []string
}

// Excluded says why a floor is not applied to a namespace its selector may choose, or "".
func (s System) Excluded(c *v1alpha1.ClusterMeshSecurityProfile, namespace string) string {
	for _, cp := range s.ControlPlane {
		if cp != "" && cp == namespace {
			return "a mesh control-plane namespace"
		}
	}
	if c.Spec.IncludeSystemNamespaces {
		return ""
	}
	switch {
	case strings.HasPrefix(namespace, "kube-"):
		return "a kube-* system namespace (spec.includeSystemNamespaces is false)"
	case s.Meshguard != "" && namespace == s.Meshguard:
		return "meshguard's own namespace (spec.includeSystemNamespaces is false)"
	}
	return ""
}

// Selects says whether c applies to a namespace with these labels, and, when its selector chooses
// the namespace but it is a system namespace, why it is left out.
func (s System) Selects(c *v1alpha1.ClusterMeshSecurityProfile, namespace string, nsLabels map[string]string) (bool, string, error) {
	for _, ex := range c.Spec.ExcludeNamespaces {
		if ex == namespace {
			return false, "", nil
		}
	}
	sel, err := metav1.LabelSelectorAsSelector(&c.Spec.NamespaceSelector)
	if err != nil {
		return false, "", fmt.Errorf("spec.namespaceSelector: %w", err)
	}
	if !sel.Matches(labels.Set(nsLabels)) {
		return false, "", nil
	}
	if why := s.Excluded(c, namespace); why != "" {
		return false, why, nil
	}
	return true, "", nil
}

// Governor is the floor that owns a namespace's objects when the namespace has no profile of its
// own: the oldest (then the first by name), so that the choice is stable while floors come and go.
func Governor(floors []*v1alpha1.ClusterMeshSecurityProfile) *v1alpha1.ClusterMeshSecurityProfile {
	var g *v1alpha1.ClusterMeshSecurityProfile
	for _, f := range floors {
		if g == nil || f.CreationTimestamp.Before(&g.CreationTimestamp) ||
			(f.CreationTimestamp.Equal(&g.CreationTimestamp) && f.Name < g.Name) {
			g = f
		}
	}
	return g
}
