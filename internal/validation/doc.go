// Package validation checks MeshSecurityProfiles offline exactly as the API server does when they
// are created: it runs the API server's own code (k8s.io/apiextensions-apiserver) on the schema of
// the embedded CRD (config/crd), so `manager render` and CI refuse what `kubectl apply` would
// refuse, with the same messages and field paths.
//
// The steps, in the API server's order:
//
//  1. Default: drop nulls the schema does not allow, apply the schema's defaults.
//  2. Validate: apiVersion and kind; unknown fields (reported as errors, as kubectl's
//     --validate=strict does, where the API server would otherwise drop them silently); metadata
//     (name a DNS subdomain, namespace a DNS label, labels, annotations, ...); the OpenAPI schema
//     (types, enums, patterns, bounds); list-type map and set uniqueness; the CEL
//     x-kubernetes-validations rules, skipped like the API server does when an earlier error makes
//     them meaningless.
//  3. Decode: YAML or JSON to a typed v1alpha1.MeshSecurityProfile, after 1 and 2.
//
// Unlike the API server, which takes the namespace from the request, Validate needs
// metadata.namespace set; callers that read manifests without one set it first, as kubectl does.
package validation
