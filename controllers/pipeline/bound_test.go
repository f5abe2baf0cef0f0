package pipeline

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

func TestBoundedKeepsWhatNeedsAttentionFirstAndCountsTheRest(t *testing.T) {
	g := NewWithT(t)
	list := []int{1, 2, 3, 4, 5, 6}
	odd := func(i int) bool { return i%2 == 1 }
	out, left := bounded(list, 4, odd)
	g.Expect(out).To(Equal([]int{1, 3, 5, 2}))
	g.Expect(left).To(Equal(int32(2)))

	out, left = bounded(list, 10, odd)
	g.Expect(out).To(Equal(list), "within the bound: untouched, in order")
	g.Expect(left).To(BeZero())

	out, left = bounded(list, 2, nil)
	g.Expect(out).To(Equal([]int{1, 2}))
	g.Expect(left).To(Equal(int32(4)))
}

func TestAStatusWithFiveHundredWeakeningPoliciesStaysSmall(t *testing.T) {
	g := NewWithT(t)
	p := &v1alpha1.MeshSecurityProfile{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "baseline", Generation: 1}}
	o := &Observation{}
	long := strings.Repeat("x", 2000)
	for i := range 500 {
		o.external = append(o.external, v1alpha1.ExternalPolicy{APIVersion: "security.istio.io/v1", Kind: "AuthorizationPolicy",
			Name: fmt.Sprintf("allow-everything-%03d", i), Weakens: "allows every request to every workload " + long})
	}
	for i := range 300 {
		row := v1alpha1.ResourceStatus{APIVersion: "security.istio.io/v1", Kind: "AuthorizationPolicy",
			Name: fmt.Sprintf("baseline-rule-%03d", i), State: v1alpha1.ResourceInSync}
		if i >= 250 && i < 280 { // rows in trouble carry a message, as long as it gets
			row.State, row.Message = v1alpha1.ResourceConflict, long
		}
		o.Rows = append(o.Rows, childResult{row: row})
	}
	ApplyStatus(p, o)

	b, err := json.Marshal(p)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(len(b)).To(BeNumerically("<", 64*1024))
	g.Expect(p.Status.ExternalPolicies).To(HaveLen(maxExternalRows))
	g.Expect(p.Status.Resources).To(HaveLen(maxResourceRows))
	g.Expect(p.Status.Resources[0].Name).To(Equal("baseline-rule-250"), "the rows in trouble are kept, ahead of the others")
	g.Expect(p.Status.Resources[29].Name).To(Equal("baseline-rule-279"))
	g.Expect(p.Status.Resources[0].Message).To(HaveLen(maxRowMessage), "the first messages keep 1 KiB")
	g.Expect(p.Status.Resources[29].Message).To(HaveLen(minRowMessage), "once the list's budget is spent, 128 bytes")
	g.Expect(p.Status.Omitted).To(Equal(&v1alpha1.OmittedRows{Resources: 300 - maxResourceRows, ExternalPolicies: 500 - maxExternalRows}))

	o.external, o.Rows = o.external[:1], o.Rows[:1]
	ApplyStatus(p, o)
	g.Expect(p.Status.Omitted).To(BeNil(), "nothing left out: no count")
}
