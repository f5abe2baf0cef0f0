package render

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/util/validation"
)

func TestChildName(t *testing.T) {
	long63 := strings.Repeat("p", 50) + "-profile-name"
	rule40 := "frontend-reads-the-api-with-long-name-01"
	cases := []struct {
		name    string
		profile string
		parts   []string
		want    string
	}{
		{"a short name is the profile name and the parts joined with dashes", "baseline", []string{"rule", "web"}, "baseline-rule-web"},
		{"a name of exactly 63 characters is kept as it is", strings.Repeat("a", 58), []string{"mtls"}, strings.Repeat("a", 58) + "-mtls"},
		{"a long profile name is cut first so that the rule name stays readable", long63, []string{"rule", "web"},
			strings.Repeat("p", 45) + "-rule-web-" + hash8(long63+"-rule-web")},
		{"the profile name keeps 8 characters and then the parts are cut", long63, []string{"ingress", rule40 + "-and-more"},
			"pppppppp-ingress-frontend-reads-the-api-with-long-name-" + hash8(long63+"-ingress-"+rule40+"-and-more")},
		{"a cut that ends in a dash drops the dash", strings.Repeat("a", 51) + "-" + strings.Repeat("b", 11), []string{"x"},
			strings.Repeat("a", 51) + "-x-" + hash8(strings.Repeat("a", 51)+"-"+strings.Repeat("b", 11)+"-x")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := NewWithT(t)
			got := ChildName(c.profile, c.parts...)
			g.Expect(got).To(Equal(c.want))
			g.Expect(len(got)).To(BeNumerically("<=", MaxNameLength))
			g.Expect(validation.IsDNS1123Label(got)).To(BeEmpty(), "a valid DNS label")
			g.Expect(ChildName(c.profile, c.parts...)).To(Equal(got), "deterministic")
		})
	}
}

func TestChildNamesOfRulesThatShareTheirStartDiffer(t *testing.T) {
	g := NewWithT(t)
	profile := strings.Repeat("p", 63)
	a := ChildName(profile, "rule", "frontend-reads-the-api-with-long-name-01")
	b := ChildName(profile, "rule", "frontend-reads-the-api-with-long-name-02")
	g.Expect(a).NotTo(Equal(b))
	g.Expect(a[:len(a)-9]).NotTo(Equal(b[:len(b)-9]), "the readable parts differ too")
}

// hash8 is the first 8 hex digits of the SHA-256 of s, computed here independently of ChildName.
func hash8(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:8]
}
