package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/internal/explain"
)

// shopSample is the shop profile of config/samples: strict mTLS, default-deny authorization
// with web-reads-api, and NetworkPolicies allowing frontend/web → backend:8080.
var shopSample = filepath.Join("..", "..", "config", "samples", "security_v1alpha1_meshsecurityprofile_shop.yaml")

func explainRun(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := runExplain(args, strings.NewReader(stdin), &out, &errOut, func(string, string) (ClusterReader, error) {
		t.Fatal("no cluster in this test")
		return nil, nil
	})
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

func TestExplainOfflineAnswersLayerByLayerWithExitCodes(t *testing.T) {
	cases := []struct {
		name     string
		args     []string
		code     int
		contains []string
	}{
		{"web reading the API is stopped by the ingress default deny, which the table names",
			[]string{"--from", "frontend/web", "--from-labels", "app=web", "--to-labels", "app=api", "--port", "8080", "--method", "GET", "--path", "/api/items"},
			ExplainDenied, []string{"ingress NetworkPolicy", "NetworkPolicy shop/baseline-default-deny", "Result: Denied by the ingress NetworkPolicy layer",
				"AuthorizationPolicy shop/baseline-rule-web-reads-api[0]"}},
		{"web reaching the backend on 8080 passes the NetworkPolicies but not the default-deny authorization",
			[]string{"--from", "frontend/web", "--from-labels", "app=web", "--from-ip", "10.244.0.9", "--to-labels", "app=backend", "--port", "8080"},
			ExplainDenied, []string{"NetworkPolicy shop/baseline-ingress-frontend-to-backend[0]", "AuthorizationPolicy shop/baseline-default-deny", "Denied by the authorization layer"}},
		{"an unmeshed source is refused by strict mTLS",
			[]string{"--from-namespace", "frontend", "--from-labels", "app=web", "--from-ip", "10.244.0.9", "--from-unmeshed", "--to-labels", "app=backend", "--port", "8080"},
			ExplainDenied, []string{"PeerAuthentication shop/baseline-mtls", "mode STRICT"}},
		{"allowDNS lets a pod of the namespace reach kube-dns on UDP 53",
			[]string{"--from", "shop/api", "--from-labels", "app=api", "--to-namespace", "kube-system", "--to-labels", "k8s-app=kube-dns", "--port", "53", "--protocol", "UDP", "--to-unmeshed"},
			ExplainAllowed, []string{"NetworkPolicy shop/baseline-allow-dns[0]", "Result: Allowed"}},
		{"source labels not given: the egress default deny selects every pod anyway, so the answer stands",
			[]string{"--from", "shop/api", "--to-namespace", "frontend", "--to-labels", "app=web", "--port", "80", "--to-unmeshed"},
			ExplainDenied, []string{"NetworkPolicy shop/baseline-default-deny", "Denied by the egress NetworkPolicy layer"}},
		{"source labels not given and a DNS rule for every pod: allowed",
			[]string{"--from", "shop/api", "--to-namespace", "kube-system", "--to-labels", "k8s-app=kube-dns", "--port", "53", "--protocol", "UDP", "--to-unmeshed"},
			ExplainAllowed, []string{"NetworkPolicy shop/baseline-allow-dns[0]"}},
		{"source labels not given and only a rule on app=web could admit it: undetermined (exit 4)",
			[]string{"--from", "frontend/web", "--from-ip", "10.244.0.9", "--to-labels", "app=backend", "--port", "8080", "--mesh", "None"},
			ExplainUnknown, []string{"the labels of the pod in frontend were not given", "Result: Undetermined"}},
		{"with --mesh None only the NetworkPolicy layers answer",
			[]string{"--from", "frontend/web", "--to-labels", "app=api", "--port", "8080", "--mesh", "None"},
			ExplainDenied, []string{"Mesh: none (NetworkPolicy layers only)", "Denied by the ingress NetworkPolicy layer"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			r := explainRun(t, "", append([]string{"-f", shopSample}, tc.args...)...)
			g.Expect(r.code).To(Equal(tc.code), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
			for _, s := range tc.contains {
				g.Expect(r.stdout).To(ContainSubstring(s))
			}
		})
	}
}

func TestExplainEvaluatesTheProfileTogetherWithOtherPolicies(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	// A foreign namespace-wide NetworkPolicy allowing all ingress, and an AuthorizationPolicy
	// allowing everything to the backend: together they open frontend → backend.
	other := writeFile(t, dir, "other.yaml", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-all, namespace: shop}
spec: {podSelector: {}, ingress: [{}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: backend-open, namespace: shop}
spec:
  selector: {matchLabels: {app: backend}}
  rules: [{}]
`)
	r := explainRun(t, "", "-f", shopSample, "-f", other, "--from", "frontend/web", "--from-ip", "10.244.0.9",
		"--to-labels", "app=backend", "--port", "9000", "-o", "json")
	g.Expect(r.code).To(Equal(ExplainAllowed), "stderr: %s\nstdout: %s", r.stderr, r.stdout)
	var out struct {
		Decision explain.Decision      `json:"decision"`
		Layers   []explain.LayerResult `json:"layers"`
	}
	g.Expect(json.Unmarshal([]byte(r.stdout), &out)).To(Succeed())
	g.Expect(out.Decision).To(Equal(explain.Allowed))
	byLayer := map[string]explain.LayerResult{}
	for _, l := range out.Layers {
		byLayer[l.Layer] = l
	}
	g.Expect(byLayer[explain.LayerIngress].Deciding).To(ContainElement(HaveField("Name", "allow-all")))
	g.Expect(byLayer[explain.LayerAuthorization].Deciding).To(ConsistOf(HaveField("Name", "backend-open")))
}

func TestExplainLinkerdProfileUsesItsNamespaceDefaultPolicy(t *testing.T) {
	g := NewWithT(t)
	profile := writeFile(t, t.TempDir(), "p.yaml", `
apiVersion: security.meshguard.dev/v1alpha1
kind: MeshSecurityProfile
metadata: {name: baseline, namespace: shop}
spec:
  mesh: Linkerd
  mtls: {mode: Strict}
`)
	r := explainRun(t, "", "-f", profile, "--from-namespace", "web", "--from-unmeshed", "--to-labels", "app=api", "--port", "8080")
	g.Expect(r.code).To(Equal(ExplainDenied), "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	g.Expect(r.stdout).To(ContainSubstring("all-authenticated"))
	r = explainRun(t, "", "-f", profile, "--from", "web/web", "--to-labels", "app=api", "--port", "8080")
	g.Expect(r.code).To(Equal(ExplainAllowed), "stdout: %s", r.stdout)
}

func TestExplainUndeterminedExitsFour(t *testing.T) {
	g := NewWithT(t)
	policy := writeFile(t, t.TempDir(), "np.yaml", `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: named, namespace: shop}
spec: {podSelector: {}, ingress: [{ports: [{port: http}]}]}
`)
	r := explainRun(t, "", "-f", policy, "--from", "web/web", "--to-namespace", "shop", "--to-labels", "", "--port", "8080")
	g.Expect(r.code).To(Equal(ExplainUnknown), "stdout: %s", r.stdout)
	g.Expect(r.stdout).To(ContainSubstring(`named port "http"`))
	r = explainRun(t, "", "-f", policy, "--from", "web/web", "--to-namespace", "shop", "--to-labels", "", "--port", "8080", "--port-name", "http")
	g.Expect(r.code).To(Equal(ExplainAllowed), "stdout: %s", r.stdout)
}

func TestExplainRefusesBadCommandLinesAndInputsWithExitOne(t *testing.T) {
	cases := map[string]struct {
		args []string
		err  string
	}{
		"no input":                 {[]string{"--port", "80", "--to-namespace", "a", "--from", "a/b"}, "give manifests with -f"},
		"no port":                  {[]string{"-f", shopSample, "--from", "a/b"}, "--port 0"},
		"bad from":                 {[]string{"-f", shopSample, "--from", "web", "--port", "80"}, `--from "web"`},
		"bad labels":               {[]string{"-f", shopSample, "--from", "a/b", "--to-labels", "app", "--port", "80"}, "--to-labels"},
		"bad output":               {[]string{"-f", shopSample, "--from", "a/b", "--port", "80", "-o", "yaml"}, "-o \"yaml\""},
		"missing file":             {[]string{"-f", "nope.yaml", "--from", "a/b", "--port", "80"}, "nope.yaml"},
		"invalid profile":          {[]string{"-f", "-", "--from", "a/b", "--port", "80"}, "spec.mtls.mode"},
		"no destination namespace": {[]string{"-f", "-", "--from", "a/b", "--port", "80"}, "--to-namespace is required"},
		"no destination labels":    {[]string{"-f", shopSample, "--from", "a/b", "--port", "80"}, "--to-labels is required"},
	}
	stdin := map[string]string{
		"invalid profile":          "apiVersion: security.meshguard.dev/v1alpha1\nkind: MeshSecurityProfile\nmetadata: {name: p, namespace: a}\nspec: {mtls: {mode: Sometimes}}\n",
		"no destination namespace": "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: n, namespace: a}\nspec: {podSelector: {}}\n",
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			r := explainRun(t, stdin[name], tc.args...)
			g.Expect(r.code).To(Equal(ExplainError), "stdout: %s", r.stdout)
			g.Expect(r.stdout).To(BeEmpty())
			g.Expect(r.stderr).To(ContainSubstring(tc.err))
		})
	}
}

// fakeReader serves fixed objects, recording the namespaces asked for.
type fakeReader struct {
	objs   []*unstructured.Unstructured
	asked  []string
	served []string
}

func (f *fakeReader) Policies(_ context.Context, nss []string) ([]*unstructured.Unstructured, []string, error) {
	f.asked = nss
	return f.objs, []string{"Server.policy.linkerd.io is not installed in the cluster"}, nil
}

func (f *fakeReader) Served(kinds []string) []string { return f.served }

func TestExplainLiveReadsTheSourceDestinationAndRootNamespaces(t *testing.T) {
	g := NewWithT(t)
	u := &unstructured.Unstructured{}
	g.Expect(yaml.Unmarshal([]byte(`
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-web, namespace: shop}
spec: {action: DENY, rules: [{from: [{source: {principals: ["cluster.local/ns/frontend/sa/web"]}}]}]}
`), &u.Object)).To(Succeed())
	f := &fakeReader{objs: []*unstructured.Unstructured{u}}
	var out, errOut bytes.Buffer
	code := runExplain([]string{"--kubeconfig", "kc", "--from", "frontend/web", "--to-namespace", "shop", "--to-labels", "app=x", "--port", "80"},
		nil, &out, &errOut, func(kc, ctx string) (ClusterReader, error) {
			g.Expect(kc).To(Equal("kc"))
			return f, nil
		})
	g.Expect(code).To(Equal(ExplainDenied), "stdout: %s\nstderr: %s", out.String(), errOut.String())
	g.Expect(f.asked).To(Equal([]string{"shop", "frontend", "istio-system"}))
	g.Expect(out.String()).To(ContainSubstring("AuthorizationPolicy shop/deny-web[0]"))
	g.Expect(out.String()).To(ContainSubstring("note: Server.policy.linkerd.io is not installed"))
}

// The cluster facts are one binding shared with render and the manager: explain's Istio root
// namespace follows --istio-namespace as the manager's does (it used to default to istio-system
// whatever --istio-namespace said).
func TestExplainTakesIstiosRootNamespaceFromTheIstioNamespaceAsTheManagerDoes(t *testing.T) {
	const meshWideDeny = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-all-mesh, namespace: mesh}
spec: {action: DENY, rules: [{}]}
`
	args := []string{"-f", "-", "--mesh", "Istio", "--from", "frontend/web", "--from-labels", "app=web",
		"--to-namespace", "shop", "--to-labels", "app=api", "--port", "8080"}
	g := NewWithT(t)
	other := explainRun(t, meshWideDeny, args...)
	g.Expect(other.stdout).NotTo(ContainSubstring("deny-all-mesh"), "a policy outside the root namespace is not mesh-wide")
	root := explainRun(t, meshWideDeny, append(args, "--istio-namespace", "mesh")...)
	g.Expect(root.code).To(Equal(ExplainDenied), root.stdout+root.stderr)
	g.Expect(root.stdout).To(ContainSubstring("AuthorizationPolicy mesh/deny-all-mesh"))
}

func TestRenderAndExplainBindTheSameClusterFactFlags(t *testing.T) {
	g := NewWithT(t)
	rh := renderReal(t, "", "--help")
	eh := explainRun(t, "", "--help")
	for _, flag := range []string{"--trust-domain", "--istio-namespace", "--istio-root-namespace", "--linkerd-namespace", "--dns-namespace", "--dns-pod-labels"} {
		g.Expect(rh.stderr).To(ContainSubstring(flag))
		g.Expect(eh.stderr).To(ContainSubstring(flag))
	}
	bad := explainRun(t, "", "-f", "-", "--trust-domain", "a/b", "--from", "a/b", "--to-labels", "", "--port", "1")
	g.Expect(bad.code).To(Equal(ExplainError))
	g.Expect(bad.stderr).To(ContainSubstring("--trust-domain"))
}

func TestExplainWarnsWhenNoInputLivesInTheDestinationNamespace(t *testing.T) {
	g := NewWithT(t)
	r := explainRun(t, "", "-f", shopSample, "--from", "frontend/web", "--from-labels", "app=web", "--to-namespace", "shpo", "--to-labels", "app=api", "--port", "8080")
	g.Expect(r.stderr).To(ContainSubstring("warning: no input object lives in namespace shpo"))
	ok := explainRun(t, "", "-f", shopSample, "--from", "frontend/web", "--from-labels", "app=web", "--to-labels", "app=api", "--port", "8080")
	g.Expect(ok.stderr).NotTo(ContainSubstring("warning: no input object"))
}

func TestExplainRefusesAMeshThatContradictsTheProfile(t *testing.T) {
	g := NewWithT(t)
	r := explainRun(t, "", "-f", shopSample, "--mesh", "Linkerd", "--from", "frontend/web", "--from-labels", "app=web", "--to-labels", "app=api", "--port", "8080")
	g.Expect(r.code).To(Equal(ExplainError))
	g.Expect(r.stderr).To(ContainSubstring("--mesh Linkerd contradicts the profile"))
	same := explainRun(t, "", "-f", shopSample, "--mesh", "Istio", "--from", "frontend/web", "--from-labels", "app=web", "--to-labels", "app=api", "--port", "8080")
	g.Expect(same.code).NotTo(Equal(ExplainError), same.stderr)
}
