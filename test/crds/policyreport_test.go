package crds

import (
	"path/filepath"
	"runtime"
	"testing"

	. "github.com/onsi/gomega"
)

func TestThePolicyReportCRDsAreKyvernosV1alpha2(t *testing.T) {
	g := NewWithT(t)
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	v, err := KyvernoVersion(root)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v).To(HavePrefix("v1."))
	got, err := PolicyReportCRDs(root)
	g.Expect(err).NotTo(HaveOccurred())
	served := map[string][]string{}
	for _, c := range got {
		for _, ver := range c.Spec.Versions {
			if ver.Served {
				served[c.Name] = append(served[c.Name], ver.Name)
			}
		}
	}
	g.Expect(served).To(HaveKeyWithValue("policyreports.wgpolicyk8s.io", ContainElement("v1alpha2")))
	g.Expect(served).To(HaveKeyWithValue("clusterpolicyreports.wgpolicyk8s.io", ContainElement("v1alpha2")))
}
