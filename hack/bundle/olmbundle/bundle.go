// Package olmbundle generates meshguard's OLM bundle (registry+v1 format) from config/: the
// ClusterServiceVersion, built on github.com/operator-framework/api's types, with the Deployment
// and RBAC of `kustomize build config/default`, the CRD of config/crd, alm-examples from
// config/samples and descriptors whose descriptions come from the CRD's schema, plus the bundle's
// metadata/annotations.yaml, the scorecard configuration and bundle.Dockerfile.
package olmbundle

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/operator-framework/api/pkg/lib/version"
	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/blang/semver/v4"

	"github.com/meshguard/meshguard/hack/bundle/kustomize"
	"github.com/meshguard/meshguard/internal/render"
	testcrds "github.com/meshguard/meshguard/test/crds"
)

const (
	// Package is the OLM package name; Channel its only channel for now, named as OLM's channel
	// naming convention (and its good-practices validator) recommends.
	Package = "meshguard"
	Channel = "candidate"
	// maturity of the API (v1alpha1).
	maturity = "alpha"
	// MinKubeVersion is the oldest Kubernetes the CRD's CEL rules and the manager's APIs support
	// (CEL with messageExpression and reason, events.k8s.io/v1, policy/v1).
	MinKubeVersion = "1.30.0"
	// imageRepository is where releases are pushed; the tag is the chart's appVersion.
	imageRepository = "ghcr.io/meshguard/meshguard"
	// scorecardImage runs operator-sdk's scorecard tests (basic and OLM suites).
	scorecardImage = "quay.io/operator-framework/scorecard-test:v1.42.0"
)

// Files maps a path relative to the repository root to its generated content.
type Files map[string][]byte

// Generate builds every bundle file from the repository at root.
func Generate(root string) (Files, error) {
	ver, err := appVersion(root)
	if err != nil {
		return nil, err
	}
	deployObjs, err := kustomize.Build(filepath.Join(root, "config", "default"))
	if err != nil {
		return nil, err
	}
	monitoring, err := kustomize.Build(filepath.Join(root, "config", "prometheus"))
	if err != nil {
		return nil, err
	}
	samples, err := kustomize.Build(filepath.Join(root, "config", "samples"))
	if err != nil {
		return nil, err
	}
	icon, err := os.ReadFile(filepath.Join(root, "docs", "meshguard.svg"))
	if err != nil {
		return nil, fmt.Errorf("icon: %w", err)
	}

	files := Files{}
	var (
		crds        []*apiextensionsv1.CustomResourceDefinition
		deployment  *appsv1.Deployment
		managerRole *rbacv1.ClusterRole
		caRules     []rbacv1.PolicyRule
		leaderRole  *rbacv1.Role
	)
	for _, u := range deployObjs {
		switch u.GetKind() {
		case "CustomResourceDefinition":
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := convert(u, crd); err != nil {
				return nil, err
			}
			crds = append(crds, crd)
			// The CRD goes into the bundle as config/crd has it, byte for byte.
			b, err := os.ReadFile(filepath.Join(root, "config", "crd", "bases", crd.Spec.Group+"_"+crd.Spec.Names.Plural+".yaml"))
			if err != nil {
				return nil, err
			}
			files[filepath.Join("bundle", "manifests", crd.Spec.Group+"_"+crd.Spec.Names.Plural+".yaml")] = b
		case "Deployment":
			deployment = &appsv1.Deployment{}
			if err := convert(u, deployment); err != nil {
				return nil, err
			}
		case "ClusterRole":
			r := &rbacv1.ClusterRole{}
			if err := convert(u, r); err != nil {
				return nil, err
			}
			switch r.Name {
			case "meshguard-manager-role":
				managerRole = r
			case "meshguard-metrics-reader", "meshguard-profile-viewer-role", "meshguard-profile-editor-role":
				// OLM installs a bundle's ClusterRoles as they are (the aggregated ones too: their
				// labels put them into the cluster's view, edit and admin roles).
				if err := addManifest(files, u); err != nil {
					return nil, err
				}
			default:
				return nil, fmt.Errorf("config/default: ClusterRole %s: the bundle does not know where it goes", r.Name)
			}
		case "Role":
			r := &rbacv1.Role{}
			if err := convert(u, r); err != nil {
				return nil, err
			}
			switch {
			case r.Name == "meshguard-leader-election-role":
				leaderRole = r
			case r.Namespace == "istio-system" || r.Namespace == "linkerd":
				// OLM creates a CSV's permissions in the operator's own namespace only, so the Roles that
				// let meshguard get the mesh CA Secrets in the mesh namespaces become cluster-wide rules,
				// still restricted to the same resourceNames.
				for _, rule := range r.Rules {
					if len(rule.ResourceNames) == 0 {
						return nil, fmt.Errorf("config/default: Role %s/%s has a rule without resourceNames: it would become cluster-wide", r.Namespace, r.Name)
					}
					caRules = append(caRules, rule)
				}
			default:
				return nil, fmt.Errorf("config/default: Role %s/%s: the bundle does not know where it goes", r.Namespace, r.Name)
			}
		case "PodDisruptionBudget":
			u = u.DeepCopy()
			u.SetNamespace("")
			if err := addManifest(files, u); err != nil {
				return nil, err
			}
		case "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "NetworkPolicy":
			// Not among the kinds OLM installs from a registry+v1 bundle: the CSV's description says
			// how to add them (the manager refuses the profiles the admission policy refuses anyway).
		case "Namespace", "ServiceAccount", "ClusterRoleBinding", "RoleBinding":
			// OLM creates the namespace (an OperatorGroup), the service account and the bindings
			// from the CSV's permissions.
		default:
			return nil, fmt.Errorf("config/default: %s %s: the bundle does not know where it goes", u.GetKind(), u.GetName())
		}
	}
	for _, u := range monitoring {
		if u.GetKind() == "Service" {
			u = u.DeepCopy()
			u.SetNamespace("")
			if err := addManifest(files, u); err != nil {
				return nil, err
			}
		}
		// The ServiceMonitor and PrometheusRule need the Prometheus Operator's CRDs, which a bundle
		// cannot require; docs/user-guide.md says how to add them.
	}
	if len(crds) == 0 || deployment == nil || managerRole == nil || leaderRole == nil {
		return nil, fmt.Errorf("config/default lacks the CRD, the Deployment, the manager ClusterRole or the leader election Role")
	}

	image := imageRepository + ":" + ver.String()
	for i := range deployment.Spec.Template.Spec.Containers {
		if deployment.Spec.Template.Spec.Containers[i].Name == "manager" {
			deployment.Spec.Template.Spec.Containers[i].Image = image
		}
	}
	examples, err := almExamples(samples)
	if err != nil {
		return nil, err
	}
	// Owned CRDs in a stable order (by name), each described from its own schema.
	sort.Slice(crds, func(i, j int) bool { return crds[i].Name < crds[j].Name })
	resources, err := generatedResources()
	if err != nil {
		return nil, err
	}
	var owned []operatorsv1alpha1.CRDDescription
	for _, crd := range crds {
		d, err := ownedCRD(crd, resources)
		if err != nil {
			return nil, err
		}
		owned = append(owned, d)
	}
	sa := deployment.Spec.Template.Spec.ServiceAccountName

	csv := operatorsv1alpha1.ClusterServiceVersion{
		TypeMeta: metav1.TypeMeta{APIVersion: operatorsv1alpha1.SchemeGroupVersion.String(), Kind: operatorsv1alpha1.ClusterServiceVersionKind},
		ObjectMeta: metav1.ObjectMeta{
			Name: Package + ".v" + ver.String(),
			Annotations: map[string]string{
				"alm-examples":   examples,
				"capabilities":   "Basic Install",
				"categories":     "Security",
				"containerImage": image,
				"description":    "One MeshSecurityProfile per namespace: Istio, Linkerd and NetworkPolicy objects kept as declared, with drift and CA certificate health in status.",
				"repository":     "https://github.com/meshguard/meshguard",
				"support":        "meshguard maintainers",
				"operatorframework.io/suggested-namespace": "meshguard-system",
				"operators.operatorframework.io/builder":   "meshguard hack/bundle",
			},
		},
		Spec: operatorsv1alpha1.ClusterServiceVersionSpec{
			DisplayName:    "meshguard",
			Description:    description,
			Version:        version.OperatorVersion{Version: ver},
			Maturity:       maturity,
			MinKubeVersion: MinKubeVersion,
			Keywords:       []string{"security", "service mesh", "istio", "linkerd", "networkpolicy", "mtls", "gitops"},
			Maintainers:    []operatorsv1alpha1.Maintainer{{Name: "meshguard maintainers", Email: "maintainers@meshguard.dev"}},
			Provider:       operatorsv1alpha1.AppLink{Name: "meshguard", URL: "https://github.com/meshguard/meshguard"},
			Links: []operatorsv1alpha1.AppLink{
				{Name: "Source", URL: "https://github.com/meshguard/meshguard"},
				{Name: "User guide", URL: "https://github.com/meshguard/meshguard/blob/main/docs/user-guide.md"},
			},
			Icon: []operatorsv1alpha1.Icon{{Data: base64.StdEncoding.EncodeToString(icon), MediaType: "image/svg+xml"}},
			// meshguard is cluster-wide: one profile per namespace, in any namespace, and the mesh CA
			// sources in the mesh namespaces.
			InstallModes: []operatorsv1alpha1.InstallMode{
				{Type: operatorsv1alpha1.InstallModeTypeOwnNamespace, Supported: false},
				{Type: operatorsv1alpha1.InstallModeTypeSingleNamespace, Supported: false},
				{Type: operatorsv1alpha1.InstallModeTypeMultiNamespace, Supported: false},
				{Type: operatorsv1alpha1.InstallModeTypeAllNamespaces, Supported: true},
			},
			CustomResourceDefinitions: operatorsv1alpha1.CustomResourceDefinitions{Owned: owned},
			RelatedImages:             []operatorsv1alpha1.RelatedImage{{Name: "manager", Image: image}},
			InstallStrategy: operatorsv1alpha1.NamedInstallStrategy{
				StrategyName: operatorsv1alpha1.InstallStrategyNameDeployment,
				StrategySpec: operatorsv1alpha1.StrategyDetailsDeployment{
					DeploymentSpecs: []operatorsv1alpha1.StrategyDeploymentSpec{{
						Name:  deployment.Name,
						Spec:  deployment.Spec,
						Label: deployment.Labels,
					}},
					ClusterPermissions: []operatorsv1alpha1.StrategyDeploymentPermissions{{
						ServiceAccountName: sa,
						Rules:              append(append([]rbacv1.PolicyRule{}, managerRole.Rules...), caRules...),
					}},
					Permissions: []operatorsv1alpha1.StrategyDeploymentPermissions{{
						ServiceAccountName: sa,
						Rules:              leaderRole.Rules,
					}},
				},
			},
		},
	}
	b, err := marshalClean(&csv)
	if err != nil {
		return nil, err
	}
	files[filepath.Join("bundle", "manifests", Package+".clusterserviceversion.yaml")] = b

	ann := annotations()
	b, err = yaml.Marshal(map[string]any{"annotations": ann})
	if err != nil {
		return nil, err
	}
	files[filepath.Join("bundle", "metadata", "annotations.yaml")] = b
	if files[filepath.Join("bundle", "tests", "scorecard", "config.yaml")], err = scorecardConfig(); err != nil {
		return nil, err
	}
	files["bundle.Dockerfile"] = dockerfile(ann)
	return files, nil
}

// description is the CSV's long description (Markdown, shown by OperatorHub and the console).
const description = `meshguard turns one **MeshSecurityProfile per namespace** into the mesh's own security
objects — Istio PeerAuthentication, RequestAuthentication and AuthorizationPolicy, Linkerd's default
inbound policy, Server, AuthorizationPolicy, MeshTLSAuthentication, NetworkAuthentication and
HTTPRoute, and Kubernetes NetworkPolicy — owns them, keeps them as declared, and says in the
profile's status whether the namespace is really protected: policies applied, no drift, nothing
outside meshguard weakening them, mesh CA certificates healthy.

* **GitOps first**: commit the profile, Argo CD or Flux applies it; generated objects never carry
  the profile's tracking labels, so they show under it and never as OutOfSync.
* **Drift**: an edit or deletion of a generated object is seen within a second and restored
  (Enforce) or only reported (Audit).
* **Certificates**: the Istio and Linkerd CA certificates are checked as ` + "`linkerd check`" + ` does.
* **Least privilege**: no cluster-wide cache of Secrets; the mesh CA Secrets are read by name.

Permissions under OLM: the mesh CA Secrets (cacerts, istio-ca-secret, linkerd-identity-issuer)
are granted by name cluster-wide, because OLM creates Roles only in the operator's namespace; the
kustomize and Helm installations grant them only in istio-system and linkerd. OLM does not
install admission policies or NetworkPolicies: apply config/admission (a ValidatingAdmissionPolicy
refusing profiles in the mesh namespaces; the manager refuses them anyway) and
config/network-policy (the operator's namespace behind default deny) yourself.

See the [user guide](https://github.com/meshguard/meshguard/blob/main/docs/user-guide.md).`

// annotations are the bundle's metadata/annotations.yaml, also the LABELs of bundle.Dockerfile.
func annotations() map[string]string {
	return map[string]string{
		"operators.operatorframework.io.bundle.mediatype.v1":       "registry+v1",
		"operators.operatorframework.io.bundle.manifests.v1":       "manifests/",
		"operators.operatorframework.io.bundle.metadata.v1":        "metadata/",
		"operators.operatorframework.io.bundle.package.v1":         Package,
		"operators.operatorframework.io.bundle.channels.v1":        Channel,
		"operators.operatorframework.io.bundle.channel.default.v1": Channel,
		"operators.operatorframework.io.test.mediatype.v1":         "scorecard+v1",
		"operators.operatorframework.io.test.config.v1":            "tests/scorecard/",
	}
}

func dockerfile(ann map[string]string) []byte {
	var b strings.Builder
	b.WriteString("# Generated by `make bundle` (hack/bundle); do not edit.\nFROM scratch\n\n")
	keys := make([]string, 0, len(ann))
	for k := range ann {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "LABEL %s=%s\n", k, ann[k])
	}
	b.WriteString("\nCOPY bundle/manifests /manifests/\nCOPY bundle/metadata /metadata/\nCOPY bundle/tests/scorecard /tests/scorecard/\n")
	return []byte(b.String())
}

// scorecardConfig is operator-sdk's scorecard configuration (scorecard.operatorframework.io/v1alpha3)
// with its basic and OLM test suites.
func scorecardConfig() ([]byte, error) {
	type test struct {
		Entrypoint []string          `json:"entrypoint"`
		Image      string            `json:"image"`
		Labels     map[string]string `json:"labels"`
	}
	mk := func(suite, name string) test {
		return test{Entrypoint: []string{"scorecard-test", name}, Image: scorecardImage, Labels: map[string]string{"suite": suite, "test": name + "-test"}}
	}
	cfg := map[string]any{
		"apiVersion": "scorecard.operatorframework.io/v1alpha3",
		"kind":       "Configuration",
		"metadata":   map[string]any{"name": "config"},
		"stages": []any{
			map[string]any{"parallel": true, "tests": []test{
				mk("basic", "basic-check-spec"),
				mk("olm", "olm-bundle-validation"),
				mk("olm", "olm-crds-have-validation"),
				mk("olm", "olm-crds-have-resources"),
				mk("olm", "olm-spec-descriptors"),
				mk("olm", "olm-status-descriptors"),
			}},
		},
	}
	return yaml.Marshal(cfg)
}

// almExamples are the samples' profiles, without their namespace (the console creates an example
// in the namespace the user is in).
func almExamples(objs []*unstructured.Unstructured) (string, error) {
	var ex []map[string]any
	for _, u := range objs {
		if k := u.GetKind(); k != "MeshSecurityProfile" && k != "ClusterMeshSecurityProfile" {
			continue
		}
		c := u.DeepCopy()
		c.SetNamespace("")
		unstructured.RemoveNestedField(c.Object, "metadata", "annotations")
		ex = append(ex, c.Object)
	}
	if len(ex) == 0 {
		return "", fmt.Errorf("config/samples has no MeshSecurityProfile for alm-examples")
	}
	sort.Slice(ex, func(i, j int) bool {
		return fmt.Sprint(ex[i]["metadata"]) < fmt.Sprint(ex[j]["metadata"])
	})
	b, err := json.MarshalIndent(ex, "", "  ")
	return string(b), err
}

// descriptor is a field the console shows, with its OLM x-descriptors.
type descriptor struct {
	path, display string
	x             []string
}

var (
	specDescriptors = []descriptor{
		{"mesh", "Mesh", []string{"urn:alm:descriptor:com.tectonic.ui:select:Istio", "urn:alm:descriptor:com.tectonic.ui:select:Linkerd"}},
		{"enforcement", "Enforcement", []string{"urn:alm:descriptor:com.tectonic.ui:select:Enforce", "urn:alm:descriptor:com.tectonic.ui:select:Audit"}},
		{"trustDomain", "Trust domain", []string{"urn:alm:descriptor:com.tectonic.ui:text"}},
		{"adoptExisting", "Adopt existing objects", []string{"urn:alm:descriptor:com.tectonic.ui:booleanSwitch"}},
		{"mtls.mode", "mTLS mode", []string{"urn:alm:descriptor:com.tectonic.ui:select:Strict", "urn:alm:descriptor:com.tectonic.ui:select:Permissive", "urn:alm:descriptor:com.tectonic.ui:select:Disable"}},
		{"mtls.overrides", "mTLS overrides", []string{"urn:alm:descriptor:com.tectonic.ui:advanced"}},
		{"requestAuthentication", "JWT authentication", []string{"urn:alm:descriptor:com.tectonic.ui:advanced"}},
		{"authorization.defaultDeny", "Deny by default", []string{"urn:alm:descriptor:com.tectonic.ui:booleanSwitch"}},
		{"authorization.rules", "Authorization rules", []string{"urn:alm:descriptor:com.tectonic.ui:advanced"}},
		{"networkPolicy.defaultDeny", "NetworkPolicy default deny", nil},
		{"networkPolicy.allowDNS", "Allow DNS", []string{"urn:alm:descriptor:com.tectonic.ui:booleanSwitch"}},
		{"networkPolicy.allowMeshControlPlane", "Allow the mesh control plane", []string{"urn:alm:descriptor:com.tectonic.ui:booleanSwitch"}},
		{"networkPolicy.ingress", "Ingress rules", []string{"urn:alm:descriptor:com.tectonic.ui:advanced"}},
		{"networkPolicy.egress", "Egress rules", []string{"urn:alm:descriptor:com.tectonic.ui:advanced"}},
		{"certificates.minValidity", "Minimum certificate validity", []string{"urn:alm:descriptor:com.tectonic.ui:text"}},
	}
	// The cluster-wide floor shares the profile's body (spec) and adds whom it selects.
	clusterSpecDescriptors = append([]descriptor{
		{"namespaceSelector", "Namespace selector", []string{"urn:alm:descriptor:com.tectonic.ui:selector:core:v1:Namespace"}},
		{"excludeNamespaces", "Excluded namespaces", []string{"urn:alm:descriptor:com.tectonic.ui:advanced"}},
	}, specDescriptors...)
	clusterStatusDescriptors = []descriptor{
		{"conditions", "Conditions", []string{"urn:alm:descriptor:io.kubernetes.conditions"}},
		{"observedGeneration", "Observed generation", []string{"urn:alm:descriptor:text"}},
		{"matchedNamespaces", "Namespaces", []string{"urn:alm:descriptor:text"}},
		{"readyNamespaces", "Ready namespaces", []string{"urn:alm:descriptor:text"}},
		{"weakenedNamespaces", "Weakened namespaces", []string{"urn:alm:descriptor:text"}},
		{"namespaces", "Namespaces needing attention", nil},
	}
	statusDescriptors = []descriptor{
		{"conditions", "Conditions", []string{"urn:alm:descriptor:io.kubernetes.conditions"}},
		{"observedGeneration", "Observed generation", []string{"urn:alm:descriptor:text"}},
		{"resources", "Generated objects", nil},
		{"externalPolicies", "Weakening policies", nil},
		{"certificates", "CA certificates", nil},
		{"nearestCertificateExpiry", "Nearest certificate expiry", []string{"urn:alm:descriptor:text"}},
	}
)

// ownedCRD describes the CRD for OLM; every descriptor's description is the first paragraph of
// the field's description in the CRD schema (what `kubectl explain` shows), so the two cannot
// disagree, and a descriptor for a field the schema lacks fails the generation.
func ownedCRD(crd *apiextensionsv1.CustomResourceDefinition, resources []operatorsv1alpha1.APIResourceReference) (operatorsv1alpha1.CRDDescription, error) {
	var v *apiextensionsv1.CustomResourceDefinitionVersion
	for i := range crd.Spec.Versions {
		if crd.Spec.Versions[i].Storage {
			v = &crd.Spec.Versions[i]
		}
	}
	if v == nil || v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
		return operatorsv1alpha1.CRDDescription{}, fmt.Errorf("CRD %s has no stored version with a schema", crd.Name)
	}
	root := v.Schema.OpenAPIV3Schema
	display, specDescs, statusDescs := "Mesh Security Profile", specDescriptors, statusDescriptors
	if crd.Spec.Names.Kind == "ClusterMeshSecurityProfile" {
		display, specDescs, statusDescs = "Cluster Mesh Security Profile", clusterSpecDescriptors, clusterStatusDescriptors
	}
	d := operatorsv1alpha1.CRDDescription{
		Name:        crd.Name,
		Version:     v.Name,
		Kind:        crd.Spec.Names.Kind,
		DisplayName: display,
		Description: firstParagraph(root.Description),
		Resources:   resources,
	}
	for _, s := range specDescs {
		desc, err := fieldDescription(root, "spec."+s.path)
		if err != nil {
			return d, err
		}
		d.SpecDescriptors = append(d.SpecDescriptors, operatorsv1alpha1.SpecDescriptor{Path: s.path, DisplayName: s.display, Description: desc, XDescriptors: s.x})
	}
	for _, s := range statusDescs {
		desc, err := fieldDescription(root, "status."+s.path)
		if err != nil {
			return d, err
		}
		d.StatusDescriptors = append(d.StatusDescriptors, operatorsv1alpha1.StatusDescriptor{Path: s.path, DisplayName: s.display, Description: desc, XDescriptors: s.x})
	}
	return d, nil
}

func fieldDescription(root *apiextensionsv1.JSONSchemaProps, path string) (string, error) {
	s := root
	for _, p := range strings.Split(path, ".") {
		next, ok := s.Properties[p]
		if !ok {
			return "", fmt.Errorf("descriptor %s: the CRD schema has no field %s", path, p)
		}
		s = &next
	}
	return firstParagraph(s.Description), nil
}

func firstParagraph(s string) string {
	if i := strings.Index(s, "\n\n"); i >= 0 {
		s = s[:i]
	}
	return strings.Join(strings.Fields(s), " ")
}

// appVersion is the chart's appVersion: the one version of a release, for the chart, the image
// tag and the CSV.
func appVersion(root string) (semver.Version, error) {
	b, err := os.ReadFile(filepath.Join(root, "charts", "meshguard", "Chart.yaml"))
	if err != nil {
		return semver.Version{}, err
	}
	var c struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		return semver.Version{}, fmt.Errorf("charts/meshguard/Chart.yaml: %w", err)
	}
	v, err := semver.Parse(c.AppVersion)
	if err != nil {
		return semver.Version{}, fmt.Errorf("charts/meshguard/Chart.yaml: appVersion: %w", err)
	}
	return v, nil
}

// addManifest writes an object as bundle/manifests/<name>_<group>_<version>_<kind>.yaml, the
// file names operator-sdk gives them.
func addManifest(files Files, u *unstructured.Unstructured) error {
	gv := strings.ReplaceAll(u.GetAPIVersion(), "/", "_")
	name := fmt.Sprintf("%s_%s_%s.yaml", u.GetName(), gv, strings.ToLower(u.GetKind()))
	b, err := marshalClean(u.Object)
	if err != nil {
		return err
	}
	files[filepath.Join("bundle", "manifests", name)] = b
	return nil
}

func convert(u *unstructured.Unstructured, into any) error {
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into); err != nil {
		return fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return nil
}

// marshalClean writes YAML without the empty fields that Go types add (status, null
// creationTimestamps).
func marshalClean(obj any) ([]byte, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	delete(m, "status")
	dropNullTimestamps(m)
	return yaml.Marshal(m)
}

func dropNullTimestamps(v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if k == "creationTimestamp" && x == nil {
				delete(t, k)
				continue
			}
			dropNullTimestamps(x)
		}
		if m, ok := t["strategy"].(map[string]any); ok && len(m) == 0 {
			delete(t, "strategy")
		}
	case []any:
		for _, x := range t {
			dropNullTimestamps(x)
		}
	}
}

// Write writes the files under root and removes files of an earlier generation that are gone.
func Write(root string, files Files) error {
	existing, err := Existing(root)
	if err != nil {
		return err
	}
	for p := range existing {
		if _, ok := files[p]; !ok {
			if err := os.Remove(filepath.Join(root, p)); err != nil {
				return err
			}
		}
	}
	for p, b := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Existing reads the generated files as they are in the repository: everything under bundle/
// and bundle.Dockerfile.
func Existing(root string) (Files, error) {
	files := Files{}
	err := filepath.WalkDir(filepath.Join(root, "bundle"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		files[rel], err = os.ReadFile(p)
		return err
	})
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	if b, err := os.ReadFile(filepath.Join(root, "bundle.Dockerfile")); err == nil {
		files["bundle.Dockerfile"] = b
	} else if !os.IsNotExist(err) {
		return nil, err
	}
	return files, nil
}

// generatedResources is OLM's list of the kinds the operator creates for a profile: every kind
// render can emit (render.Kinds), each with its resource name (the plural) as its CRD declares it
// (Istio's CRDs from the istio.io/api module, Linkerd's from the linkerd-crds chart, test/crds), so
// that no plural is guessed from the kind ("authorizationpolicys"). NetworkPolicy is built in:
// Kubernetes serves it as networkpolicies (k8s.io/api networking/v1).
func generatedResources() ([]operatorsv1alpha1.APIResourceReference, error) {
	istio, err := testcrds.IstioCRDs()
	if err != nil {
		return nil, fmt.Errorf("Istio's CRDs: %w", err)
	}
	linkerd, err := testcrds.LinkerdCRDs()
	if err != nil {
		return nil, fmt.Errorf("Linkerd's CRDs: %w", err)
	}
	plural := map[schema.GroupKind]string{{Group: "networking.k8s.io", Kind: "NetworkPolicy"}: "networkpolicies"}
	for _, crd := range append(istio, linkerd...) {
		plural[schema.GroupKind{Group: crd.Spec.Group, Kind: crd.Spec.Names.Kind}] = crd.Spec.Names.Plural
	}
	var out []operatorsv1alpha1.APIResourceReference
	for _, gvk := range render.Kinds() {
		p, ok := plural[gvk.GroupKind()]
		if !ok {
			return nil, fmt.Errorf("no CRD declares %s: cannot name its resource", gvk.GroupKind())
		}
		out = append(out, operatorsv1alpha1.APIResourceReference{Name: p, Kind: gvk.Kind, Version: gvk.Version})
	}
	return out, nil
}
