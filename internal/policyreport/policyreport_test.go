package policyreport

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.yaml from the current output")

func load(t *testing.T, path string) *v1alpha1.MeshSecurityProfile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p := &v1alpha1.MeshSecurityProfile{}
	if err := yaml.UnmarshalStrict(b, p); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return p
}

func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, in := range inputs {
		if strings.HasSuffix(in, ".golden.yaml") {
			continue
		}
		n++
		t.Run(strings.TrimSuffix(filepath.Base(in), ".yaml"), func(t *testing.T) {
			got, err := yaml.Marshal(Build(load(t, in)))
			if err != nil {
				t.Fatal(err)
			}
			golden := strings.TrimSuffix(in, ".yaml") + ".golden.yaml"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if string(got) != string(want) {
				t.Errorf("%s differs from the output (-update rewrites it):\n%s", golden, got)
			}
		})
	}
	if n < 8 {
		t.Fatalf("only %d cases", n)
	}
}

// results maps rule to result for a built report.
func results(t *testing.T, report map[string]any) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, r := range report["results"].([]any) {
		m := r.(map[string]any)
		rule := m["rule"].(string)
		if _, dup := out[rule]; dup {
			t.Fatalf("rule %s has two results", rule)
		}
		out[rule] = m["result"].(string)
	}
	return out
}

func TestEachClassOfFindingIsOneResultUnderItsRule(t *testing.T) {
	cases := []struct {
		file string
		want map[string]string
	}{
		{"all-hold", map[string]string{RuleApplied: Pass, RuleInSync: Pass, RuleNotWeakened: Pass, RuleEnforceable: Pass, RuleCertificates: Pass, RuleAtFloor: Pass}},
		{"audit-drifted", map[string]string{RuleApplied: Fail, RuleInSync: Fail, RuleNotWeakened: Pass, RuleCertificates: Pass}},
		{"weakened", map[string]string{RuleApplied: Pass, RuleInSync: Pass, RuleNotWeakened: Fail, RuleCertificates: Pass}},
		{"unenforceable", map[string]string{RuleApplied: Pass, RuleInSync: Pass, RuleNotWeakened: Pass, RuleEnforceable: Fail}},
		{"certificate-expiring", map[string]string{RuleApplied: Pass, RuleInSync: Pass, RuleNotWeakened: Pass, RuleCertificates: Warn}},
		{"certificate-expired", map[string]string{RuleApplied: Pass, RuleInSync: Pass, RuleNotWeakened: Pass, RuleCertificates: Fail}},
		{"expectation-not-met-held-at-floor", map[string]string{RuleApplied: Pass, RuleInSync: Pass, RuleNotWeakened: Pass, RuleExpectations: Fail, RuleAtFloor: Warn}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			r := Build(load(t, filepath.Join("testdata", c.file+".yaml")))
			NewWithT(t).Expect(results(t, r)).To(Equal(c.want))
		})
	}
}

func TestTheWeakeningObjectsAreTheResultsResources(t *testing.T) {
	g := NewWithT(t)
	r := Build(load(t, "testdata/weakened.yaml"))
	for _, x := range r["results"].([]any) {
		m := x.(map[string]any)
		if m["rule"] != RuleNotWeakened {
			continue
		}
		var names []string
		for _, res := range m["resources"].([]any) {
			ref := res.(map[string]any)
			names = append(names, ref["kind"].(string)+" "+ref["namespace"].(string)+"/"+ref["name"].(string))
		}
		g.Expect(names).To(Equal([]string{"MeshSecurityProfile shop/baseline", "AuthorizationPolicy shop/allow-all", "PeerAuthentication istio-system/permissive"}))
		g.Expect(m["severity"]).To(Equal(SeverityHigh))
		return
	}
	t.Fatal("no not-weakened result")
}

func TestAFindingThatClearsTurnsIntoAPass(t *testing.T) {
	g := NewWithT(t)
	p := load(t, "testdata/weakened.yaml")
	before := Build(p)
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == v1alpha1.ConditionEffective {
			p.Status.Conditions[i].Status, p.Status.Conditions[i].Reason, p.Status.Conditions[i].Message = "True", v1alpha1.ReasonEffective, "no object outside meshguard weakens the profile"
		}
	}
	p.Status.ExternalPolicies = nil
	after := Build(p)
	g.Expect(results(t, before)[RuleNotWeakened]).To(Equal(Fail))
	g.Expect(results(t, after)[RuleNotWeakened]).To(Equal(Pass))
	g.Expect(after["summary"]).To(HaveKeyWithValue("fail", int64(0)))
	g.Expect(yaml.Marshal(after)).NotTo(ContainSubstring("allow-all"), "the weakening object is no longer named")
}

func TestTheSameStatusGivesTheSameReport(t *testing.T) {
	g := NewWithT(t)
	p := load(t, "testdata/expectation-not-met-held-at-floor.yaml")
	a, _ := yaml.Marshal(Build(p))
	b, _ := yaml.Marshal(Build(p.DeepCopy()))
	g.Expect(string(a)).To(Equal(string(b)))
	// The report is valid unstructured content (DeepCopy panics on types JSON cannot hold).
	u := &unstructured.Unstructured{Object: Build(p)}
	g.Expect(u.DeepCopy().GroupVersionKind()).To(Equal(GroupVersionKind))
	g.Expect(u.GetName()).To(Equal("meshguard-baseline"))
	g.Expect(u.GetLabels()).To(HaveKeyWithValue(v1alpha1.LabelManagedBy, v1alpha1.ManagedByValue))
}

func TestNoReportForAProfileThatDoesNotGovern(t *testing.T) {
	NewWithT(t).Expect(Build(load(t, "testdata/profile-conflict.yaml"))).To(BeNil())
	NewWithT(t).Expect(Build(&v1alpha1.MeshSecurityProfile{})).To(BeNil(), "nor before meshguard reported")
}
