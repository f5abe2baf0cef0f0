package cli

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// ordersSample is the sample with the seed's expectations.
var ordersSample = filepath.Join("..", "..", "config", "samples", "security_v1alpha1_meshsecurityprofile_orders.yaml")

// openBackend is someone else's pair of policies opening the backend to everyone.
const openBackend = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-all, namespace: orders}
spec: {podSelector: {}, ingress: [{}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: backend-open, namespace: orders}
spec:
  selector: {matchLabels: {app: backend}}
  rules: [{}]
`

func TestExplainExpectationsOfTheSampleAreAllMetOffline(t *testing.T) {
	g := NewWithT(t)
	r := explainRun(t, "", "--expectations", "-f", ordersSample)
	g.Expect(r.code).To(Equal(ExplainAllowed), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	g.Expect(r.stdout).To(ContainSubstring("orders/baseline: ExpectationsMet=True (AllMet): 5 of 5 expectations met"))
	g.Expect(r.stdout).To(MatchRegexp(`orders/baseline\s+my-service-without-jwt\s+Denied\s+Denied\s+yes\s+authorization\s+AuthorizationPolicy orders/baseline-require-jwt\[0\]`))
	g.Expect(r.stdout).NotTo(ContainSubstring("(foreign)"))
}

func TestExplainExpectationsFailWithExitThreeNamingTheForeignObject(t *testing.T) {
	g := NewWithT(t)
	other := writeFile(t, t.TempDir(), "other.yaml", openBackend)
	r := explainRun(t, "", "--expectations", "-f", ordersSample, "-f", other)
	g.Expect(r.code).To(Equal(ExplainDenied), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	g.Expect(r.stdout).To(ContainSubstring("ExpectationsMet=False (ExpectationNotMet): expectation frontend-to-backend-other-port wants Denied, got Allowed (decided by NetworkPolicy orders/allow-all[0] (foreign) at the ingress NetworkPolicy layer"))
	g.Expect(r.stdout).To(MatchRegexp(`shop-to-backend\s+Denied\s+Allowed\s+no\s+ingress NetworkPolicy\s+NetworkPolicy orders/allow-all\[0\] \(foreign\)`))

	r = explainRun(t, "", "--expectations", "-f", ordersSample, "-f", other, "-o", "json")
	g.Expect(r.code).To(Equal(ExplainDenied))
	var out []profileExpectations
	g.Expect(json.Unmarshal([]byte(r.stdout), &out)).To(Succeed(), r.stdout)
	g.Expect(out).To(HaveLen(1))
	g.Expect(out[0].Reason).To(Equal(v1alpha1.ReasonExpectationNotMet))
	g.Expect(out[0].Expectations).To(HaveLen(5))
	met := 0
	for _, x := range out[0].Expectations {
		if x.Met {
			met++
		}
	}
	g.Expect(met).To(Equal(3), "frontend-to-backend, my-service-without-jwt and outside-to-backend (plaintext, refused by STRICT mTLS) still hold; the other two flows to the backend are open")
	for _, x := range out[0].Expectations {
		if x.Name == "outside-to-backend" {
			g.Expect(x.Layer).To(Equal("mTLS"))
		}
	}
}

func TestExplainExpectationsRefusesRequestFlagsAndProfilesWithoutExpectations(t *testing.T) {
	cases := map[string]struct {
		args []string
		err  string
	}{
		"a request flag":         {[]string{"--expectations", "-f", ordersSample, "--from", "a/b"}, "--from describes one request"},
		"no -f":                  {[]string{"--expectations", "--kubeconfig", "kc"}, "--expectations needs the profiles with -f"},
		"no profile with any":    {[]string{"--expectations", "-f", shopSample}, "no profile among the inputs has spec.expectations"},
		"an invalid expectation": {[]string{"--expectations", "-f", "-"}, "spec.expectations[0].from"},
	}
	stdin := "apiVersion: security.meshguard.dev/v1alpha1\nkind: MeshSecurityProfile\nmetadata: {name: p, namespace: a}\nspec:\n  expectations:\n  - {name: x, from: {namespace: b, ipBlock: 10.0.0.1}, to: {podLabels: {}, port: 80}, want: Denied}\n"
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			r := explainRun(t, stdin, tc.args...)
			g.Expect(r.code).To(Equal(ExplainError), "stdout: %s", r.stdout)
			g.Expect(r.stdout).To(BeEmpty())
			g.Expect(r.stderr).To(ContainSubstring(tc.err))
		})
	}
}

func TestExplainExpectationsLiveAddsTheClustersPoliciesButNotTheProfilesAppliedOnes(t *testing.T) {
	g := NewWithT(t)
	var objs []*unstructured.Unstructured
	for _, m := range []string{`
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: baseline-default-deny
  namespace: orders
  labels: {app.kubernetes.io/managed-by: meshguard, security.meshguard.dev/profile: baseline}
spec: {podSelector: {}, policyTypes: [Ingress]}
`, `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-web, namespace: istio-system}
spec: {action: DENY, rules: [{from: [{source: {principals: ["cluster.local/ns/frontend/sa/web"]}}]}]}
`} {
		u := &unstructured.Unstructured{}
		g.Expect(yaml.Unmarshal([]byte(m), &u.Object)).To(Succeed())
		objs = append(objs, u)
	}
	f := &fakeReader{objs: objs}
	var out, errOut bytes.Buffer
	code := runExplain([]string{"--expectations", "-f", ordersSample, "--kubeconfig", "kc"}, nil, &out, &errOut,
		func(string, string) (ClusterReader, error) { return f, nil })
	g.Expect(code).To(Equal(ExplainDenied), "stdout: %s\nstderr: %s", out.String(), errOut.String())
	g.Expect(f.asked).To(Equal([]string{"orders", "frontend", "shop", "istio-system"}))
	g.Expect(out.String()).To(ContainSubstring("expectation frontend-to-backend wants Allowed, got Denied (decided by AuthorizationPolicy istio-system/deny-web[0] (foreign) at the authorization layer"))
	g.Expect(out.String()).NotTo(ContainSubstring("baseline-default-deny (foreign)"), "the applied objects of the profile are replaced by its render")
	g.Expect(out.String()).To(ContainSubstring("note: Server.policy.linkerd.io is not installed"))
}
