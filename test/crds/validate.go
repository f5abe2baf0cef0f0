package crds

import (
	"context"
	"fmt"
	"sort"

	apiextensions "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
)

// Validator checks custom objects against the schemas of their CRDs as the API server does on
// create, without a cluster: OpenAPI validation, CEL rules (x-kubernetes-validations), and fields
// the schema does not know (which the API server would silently prune).
type Validator struct {
	versions map[schema.GroupVersionKind]*versionSchema
}

type versionSchema struct {
	served     bool
	validator  apiservervalidation.SchemaValidator
	structural *structuralschema.Structural
	cel        *cel.Validator
}

// NewValidator prepares the schemas of every version of the CRDs.
func NewValidator(crds ...*apiextensionsv1.CustomResourceDefinition) (*Validator, error) {
	v := &Validator{versions: map[schema.GroupVersionKind]*versionSchema{}}
	for _, crd := range crds {
		for _, ver := range crd.Spec.Versions {
			if ver.Schema == nil || ver.Schema.OpenAPIV3Schema == nil {
				return nil, fmt.Errorf("CRD %s version %s has no schema", crd.Name, ver.Name)
			}
			props := &apiextensions.JSONSchemaProps{}
			if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(ver.Schema.OpenAPIV3Schema, props, nil); err != nil {
				return nil, fmt.Errorf("CRD %s version %s: %w", crd.Name, ver.Name, err)
			}
			sv, _, err := apiservervalidation.NewSchemaValidator(props)
			if err != nil {
				return nil, fmt.Errorf("CRD %s version %s: %w", crd.Name, ver.Name, err)
			}
			st, err := structuralschema.NewStructural(props)
			if err != nil {
				return nil, fmt.Errorf("CRD %s version %s: %w", crd.Name, ver.Name, err)
			}
			gvk := schema.GroupVersionKind{Group: crd.Spec.Group, Version: ver.Name, Kind: crd.Spec.Names.Kind}
			v.versions[gvk] = &versionSchema{
				served:     ver.Served,
				validator:  sv,
				structural: st,
				cel:        cel.NewValidator(st, true, celconfig.PerCallLimit),
			}
		}
	}
	return v, nil
}

// Validate returns what the API server would refuse in obj, drop from it, or add to it by
// defaulting; nil when it would store obj as it is. A defaulted field matters as much as a dropped
// one: meshguard compares live objects with what it rendered field by field, so a field the API
// server adds would read as drift forever (render writes defaults itself).
func (v *Validator) Validate(obj *unstructured.Unstructured) field.ErrorList {
	gvk := obj.GroupVersionKind()
	vs, ok := v.versions[gvk]
	if !ok {
		return field.ErrorList{field.NotSupported(field.NewPath("apiVersion"), gvk.GroupVersion().String()+" "+gvk.Kind, v.kinds())}
	}
	if !vs.served {
		return field.ErrorList{field.Invalid(field.NewPath("apiVersion"), gvk.GroupVersion().String(), "version is not served")}
	}
	errs := apiservervalidation.ValidateCustomResource(nil, obj.UnstructuredContent(), vs.validator)
	if vs.cel != nil {
		celErrs, _ := vs.cel.Validate(context.Background(), nil, vs.structural, obj.UnstructuredContent(), nil, celconfig.RuntimeCELCostBudget)
		errs = append(errs, celErrs...)
	}
	pruned := pruning.PruneWithOptions(obj.DeepCopy().UnstructuredContent(), vs.structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
	for _, p := range pruned {
		errs = append(errs, field.Forbidden(field.NewPath(p), "unknown field: the API server would drop it"))
	}
	defaulted := obj.DeepCopy().UnstructuredContent()
	structuraldefaulting.Default(defaulted, vs.structural)
	for _, p := range addedFields("", obj.UnstructuredContent(), defaulted) {
		errs = append(errs, field.Required(field.NewPath(p), "the API server would default it: render must write it, or it reads as drift"))
	}
	return errs
}

// addedFields lists the paths of fields that are in after but not in before (defaulting only
// adds fields), walking maps and lists of equal length.
func addedFields(path string, before, after any) []string {
	var out []string
	switch a := after.(type) {
	case map[string]any:
		b, _ := before.(map[string]any)
		keys := make([]string, 0, len(a))
		for k := range a {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			bv, ok := b[k]
			if !ok {
				out = append(out, p)
				continue
			}
			out = append(out, addedFields(p, bv, a[k])...)
		}
	case []any:
		b, _ := before.([]any)
		if len(b) == len(a) {
			for i := range a {
				out = append(out, addedFields(fmt.Sprintf("%s[%d]", path, i), b[i], a[i])...)
			}
		}
	}
	return out
}

func (v *Validator) kinds() []string {
	var out []string
	for gvk := range v.versions {
		out = append(out, gvk.GroupVersion().String()+" "+gvk.Kind)
	}
	sort.Strings(out)
	return out
}
