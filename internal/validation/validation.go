package validation

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	structurallisttype "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	schemaobjectmeta "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/objectmeta"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/config/crd"
)

// Kind is the namespaced kind this package validates.
const Kind = "MeshSecurityProfile"

// ClusterKind is the cluster-scoped kind this package validates.
const ClusterKind = "ClusterMeshSecurityProfile"

// schemas is the MeshSecurityProfile schema compiled for the API server's validators. It is built
// once from the embedded CRD and only read afterwards; the validators are safe for concurrent use.
type schemas struct {
	structural *structuralschema.Structural
	openapi    apiservervalidation.SchemaValidator
	cel        *cel.Validator
}

var (
	compiledNamespaced = sync.OnceValues(func() (*schemas, error) { return compile(crd.MeshSecurityProfile) })
	compiledCluster    = sync.OnceValues(func() (*schemas, error) { return compile(crd.ClusterMeshSecurityProfile) })
)

// compiledFor returns the compiled schema of the object's kind (checked by validateTypeMeta).
func compiledFor(obj *unstructured.Unstructured) (*schemas, error) {
	if obj.GetKind() == ClusterKind {
		return compiledCluster()
	}
	return compiledNamespaced()
}

// compile builds the schema the way the API server's CRD handler does for a served version.
func compile(load func() (*apiextensionsv1.CustomResourceDefinition, error)) (*schemas, error) {
	c, err := load()
	if err != nil {
		return nil, err
	}
	var v *apiextensionsv1.CustomResourceValidation
	for _, ver := range c.Spec.Versions {
		if ver.Name == v1alpha1.GroupVersion.Version {
			v = ver.Schema
		}
	}
	if v == nil || v.OpenAPIV3Schema == nil {
		return nil, fmt.Errorf("crd %s has no schema for version %s", c.Name, v1alpha1.GroupVersion.Version)
	}
	internal := &apiextensions.CustomResourceValidation{}
	if err := apiextensionsv1.Convert_v1_CustomResourceValidation_To_apiextensions_CustomResourceValidation(v, internal, nil); err != nil {
		return nil, fmt.Errorf("convert crd %s schema to internal version: %w", c.Name, err)
	}
	s, err := structuralschema.NewStructural(internal.OpenAPIV3Schema)
	if err != nil {
		return nil, fmt.Errorf("crd %s schema is not structural: %w", c.Name, err)
	}
	s = s.DeepCopy()
	if err := structuraldefaulting.PruneDefaults(s); err != nil {
		return nil, fmt.Errorf("prune defaults of crd %s: %w", c.Name, err)
	}
	openapi, _, err := apiservervalidation.NewSchemaValidator(internal.OpenAPIV3Schema)
	if err != nil {
		return nil, fmt.Errorf("build openapi validator of crd %s: %w", c.Name, err)
	}
	return &schemas{
		structural: s,
		openapi:    openapi,
		// CEL programs are compiled here, once, as in the API server's strategy.
		cel: cel.NewValidator(s, true, celconfig.PerCallLimit),
	}, nil
}

// Default applies the schema's defaults to obj in place, as the API server does when it decodes
// a request: nulls the schema does not allow are dropped, then every missing field that has a
// default gets it (spec.mesh Istio, spec.enforcement Enforce, spec.mtls.mode Strict, a rule's
// action Allow, a port's protocol TCP, certificates.minValidity 1440h). Unknown fields are left
// for Validate to report. It fails when obj is not a MeshSecurityProfile or a
// ClusterMeshSecurityProfile.
func Default(obj *unstructured.Unstructured) error {
	if obj == nil || obj.Object == nil {
		return errors.New("default: no object")
	}
	if errs := validateTypeMeta(obj, Kind, ClusterKind); len(errs) > 0 {
		return fmt.Errorf("default: %w", errs.ToAggregate())
	}
	s, err := compiledFor(obj)
	if err != nil {
		return err
	}
	structuraldefaulting.PruneNonNullableNullsWithoutDefaults(obj.Object, s.structural)
	structuraldefaulting.Default(obj.Object, s.structural)
	return nil
}

// Validate returns every reason the API server would refuse to create obj, which should have
// been defaulted first. Each error names the field path, for example spec.mtls.mode. obj is not
// modified. Errors are sorted by field path so that output is stable; a rule on the whole object
// is reported without a path ("<nil>"), as the API server does.
func Validate(obj *unstructured.Unstructured) field.ErrorList {
	if obj == nil || obj.Object == nil {
		return field.ErrorList{field.Required(nil, "a MeshSecurityProfile object is required")}
	}
	if errs := validateTypeMeta(obj, Kind, ClusterKind); len(errs) > 0 {
		// The API server stops here too: nothing else can be checked against the wrong schema.
		return errs
	}
	s, err := compiledFor(obj)
	if err != nil {
		return field.ErrorList{field.InternalError(nil, err)}
	}
	u := obj.DeepCopy().Object
	// Creating cannot set status (the status subresource is enabled), so it is not checked.
	delete(u, "status")

	errs, metaErrs := coerce(u, s.structural)
	if metaErrs != nil {
		return append(errs, metaErrs...)
	}
	errs = append(errs, validateMetadata(u, obj.GetKind() != ClusterKind)...)
	errs = append(errs, apiservervalidation.ValidateCustomResource(nil, u, s.openapi)...)
	errs = append(errs, schemaobjectmeta.Validate(context.Background(), nil, u, s.structural, false)...)
	errs = append(errs, structurallisttype.ValidateListSetsAndMaps(nil, s.structural, u)...)
	sortErrors(errs)
	if s.cel != nil {
		if blocked, err := hasBlockingErr(errs); blocked {
			errs = append(errs, err)
		} else {
			celErrs, _ := s.cel.Validate(context.Background(), nil, s.structural, u, nil, celconfig.RuntimeCELCostBudget)
			sortErrors(celErrs)
			errs = append(errs, celErrs...)
		}
	}
	return errs
}

// coerce does to u what the API server's decoder does before validation: it drops unknown fields
// (returned as errors), drops nulls the schema does not allow and normalises metadata. Malformed
// metadata (labels that are not a map, for example) is returned as metaErrs: nothing more can be
// checked.
func coerce(u map[string]any, s *structuralschema.Structural) (unknown, metaErrs field.ErrorList) {
	meta, found, metaUnknown, err := schemaobjectmeta.GetObjectMetaWithOptions(u, schemaobjectmeta.ObjectMetaOptions{ReturnUnknownFieldPaths: true})
	if err != nil {
		return nil, field.ErrorList{field.Invalid(field.NewPath("metadata"), u["metadata"], err.Error())}
	}
	suggest := suggestions(u, s)
	paths := append([]string{}, metaUnknown...)
	paths = append(paths, structuralpruning.PruneWithOptions(u, s, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})...)
	structuraldefaulting.PruneNonNullableNullsWithoutDefaults(u, s)
	ferr, more := schemaobjectmeta.CoerceWithOptions(nil, u, s, false, schemaobjectmeta.CoerceOptions{ReturnUnknownFieldPaths: true})
	if ferr != nil {
		return nil, field.ErrorList{ferr}
	}
	paths = append(paths, more...)
	if found {
		if err := schemaobjectmeta.SetObjectMeta(u, meta); err != nil {
			return nil, field.ErrorList{field.Invalid(field.NewPath("metadata"), u["metadata"], err.Error())}
		}
	}
	sort.Strings(paths)
	for _, p := range paths {
		msg := "unknown field"
		if alt := suggest[p]; alt != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", alt)
		}
		// A one-element path whose text is the whole path: the API server reports these as
		// strings too (`strict decoding error: unknown field "spec.mtsl"`).
		unknown = append(unknown, field.Forbidden(field.NewPath(p), msg))
	}
	return unknown, nil
}

// validateTypeMeta is the API server's first check: the object must be of one of these CRDs'
// kinds and version.
func validateTypeMeta(obj *unstructured.Unstructured, kinds ...string) field.ErrorList {
	var errs field.ErrorList
	if k := obj.GetKind(); !slices.Contains(kinds, k) {
		errs = append(errs, field.Invalid(field.NewPath("kind"), k, "must be "+strings.Join(kinds, " or ")))
	}
	if av := obj.GetAPIVersion(); av != v1alpha1.GroupVersion.String() {
		errs = append(errs, field.Invalid(field.NewPath("apiVersion"), av, "must be "+v1alpha1.GroupVersion.String()))
	}
	return errs
}

// validateMetadata is the API server's metadata validation for a custom resource (name a DNS
// subdomain, namespace a DNS label for a namespaced one and none for a cluster-scoped one, valid
// labels, annotations, finalizers, ownerReferences), plus one offline difference: the name is
// required, because there is no API server to generate one from generateName.
func validateMetadata(u map[string]any, namespaced bool) field.ErrorList {
	obj := &unstructured.Unstructured{Object: u}
	meta, errs := objectMeta(obj)
	if len(errs) > 0 {
		return errs
	}
	fld := field.NewPath("metadata")
	if meta.Name == "" && meta.GenerateName != "" {
		errs = append(errs, field.Required(fld.Child("name"), "name is required: generateName cannot be used with kubectl apply or GitOps"))
	}
	return append(errs, apimachineryvalidation.ValidateObjectMeta(meta, namespaced, apimachineryvalidation.NameIsDNSSubdomain, fld)...)
}

// hasBlockingErr is the API server's rule (customResourceStrategy.Validate) for skipping CEL
// rules: they would only repeat or obscure an error the schema already reported.
func hasBlockingErr(errs field.ErrorList) (bool, *field.Error) {
	for _, err := range errs {
		switch err.Type {
		case field.ErrorTypeNotSupported, field.ErrorTypeRequired, field.ErrorTypeTooLong, field.ErrorTypeTooMany, field.ErrorTypeTypeInvalid:
			return true, field.Invalid(nil, nil, "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation")
		}
	}
	return false, nil
}

func sortErrors(errs field.ErrorList) {
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Field < errs[j].Field })
}

// FromUnstructured defaults and validates a copy of obj and, when it is valid, converts it to the
// typed MeshSecurityProfile. It returns field errors for an invalid profile, and an error when
// the profile cannot be converted at all. obj is not modified.
func FromUnstructured(obj *unstructured.Unstructured) (*v1alpha1.MeshSecurityProfile, field.ErrorList, error) {
	p := &v1alpha1.MeshSecurityProfile{}
	errs, err := decodeValid(obj, Kind, p)
	if len(errs) > 0 || err != nil {
		return nil, errs, err
	}
	return p, nil, nil
}

// ClusterFromUnstructured is FromUnstructured for a ClusterMeshSecurityProfile.
func ClusterFromUnstructured(obj *unstructured.Unstructured) (*v1alpha1.ClusterMeshSecurityProfile, field.ErrorList, error) {
	c := &v1alpha1.ClusterMeshSecurityProfile{}
	errs, err := decodeValid(obj, ClusterKind, c)
	if len(errs) > 0 || err != nil {
		return nil, errs, err
	}
	return c, nil, nil
}

// decodeValid defaults and validates a copy of obj as the kind, and decodes it into out.
func decodeValid(obj *unstructured.Unstructured, kind string, out any) (field.ErrorList, error) {
	if obj == nil || obj.Object == nil {
		return nil, errors.New("no object")
	}
	if errs := validateTypeMeta(obj, kind); len(errs) > 0 {
		return errs, nil
	}
	u := obj.DeepCopy()
	if err := Default(u); err != nil {
		return nil, err
	}
	if errs := Validate(u); len(errs) > 0 {
		return errs, nil
	}
	s, err := compiledFor(u)
	if err != nil {
		return nil, err
	}
	delete(u.Object, "status")
	structuralpruning.Prune(u.Object, s.structural, true)
	b, err := utiljson.Marshal(u.Object)
	if err != nil {
		return nil, fmt.Errorf("encode %s %s: %w", kind, u.GetName(), err)
	}
	strict, err := kjson.UnmarshalStrict(b, out)
	if err != nil {
		return nil, fmt.Errorf("decode %s %s: %w", kind, u.GetName(), err)
	}
	if len(strict) > 0 {
		// The object matches the CRD, so this is a CRD that disagrees with the Go types:
		// run `make manifests`.
		return nil, fmt.Errorf("decode %s %s: the CRD and the Go types disagree: %w", kind, u.GetName(), errors.Join(strict...))
	}
	return nil, nil
}

// Decode reads one MeshSecurityProfile manifest in YAML or JSON, defaults and validates it as the
// API server would, and converts it to the typed object. Field errors say why a well-formed
// manifest is invalid; the error says why the input is not a manifest at all (malformed YAML,
// duplicate keys, not an object, several documents). metadata.namespace must be set: see
// FromUnstructured to set it before validation.
func Decode(yamlOrJSON []byte) (*v1alpha1.MeshSecurityProfile, field.ErrorList, error) {
	obj, err := Parse(yamlOrJSON)
	if err != nil {
		return nil, nil, err
	}
	return FromUnstructured(obj)
}

// Parse reads one YAML or JSON document into an unstructured object, refusing duplicate keys as
// kubectl does. Integers become int64, as in objects read from the API server.
func Parse(yamlOrJSON []byte) (*unstructured.Unstructured, error) {
	docs, err := SplitDocuments(yamlOrJSON)
	if err != nil {
		return nil, err
	}
	switch len(docs) {
	case 0:
		return nil, errors.New("empty document")
	case 1:
	default:
		return nil, fmt.Errorf("found %d documents, expected one", len(docs))
	}
	return parseDocument(docs[0])
}

// SplitDocuments splits a YAML stream at its `---` separators (JSON is one document) and drops
// documents that hold only comments or whitespace.
func SplitDocuments(stream []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufioReader(stream))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if isEmptyDocument(doc) {
			continue
		}
		docs = append(docs, doc)
	}
}

// parseDocument reads one document (as SplitDocuments returns them) into an unstructured object.
func parseDocument(doc []byte) (*unstructured.Unstructured, error) {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, err
	}
	var v any
	if err := utiljson.Unmarshal(j, &v); err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("expected an object, got %s", bytes.TrimSpace(j))
	}
	return &unstructured.Unstructured{Object: m}, nil
}
