package packaging

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	"github.com/operator-framework/api/pkg/manifests"
	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	"github.com/operator-framework/api/pkg/validation"
	"github.com/operator-framework/api/pkg/validation/errors"
	interfaces "github.com/operator-framework/api/pkg/validation/interfaces"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/meshguard/meshguard/hack/bundle/kustomize"
	bundle "github.com/meshguard/meshguard/hack/bundle/olmbundle"
	"github.com/meshguard/meshguard/internal/render"
)

// TestTheBundleIsUpToDate regenerates the bundle and compares it with bundle/ and
// bundle.Dockerfile, as the CRD is checked against the API types: run `make bundle` after a change
// of config/.
func TestTheBundleIsUpToDate(t *testing.T) {
	want, err := bundle.Generate(root)
	if err != nil {
		t.Fatal(err)
	}
	got, err := bundle.Existing(root)
	if err != nil {
		t.Fatal(err)
	}
	for p, b := range want {
		if g, ok := got[p]; !ok {
			t.Errorf("%s is missing: run `make bundle`", p)
		} else if !bytes.Equal(g, b) {
			t.Errorf("%s is stale: run `make bundle`", p)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s is not generated any more: run `make bundle`", p)
		}
	}
}

// TestTheBundlePassesOperatorFrameworksValidators loads bundle/ with operator-framework/api's
// bundle loader and runs its validators (the library: operator-verify's CLI exits 0 on errors):
// the default bundle validators, OperatorHub's (v2, standard capabilities and categories) and good
// practices. Any error fails, and so does any warning, listed with its validator.
func TestTheBundlePassesOperatorFrameworksValidators(t *testing.T) {
	g := NewWithT(t)
	b, err := manifests.GetBundleFromDir(filepath.Join(root, "bundle"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(b.CSV).NotTo(BeNil())
	g.Expect(b.V1CRDs).To(HaveLen(2), "MeshSecurityProfile and ClusterMeshSecurityProfile")
	for _, r := range validate(b) {
		for _, e := range r.Errors {
			t.Errorf("%s: error: %s", r.Name, e)
		}
		for _, w := range r.Warnings {
			t.Errorf("%s: warning: %s", r.Name, w)
		}
	}

	t.Run("and the same validators find a CSV without provider, maintainers' emails and icon", func(t *testing.T) {
		g := NewWithT(t)
		broken, err := manifests.GetBundleFromDir(filepath.Join(root, "bundle"))
		g.Expect(err).NotTo(HaveOccurred())
		broken.CSV.Spec.Provider = operatorsv1alpha1.AppLink{}
		broken.CSV.Spec.Maintainers = []operatorsv1alpha1.Maintainer{{Name: "someone"}}
		broken.CSV.Spec.Icon = nil
		var errs []string
		for _, r := range validate(broken) {
			for _, e := range r.Errors {
				errs = append(errs, e.Error())
			}
		}
		g.Expect(errs).To(ContainElements(ContainSubstring("Provider.Name"), ContainSubstring("Maintainers")))
	})
}

// validate runs operator-framework/api's validators: the default bundle validators, OperatorHub's
// (v2, standard capabilities and categories), good practices, bundle objects and deprecated APIs.
func validate(b *manifests.Bundle) []errors.ManifestResult {
	validators := append(interfaces.Validators{}, validation.DefaultBundleValidators...)
	validators = append(validators,
		validation.OperatorHubV2Validator,
		validation.StandardCapabilitiesValidator,
		validation.StandardCategoriesValidator,
		validation.GoodPracticesValidator,
		validation.ObjectValidator,
		validation.AlphaDeprecatedAPIsValidator,
	)
	// The optional values travel among the objects, as operator-sdk passes them.
	objs := append(b.ObjectsToValidate(), map[string]string{"k8s-version": bundle.MinKubeVersion})
	return validators.Validate(objs...)
}

// TestTheCSVDescribesWhatConfigDefaultDeploys checks the generated CSV's content that no validator
// knows: the Deployment and RBAC are config/default's, the examples are the samples, the install
// mode is AllNamespaces only, and no CA Secret rule lost its resourceNames.
func TestTheCSVDescribesWhatConfigDefaultDeploys(t *testing.T) {
	g := NewWithT(t)
	b, err := manifests.GetBundleFromDir(filepath.Join(root, "bundle"))
	g.Expect(err).NotTo(HaveOccurred())
	csv := b.CSV
	g.Expect(csv.Spec.MinKubeVersion).To(Equal(bundle.MinKubeVersion))
	g.Expect(csv.Spec.Icon).To(HaveLen(1))
	g.Expect(csv.Spec.Description).To(ContainSubstring("MeshSecurityProfile"))
	g.Expect(csv.Spec.InstallModes).To(ContainElement(operatorsv1alpha1.InstallMode{Type: operatorsv1alpha1.InstallModeTypeAllNamespaces, Supported: true}))
	for _, m := range csv.Spec.InstallModes {
		if m.Type != operatorsv1alpha1.InstallModeTypeAllNamespaces {
			g.Expect(m.Supported).To(BeFalse(), "meshguard watches every namespace")
		}
	}
	owned := csv.Spec.CustomResourceDefinitions.Owned
	g.Expect(owned).To(ConsistOf(HaveField("Kind", "ClusterMeshSecurityProfile"), HaveField("Kind", "MeshSecurityProfile")))
	for _, o := range owned {
		g.Expect(o.SpecDescriptors).NotTo(BeEmpty())
		g.Expect(o.StatusDescriptors).To(ContainElement(HaveField("Path", "conditions")))
		for _, d := range o.SpecDescriptors {
			g.Expect(d.Description).NotTo(BeEmpty(), "%s spec descriptor %s has the CRD's description", o.Kind, d.Path)
		}
		// The resources are every kind render emits, each named by its CRD's plural.
		g.Expect(o.Resources).To(HaveLen(len(render.Kinds())))
		g.Expect(o.Resources).To(ContainElements(
			operatorsv1alpha1.APIResourceReference{Kind: "AuthorizationPolicy", Version: "v1", Name: "authorizationpolicies"},
			operatorsv1alpha1.APIResourceReference{Kind: "AuthorizationPolicy", Version: "v1alpha1", Name: "authorizationpolicies"},
			operatorsv1alpha1.APIResourceReference{Kind: "NetworkPolicy", Version: "v1", Name: "networkpolicies"},
			operatorsv1alpha1.APIResourceReference{Kind: "HTTPRoute", Version: "v1beta3", Name: "httproutes"}))
		for _, r := range o.Resources {
			g.Expect(r.Name).NotTo(HaveSuffix("ys"), "%s: a plural guessed from the kind", r.Kind)
		}
	}

	var examples []map[string]any
	g.Expect(json.Unmarshal([]byte(csv.Annotations["alm-examples"]), &examples)).To(Succeed())
	samples, err := kustomize.Build(filepath.Join(root, "config", "samples"))
	g.Expect(err).NotTo(HaveOccurred())
	profiles := 0
	for _, s := range samples {
		if k := s.GetKind(); k == "MeshSecurityProfile" || k == "ClusterMeshSecurityProfile" {
			profiles++
		}
	}
	g.Expect(examples).To(HaveLen(profiles), "alm-examples holds every sample profile")

	dep := deployment(t)
	strategy := csv.Spec.InstallStrategy.StrategySpec
	g.Expect(strategy.DeploymentSpecs).To(HaveLen(1))
	spec := strategy.DeploymentSpecs[0].Spec
	g.Expect(spec.Template.Spec.SecurityContext).To(Equal(dep.Spec.Template.Spec.SecurityContext))
	g.Expect(spec.Template.Spec.Containers[0].Args).To(Equal(dep.Spec.Template.Spec.Containers[0].Args))
	g.Expect(spec.Template.Spec.Containers[0].Image).To(Equal(csv.Annotations["containerImage"]))
	g.Expect(*spec.Replicas).To(Equal(*dep.Spec.Replicas))

	for _, p := range strategy.ClusterPermissions {
		for _, r := range p.Rules {
			for _, res := range r.Resources {
				if res == "secrets" {
					g.Expect(r.ResourceNames).NotTo(BeEmpty(), "Secrets only by name")
					g.Expect(r.ResourceNames).To(HaveEach(BeElementOf("cacerts", "istio-ca-secret", "linkerd-identity-issuer")))
					g.Expect(r.Verbs).To(ConsistOf("get", "list", "watch"))
				}
			}
			g.Expect(r.Verbs).NotTo(ContainElement("*"))
		}
	}
}

// TestTheCSVDeploymentIsAcceptedByTheAPIServer sends the CSV's Deployment and the bundle's other
// manifests to the local kube-apiserver as a server-side dry-run in the suggested namespace,
// where OLM would create them.
func TestTheCSVDeploymentIsAcceptedByTheAPIServer(t *testing.T) {
	g := NewWithT(t)
	b, err := manifests.GetBundleFromDir(filepath.Join(root, "bundle"))
	g.Expect(err).NotTo(HaveOccurred())
	ns := b.CSV.Annotations["operatorframework.io/suggested-namespace"]
	g.Expect(ns).NotTo(BeEmpty())
	ensureNamespace(t, ns, map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
	var objs []*unstructured.Unstructured
	for _, d := range b.CSV.Spec.InstallStrategy.StrategySpec.DeploymentSpecs {
		u := &unstructured.Unstructured{}
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&d.Spec)
		g.Expect(err).NotTo(HaveOccurred())
		u.Object = map[string]any{"spec": m}
		u.SetAPIVersion("apps/v1")
		u.SetKind("Deployment")
		u.SetName(d.Name)
		u.SetNamespace(ns)
		objs = append(objs, u)
	}
	for _, o := range b.Objects {
		if o.GetKind() == "ClusterServiceVersion" {
			continue // OLM's own kind; its Deployment is sent above
		}
		o := o.DeepCopy()
		if o.GetKind() != "ClusterRole" && o.GetKind() != "CustomResourceDefinition" {
			o.SetNamespace(ns)
		}
		objs = append(objs, o)
	}
	for _, err := range dryRunApply(t, objs) {
		t.Error(err)
	}
	t.Logf("accepted: %s", kinds(objs))
}
