package controllers_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"

	"github.com/meshguard/meshguard/test/fixtures"
)

// The API server itself refuses bad profiles (OpenAPI schema and CEL rules in the CRD), with a
// message that names the field. The same fixtures run through `manager render`'s offline validation.
var _ = Describe("Admission of profiles by the API server", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	for _, c := range fixtures.InvalidProfiles {
		It("refuses "+c.Name+", naming "+c.WantField, func() {
			u, err := fixtures.Object(c.YAML, ns)
			Expect(err).NotTo(HaveOccurred())
			err = k8s.Create(ctx, u, client.FieldValidation("Strict"))
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring(c.WantField))

			profiles := &v1alpha1.MeshSecurityProfileList{}
			Expect(k8s.List(ctx, profiles, client.InNamespace(ns))).To(Succeed())
			Expect(profiles.Items).To(BeEmpty(), "nothing is stored")
		})
	}
	for _, c := range fixtures.ValidProfiles {
		It("accepts "+c.Name, func() {
			u, err := fixtures.Object(c.YAML, ns)
			Expect(err).NotTo(HaveOccurred())
			Expect(k8s.Create(ctx, u, client.FieldValidation("Strict"), client.DryRunAll)).To(Succeed())
		})
	}
})
