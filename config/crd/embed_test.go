package crd

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsvalidation "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
)

func TestTheEmbeddedCRDDescribesMeshSecurityProfile(t *testing.T) {
	g := NewWithT(t)
	c, err := MeshSecurityProfile()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(c.Name).To(Equal(MeshSecurityProfileName))
	g.Expect(c.Spec.Group).To(Equal("security.meshguard.dev"))
	g.Expect(c.Spec.Names.Kind).To(Equal("MeshSecurityProfile"))
	g.Expect(c.Spec.Scope).To(Equal(apiextensionsv1.NamespaceScoped))
	g.Expect(c.Spec.Versions).To(HaveLen(1))
	g.Expect(c.Spec.Versions[0].Name).To(Equal("v1alpha1"))
	g.Expect(c.Spec.Versions[0].Schema).NotTo(BeNil())
	g.Expect(MeshSecurityProfileYAML()).To(ContainSubstring("name: " + MeshSecurityProfileName))
}

func TestEachCallReturnsACopyTheCallerMayModify(t *testing.T) {
	g := NewWithT(t)
	a, err := MeshSecurityProfile()
	g.Expect(err).NotTo(HaveOccurred())
	a.Spec.Group = "changed"
	b, err := MeshSecurityProfile()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(b.Spec.Group).To(Equal("security.meshguard.dev"))

	all, err := All()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(all).NotTo(BeEmpty())
	g.Expect(all[0]).NotTo(BeIdenticalTo(b))
}

// TestTheAPIServerAcceptsTheCRD runs the API server's own CRD validation on the embedded manifest:
// a structural schema, defaults that pass their own schema, and CEL rules that compile and stay
// within the per-rule and per-CRD cost budgets. A CRD that fails here cannot be installed.
func TestTheAPIServerAcceptsTheCRD(t *testing.T) {
	all, err := All()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range all {
		t.Run(c.Name, func(t *testing.T) {
			g := NewWithT(t)
			apiextensionsv1.SetObjectDefaults_CustomResourceDefinition(c)
			internal := &apiextensions.CustomResourceDefinition{}
			g.Expect(apiextensionsv1.Convert_v1_CustomResourceDefinition_To_apiextensions_CustomResourceDefinition(c, internal, nil)).To(Succeed())
			errs := apiextensionsvalidation.ValidateCustomResourceDefinition(context.Background(), internal)
			g.Expect(errs).To(BeEmpty(), "%v", errs.ToAggregate())

			// With one schema for all versions the internal CRD keeps it in spec.validation.
			schemas := []*apiextensions.CustomResourceValidation{internal.Spec.Validation}
			for _, v := range internal.Spec.Versions {
				schemas = append(schemas, v.Schema)
			}
			for _, s := range schemas {
				if s == nil {
					continue
				}
				_, err := structuralschema.NewStructural(s.OpenAPIV3Schema)
				g.Expect(err).NotTo(HaveOccurred())
			}
		})
	}
}

func TestTheEmbeddedCRDsDescribeTheClusterScopedFloor(t *testing.T) {
	g := NewWithT(t)
	c, err := ClusterMeshSecurityProfile()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(c.Spec.Names.Kind).To(Equal("ClusterMeshSecurityProfile"))
	g.Expect(c.Spec.Names.ShortNames).To(ConsistOf("cmsp"))
	g.Expect(c.Spec.Scope).To(Equal(apiextensionsv1.ClusterScoped))
	spec := c.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
	g.Expect(spec.Required).To(ContainElement("namespaceSelector"), "an explicit {} is the only way to select every namespace")
	msp, err := MeshSecurityProfile()
	g.Expect(err).NotTo(HaveOccurred())
	mspSpec := msp.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
	g.Expect(spec.XValidations).To(ContainElements(mspSpec.XValidations), "the shared body carries the namespaced kind's CEL rules")
	g.Expect(spec.XValidations).To(HaveLen(len(mspSpec.XValidations)+1), "and one of its own: no expectations on a floor")
	for name, prop := range mspSpec.Properties {
		g.Expect(spec.Properties).To(HaveKeyWithValue(name, prop), "spec.%s is the namespaced kind's own schema", name)
	}
	var columns []string
	for _, col := range c.Spec.Versions[0].AdditionalPrinterColumns {
		if col.Priority == 0 {
			columns = append(columns, col.Name)
		}
	}
	g.Expect(columns).To(Equal([]string{"Namespaces", "Ready", "Weakened", "Age"}))
}
