package cli

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/explain"
	"github.com/meshguard/meshguard/internal/merge"
	"github.com/meshguard/meshguard/internal/render"
	"github.com/meshguard/meshguard/internal/validation"
)

// explainInputs are the objects of the -f inputs: other objects as given, profiles merged with
// the cluster profiles (floors) that select their namespace and rendered, as the controller
// applies them.
type explainInputs struct {
	// objects are the objects to evaluate, once complete has run.
	objects []*unstructured.Unstructured
	// namespace of the profiles, when they all agree; mesh of their merged specs, likewise.
	namespace string
	mesh      explain.Mesh
	// profiles are the profiles among the inputs, merged, with the objects each renders to.
	profiles []renderedProfile
	// floorObjects mark the objects rendered for a namespace without a profile: key kind
	// namespace/name, value the mark.
	floorObjects map[string]string
	// notes say what was merged or held.
	notes []string

	given      []*unstructured.Unstructured
	pending    []*v1alpha1.MeshSecurityProfile
	floors     []*v1alpha1.ClusterMeshSecurityProfile
	namespaces map[string]*unstructured.Unstructured
}

// renderedProfile is a profile of the inputs (merged with its floors) and its render.
type renderedProfile struct {
	profile  *v1alpha1.MeshSecurityProfile
	rendered []*unstructured.Unstructured
}

// readExplainInputs reads and validates the -f inputs; complete merges and renders them.
func readExplainInputs(o *explainOptions, stdin io.Reader) (*explainInputs, error) {
	in := &explainInputs{namespaces: map[string]*unstructured.Unstructured{}, floorObjects: map[string]string{}}
	profileNS := map[string]bool{}
	stdinRead := false
	for _, f := range o.files {
		docs, err := readPath(f, stdin, &stdinRead)
		if err != nil {
			return nil, err
		}
		for _, d := range docs {
			obj, err := validation.Parse(d.data)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", d.where, err)
			}
			items := []*unstructured.Unstructured{obj}
			if obj.IsList() {
				items = nil
				_ = obj.EachListItem(func(x runtime.Object) error {
					items = append(items, x.(*unstructured.Unstructured))
					return nil
				})
			}
			for _, u := range items {
				gv, _ := schema.ParseGroupVersion(u.GetAPIVersion())
				switch {
				case gv.Group == v1alpha1.GroupVersion.Group && u.GetKind() == validation.Kind:
					if u.GetNamespace() == "" {
						u.SetNamespace("default")
					}
					p, errs, err := validation.FromUnstructured(u)
					if err == nil && len(errs) > 0 {
						err = errs.ToAggregate()
					}
					if err != nil {
						return nil, fmt.Errorf("%s: %s/%s: %v", d.where, validation.Kind, u.GetName(), err)
					}
					in.pending = append(in.pending, p)
					profileNS[p.Namespace] = true
				case gv.Group == v1alpha1.GroupVersion.Group && u.GetKind() == validation.ClusterKind:
					c, errs, err := validation.ClusterFromUnstructured(u)
					if err == nil && len(errs) > 0 {
						err = errs.ToAggregate()
					}
					if err != nil {
						return nil, fmt.Errorf("%s: %s/%s: %v", d.where, validation.ClusterKind, u.GetName(), err)
					}
					in.floors = append(in.floors, c)
				case gv.Group == "" && u.GetKind() == "Namespace":
					in.namespaces[u.GetName()] = u
				default:
					if u.GetNamespace() == "" && !clusterScoped[schema.GroupKind{Group: gv.Group, Kind: u.GetKind()}] {
						u.SetNamespace("default")
					}
					in.given = append(in.given, u)
				}
			}
		}
	}
	if len(profileNS) == 1 {
		for ns := range profileNS {
			in.namespace = ns
		}
	}
	return in, nil
}

// complete merges every profile with the cluster profiles that select its namespace (those of
// the inputs and, live, those of the cluster), exactly as the controller does (internal/merge),
// renders it, and renders the floors of the namespaces in extra that have no profile. live are
// the cluster's objects (cluster profiles and Namespaces are read from them). sources are
// namespaces of senders: a floor there only adds egress denials, so one whose selection depends
// on labels not given is left out with a note instead of an error.
func (in *explainInputs) complete(o *explainOptions, live []*unstructured.Unstructured, extra, sources []string) error {
	floors := append([]*v1alpha1.ClusterMeshSecurityProfile{}, in.floors...)
	given := map[string]bool{}
	for _, f := range floors {
		given[f.Name] = true
	}
	liveNS := map[string]*unstructured.Unstructured{}
	for _, u := range live {
		gv, _ := schema.ParseGroupVersion(u.GetAPIVersion())
		switch {
		case gv.Group == v1alpha1.GroupVersion.Group && u.GetKind() == validation.ClusterKind:
			c := &v1alpha1.ClusterMeshSecurityProfile{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, c); err != nil {
				return fmt.Errorf("%s %s: %w", validation.ClusterKind, u.GetName(), err)
			}
			// The controller skips cluster profiles being deleted; one given with -f replaces
			// the cluster's of the same name.
			if c.DeletionTimestamp.IsZero() && !given[c.Name] {
				floors = append(floors, c)
			}
		case gv.Group == "" && u.GetKind() == "Namespace":
			liveNS[u.GetName()] = u
		}
	}
	labelsOf := func(ns string) (map[string]string, bool) {
		l := map[string]string{}
		known := false
		for _, u := range []*unstructured.Unstructured{liveNS[ns], in.namespaces[ns]} {
			if u != nil {
				known = true
				for k, v := range u.GetLabels() {
					l[k] = v
				}
			}
		}
		if fl, ok := o.nsLabels[ns]; ok {
			known = true
			for k, v := range fl {
				l[k] = v
			}
		}
		l[metadataNameLabel] = ns
		return l, known
	}
	floorsFor := func(ns string) ([]*v1alpha1.ClusterMeshSecurityProfile, error) {
		l, known := labelsOf(ns)
		var out []*v1alpha1.ClusterMeshSecurityProfile
		for _, f := range floors {
			if !known && !selectsOnNameOnly(f) {
				return nil, fmt.Errorf("%s %s selects namespaces by label and the labels of namespace %s were not given: give its Namespace document or --namespace-labels %s:key=value",
					validation.ClusterKind, f.Name, ns, ns)
			}
			ok, err := merge.Selects(f, ns, l)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", validation.ClusterKind, f.Name, err)
			}
			if ok {
				out = append(out, f)
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
		return out, nil
	}

	annotations := map[string]map[string]string{}
	addAnnotations := func(ns string, anns map[string]string) {
		if len(anns) == 0 {
			return
		}
		if annotations[ns] == nil {
			annotations[ns] = map[string]string{}
		}
		for k, v := range anns {
			annotations[ns][k] = v
		}
	}
	in.objects = append([]*unstructured.Unstructured{}, in.given...)
	meshes := map[explain.Mesh]bool{}
	withProfile := map[string]bool{}
	for _, p := range in.pending {
		withProfile[p.Namespace] = true
		fs, err := floorsFor(p.Namespace)
		if err != nil {
			return fmt.Errorf("%s %s/%s: %w", validation.Kind, p.Namespace, p.Name, err)
		}
		mp := p
		if len(fs) > 0 {
			merged, err := mergeFloors(fs, p)
			if err != nil {
				return fmt.Errorf("%s %s/%s: %w", validation.Kind, p.Namespace, p.Name, err)
			}
			mp = p.DeepCopy()
			mp.Spec = merged.Spec
			in.notes = append(in.notes, mergeNotes(p.Namespace+"/"+p.Name, merged)...)
		}
		ropts := o.render
		ropts.DataPlane = ambientFacts(p.Namespace, in, live, labelsOf) // explain_ambient.go
		res, err := renderChecked(mp, ropts)
		if err != nil {
			return fmt.Errorf("%s %s/%s: %w", validation.Kind, p.Namespace, p.Name, err)
		}
		in.objects = append(in.objects, res.Objects...)
		in.profiles = append(in.profiles, renderedProfile{profile: mp, rendered: res.Objects})
		addAnnotations(p.Namespace, res.NamespaceAnnotations)
		if mp.Spec.GetMesh() == v1alpha1.MeshLinkerd {
			meshes[explain.MeshLinkerd] = true
		} else {
			meshes[explain.MeshIstio] = true
		}
	}
	seen := map[string]bool{}
	isSource := map[string]bool{}
	for _, ns := range sources {
		isSource[ns] = true
	}
	for _, ns := range append(append([]string{}, extra...), sources...) {
		if ns == "" || withProfile[ns] || seen[ns] {
			continue
		}
		seen[ns] = true
		fs, err := floorsFor(ns)
		if err != nil && isSource[ns] && !contains(extra, ns) {
			in.notes = append(in.notes, "the floors of the source namespace are left out: "+err.Error())
			continue
		}
		if err != nil {
			return err
		}
		if len(fs) == 0 {
			continue
		}
		merged, err := mergeFloors(fs, nil)
		if err != nil {
			return fmt.Errorf("namespace %s: %w", ns, err)
		}
		gov := merge.Governor(fs)
		res, err := renderChecked(render.FloorProfile(gov, ns, merged.Spec), o.render)
		if err != nil {
			return fmt.Errorf("namespace %s: the floor of %s %s: %w", ns, validation.ClusterKind, gov.Name, err)
		}
		for _, u := range res.Objects {
			in.floorObjects[u.GetKind()+" "+u.GetNamespace()+"/"+u.GetName()] = " (" + validation.ClusterKind + " " + gov.Name + ")"
		}
		in.objects = append(in.objects, res.Objects...)
		addAnnotations(ns, res.NamespaceAnnotations)
		in.notes = append(in.notes, fmt.Sprintf("namespace %s has no profile among the inputs: the floor of %s applies", ns, strings.Join(merged.ClusterProfiles, ", ")))
	}
	// The profiles' Namespace annotations (Linkerd's default inbound policy) go on the Namespace.
	namespaces := map[string]*unstructured.Unstructured{}
	for n, u := range in.namespaces {
		namespaces[n] = u.DeepCopy()
	}
	for ns, anns := range annotations {
		u := namespaces[ns]
		if u == nil {
			u = &unstructured.Unstructured{}
			u.SetAPIVersion("v1")
			u.SetKind("Namespace")
			u.SetName(ns)
			// Only its annotations are known: selectors on its labels stay undetermined.
			u.SetAnnotations(map[string]string{explain.AnnotationLabelsUnknown: "true"})
			if l, ok := o.nsLabels[ns]; ok {
				u.SetLabels(l)
				u.SetAnnotations(map[string]string{})
			}
			namespaces[ns] = u
		}
		a := u.GetAnnotations()
		if a == nil {
			a = map[string]string{}
		}
		for k, v := range anns {
			a[k] = v
		}
		u.SetAnnotations(a)
	}
	for ns, l := range o.nsLabels {
		if namespaces[ns] == nil {
			u := &unstructured.Unstructured{}
			u.SetAPIVersion("v1")
			u.SetKind("Namespace")
			u.SetName(ns)
			u.SetLabels(l)
			namespaces[ns] = u
		}
	}
	names := make([]string, 0, len(namespaces))
	for n := range namespaces {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		in.objects = append(in.objects, namespaces[n])
	}
	if len(meshes) == 1 {
		for m := range meshes {
			in.mesh = m
		}
	}
	return nil
}

// selectsOnNameOnly says whether a cluster profile's namespace selector looks at no label but the
// namespace's name.
func selectsOnNameOnly(f *v1alpha1.ClusterMeshSecurityProfile) bool {
	sel := f.Spec.NamespaceSelector
	for k := range sel.MatchLabels {
		if k != metadataNameLabel {
			return false
		}
	}
	for _, r := range sel.MatchExpressions {
		if r.Key != metadataNameLabel {
			return false
		}
	}
	return true
}

// mergeFloors is merge.Merge with a conflict named as render names it.
func mergeFloors(floors []*v1alpha1.ClusterMeshSecurityProfile, p *v1alpha1.MeshSecurityProfile) (*merge.Result, error) {
	merged, err := merge.Merge(floors, p)
	var conflict *merge.ConflictError
	if errors.As(err, &conflict) {
		return nil, fmt.Errorf("%s: nothing would be applied in this namespace until it is resolved", conflict.Error())
	}
	return merged, err
}

// mergeNotes say which floors were merged and what is held at them.
func mergeNotes(id string, merged *merge.Result) []string {
	out := []string{fmt.Sprintf("%s is merged with the floor of %s %s, as the controller applies it", id, validation.ClusterKind, strings.Join(merged.ClusterProfiles, ", "))}
	for _, h := range merged.Held {
		out = append(out, id+": held at the floor: "+holdText(h))
	}
	return out
}

// renderChecked renders a profile as `manager render` does.
func renderChecked(p *v1alpha1.MeshSecurityProfile, opts render.Options) (*render.Result, error) {
	res, err := render.Render(p, opts)
	if err != nil {
		return nil, err
	}
	if len(res.Unsupported) > 0 {
		return nil, fmt.Errorf("not supported by %s: %s", p.Spec.GetMesh(), strings.Join(res.Unsupported, "; "))
	}
	return res, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
