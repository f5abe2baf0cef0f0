package cli

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/merge"
	"github.com/meshguard/meshguard/internal/render"
	mgvalidation "github.com/meshguard/meshguard/internal/validation"
)

// metadataNameLabel is the label the API server sets on every Namespace to its name
// (https://kubernetes.io/docs/reference/labels-annotations-taints/#kubernetes-io-metadata-name),
// so a selector may use it.
const metadataNameLabel = "kubernetes.io/metadata.name"

// clusterObject validates one ClusterMeshSecurityProfile and keeps it for renderAll.
func (c *command) clusterObject(src, where string, obj *unstructured.Unstructured) {
	id := mgvalidation.ClusterKind + "/" + obj.GetName()
	if obj.GetName() == "" {
		id = mgvalidation.ClusterKind + " (" + strings.TrimPrefix(where, src+": ") + ")"
	}
	prefix := src + ": " + id
	cp, errs, err := mgvalidation.ClusterFromUnstructured(obj)
	if err != nil {
		c.errorf("%s: %v", prefix, err)
		return
	}
	if len(errs) > 0 {
		c.fieldErrors(prefix, errs)
		return
	}
	key := "cluster/" + cp.Name
	if first, dup := c.seen[key]; dup {
		c.errorf("%s: %s", prefix, field.Duplicate(field.NewPath("metadata", "name"), cp.Name).Error()+": also in "+first)
		return
	}
	c.seen[key] = src
	c.floors = append(c.floors, input[*v1alpha1.ClusterMeshSecurityProfile]{src: src, prefix: prefix, obj: cp})
}

// renderAll prints every profile in input order, merged with the floors that select its
// namespace, then every other selected namespace (sorted by name) with its floor alone.
func (c *command) renderAll() {
	labelsOf := func(ns string) map[string]string {
		l := map[string]string{}
		for k, v := range c.nsLabels[ns] {
			l[k] = v
		}
		for k, v := range c.opts.nsLabels[ns] {
			l[k] = v
		}
		l[metadataNameLabel] = ns
		return l
	}
	sys := c.system()
	told := map[string]bool{}
	floorsOf := func(ns string) []*v1alpha1.ClusterMeshSecurityProfile {
		var out []*v1alpha1.ClusterMeshSecurityProfile
		for _, f := range c.floors {
			ok, why, err := sys.Selects(f.obj, ns, labelsOf(ns))
			if err != nil {
				c.errorf("%s: %v", f.prefix, err)
				continue
			}
			if why != "" && !told[f.obj.Name+"/"+ns] {
				told[f.obj.Name+"/"+ns] = true
				fmt.Fprintf(c.stderr, "%s: not applied to namespace %s: %s\n", f.prefix, ns, why)
			}
			if ok {
				out = append(out, f.obj)
			}
		}
		return out
	}

	withProfile := map[string]bool{}
	for _, in := range c.profiles {
		p := in.obj
		withProfile[p.Namespace] = true
		floors := floorsOf(p.Namespace)
		if len(floors) == 0 {
			if res := c.renderOne(in.prefix, p); res != nil {
				if err := c.print(in.src, p, res, nil, false); err != nil {
					c.errorf("%s: %v", in.prefix, err)
				}
			}
			continue
		}
		merged, ok := c.merge(in.prefix, floors, p)
		if !ok {
			continue
		}
		mp := p.DeepCopy()
		mp.Spec = merged.Spec
		if res := c.renderOne(in.prefix, mp); res != nil {
			if err := c.print(in.src, mp, res, merged, false); err != nil {
				c.errorf("%s: %v", in.prefix, err)
			}
		}
	}

	names := map[string]bool{}
	for ns := range c.nsLabels {
		names[ns] = true
	}
	for ns := range c.opts.nsLabels {
		names[ns] = true
	}
	var floorOnly []string
	for ns := range names {
		if !withProfile[ns] {
			floorOnly = append(floorOnly, ns)
		}
	}
	sort.Strings(floorOnly)
	selected := map[string]bool{}
	for _, ns := range floorOnly {
		floors := floorsOf(ns)
		if len(floors) == 0 {
			continue
		}
		for _, f := range floors {
			selected[f.Name] = true
		}
		prefix := "Namespace/" + ns
		merged, ok := c.merge(prefix, floors, nil)
		if !ok {
			continue
		}
		gov := merge.Governor(floors)
		p := render.FloorProfile(gov, ns, merged.Spec)
		res := c.renderOne(prefix, p)
		if res == nil {
			continue
		}
		ref := render.ClusterOwnerReference(gov)
		for _, o := range res.Objects {
			o.SetOwnerReferences(append(o.GetOwnerReferences()[:0:0], ref))
		}
		if err := c.print(c.floorSource(gov), p, res, merged, true); err != nil {
			c.errorf("%s: %v", prefix, err)
		}
	}
	for _, f := range c.floors {
		if !selected[f.obj.Name] && !c.selectsAProfile(f.obj) {
			fmt.Fprintf(c.stderr, "%s: selects none of the namespaces given (add Namespace documents or --namespace-labels)\n", f.prefix)
		}
	}
}

// system names the namespaces floors are not applied to: meshguard's and the meshes' own.
func (c *command) system() merge.System {
	ro := c.opts.render
	root := ro.IstioRootNamespace
	if root == "" {
		root = ro.IstioNamespace
	}
	return merge.System{Meshguard: c.opts.meshguardNamespace, ControlPlane: []string{ro.IstioNamespace, root, ro.LinkerdNamespace}}
}

// floorSource is the input a cluster profile was read from.
func (c *command) floorSource(f *v1alpha1.ClusterMeshSecurityProfile) string {
	for _, in := range c.floors {
		if in.obj == f {
			return in.src
		}
	}
	return ""
}

func (c *command) selectsAProfile(f *v1alpha1.ClusterMeshSecurityProfile) bool {
	for _, in := range c.profiles {
		l := map[string]string{metadataNameLabel: in.obj.Namespace}
		for k, v := range c.nsLabels[in.obj.Namespace] {
			l[k] = v
		}
		for k, v := range c.opts.nsLabels[in.obj.Namespace] {
			l[k] = v
		}
		if ok, _, _ := c.system().Selects(f, in.obj.Namespace, l); ok {
			return true
		}
	}
	return false
}

// merge merges and reports: held fields as warnings, a conflict as an error.
func (c *command) merge(prefix string, floors []*v1alpha1.ClusterMeshSecurityProfile, p *v1alpha1.MeshSecurityProfile) (*merge.Result, bool) {
	merged, err := merge.Merge(floors, p)
	var conflict *merge.ConflictError
	switch {
	case errors.As(err, &conflict):
		c.errorf("%s: %s: nothing would be applied in this namespace until it is resolved", prefix, conflict.Error())
		return nil, false
	case err != nil:
		c.errorf("%s: %v", prefix, err)
		return nil, false
	}
	for _, h := range merged.Held {
		fmt.Fprintf(c.stderr, "%s: held at the floor: %s\n", prefix, holdText(h))
	}
	for _, o := range merged.Opened {
		fmt.Fprintf(c.stderr, "%s: opens under the floor: %s\n", prefix, openingText(o))
	}
	return merged, true
}

func holdText(h v1alpha1.FloorHold) string {
	return fmt.Sprintf("%s asks %s, %s applies (%s %s)", h.Field, h.Asked, h.HeldAt, mgvalidation.ClusterKind, h.ClusterProfile)
}

// openingText says what a namespace rule opens under a floor's default deny: applied (the
// default deny is a default), reported so that nobody reads the floor as a ceiling.
func openingText(o v1alpha1.FloorOpening) string {
	return fmt.Sprintf("%s %s, which the default deny of %s %s closes (applied: only ceilings and Deny rules are limits)", o.Field, o.Opens, mgvalidation.ClusterKind, o.ClusterProfile)
}

// parseNamespaceLabels reads NAME or NAME:key=value,key=value arguments.
func parseNamespaceLabels(args []string) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	for _, a := range args {
		name, rest, _ := strings.Cut(a, ":")
		if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
			return nil, fmt.Errorf("%q: namespace %q: %s", a, name, strings.Join(errs, "; "))
		}
		l := out[name]
		if l == nil {
			l = map[string]string{}
			out[name] = l
		}
		if rest == "" {
			continue
		}
		for _, kv := range strings.Split(rest, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return nil, fmt.Errorf("%q: %q is not key=value", a, kv)
			}
			if errs := validation.IsQualifiedName(k); len(errs) > 0 {
				return nil, fmt.Errorf("%q: label key %q: %s", a, k, strings.Join(errs, "; "))
			}
			if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
				return nil, fmt.Errorf("%q: label value %q: %s", a, v, strings.Join(errs, "; "))
			}
			l[k] = v
		}
	}
	return out, nil
}
