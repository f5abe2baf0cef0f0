package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// TestExplainAmbientGoldens: `manager explain` on an ambient namespace with a waypoint
// (testdata/ambient/shop.yaml) renders the profile for ztunnel and the waypoint, as the controller
// does, and answers layer by layer naming the proxy that decided. Each request's table is compared
// with testdata/ambient/<request>.golden.txt (-update rewrites them; review the diff).
func TestExplainAmbientGoldens(t *testing.T) {
	in := filepath.Join("testdata", "ambient", "shop.yaml")
	web := []string{"--from", "frontend/web", "--from-labels", "app=web", "--to-namespace", "shop", "--to-labels", "app=api", "--port", "8080"}
	cases := []struct {
		name string
		args []string
		code int
	}{
		{"web-get-with-token", append(append([]string{}, web...), "--method", "GET", "--path", "/api/items", "--principal", "https://auth.example.com/alice"), ExplainAllowed},
		{"web-get-without-token", append(append([]string{}, web...), "--method", "GET", "--path", "/api/items"), ExplainDenied},
		{"web-delete", append(append([]string{}, web...), "--method", "DELETE", "--path", "/api/items", "--principal", "https://auth.example.com/alice"), ExplainDenied},
		{"intruder", []string{"--from", "frontend/intruder", "--from-labels", "app=intruder", "--to-namespace", "shop", "--to-labels", "app=api", "--port", "8080",
			"--method", "GET", "--path", "/api/items", "--principal", "https://auth.example.com/alice"}, ExplainDenied},
		{"unmeshed", []string{"--from-namespace", "frontend", "--from-labels", "app=web", "--from-ip", "10.244.0.9", "--from-unmeshed", "--to-namespace", "shop", "--to-labels", "app=api", "--port", "8080"}, ExplainDenied},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			r := explainRun(t, "", append([]string{"-f", in}, tc.args...)...)
			g.Expect(r.code).To(Equal(tc.code), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
			golden := filepath.Join("testdata", "ambient", tc.name+".golden.txt")
			if *updateGolden {
				g.Expect(os.WriteFile(golden, []byte(r.stdout), 0o644)).To(Succeed())
			}
			want, err := os.ReadFile(golden)
			g.Expect(err).NotTo(HaveOccurred(), "missing golden; run go test ./internal/cli -run TestExplainAmbientGoldens -update")
			g.Expect(r.stdout).To(Equal(string(want)))
			g.Expect(strings.Contains(r.stdout, "(ztunnel)")).To(BeTrue(), "the table names the proxy")
		})
	}
}

// nsReader returns the objects of the namespaces asked for, and records each call.
type nsReader struct {
	byNS  map[string][]*unstructured.Unstructured
	asked [][]string
}

func (r *nsReader) Policies(_ context.Context, nss []string) ([]*unstructured.Unstructured, []string, error) {
	r.asked = append(r.asked, nss)
	var out []*unstructured.Unstructured
	for _, ns := range nss {
		out = append(out, r.byNS[ns]...)
	}
	return out, nil, nil
}

func (r *nsReader) Served([]string) []string { return nil }

// TestExplainLiveReadsTheWaypointsNamespace: a namespace whose waypoint lives in another namespace
// (istio.io/use-waypoint-namespace): a live explain reads that namespace too, its Gateway and the
// policies bound to it, and the waypoint decides.
func TestExplainLiveReadsTheWaypointsNamespace(t *testing.T) {
	g := NewWithT(t)
	parse := func(docs string) []*unstructured.Unstructured {
		var out []*unstructured.Unstructured
		for _, d := range strings.Split(docs, "\n---\n") {
			u := &unstructured.Unstructured{}
			g.Expect(yaml.Unmarshal([]byte(d), &u.Object)).To(Succeed())
			out = append(out, u)
		}
		return out
	}
	r := &nsReader{byNS: map[string][]*unstructured.Unstructured{
		"shop": parse(`apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient, istio.io/use-waypoint: waypoint, istio.io/use-waypoint-namespace: mesh-gw}}
---
apiVersion: v1
kind: Pod
metadata: {name: api-0, namespace: shop, labels: {app: api}, annotations: {ambient.istio.io/redirection: enabled}}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
spec: {selector: {app: api}}`),
		"mesh-gw": parse(`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: waypoint, namespace: mesh-gw}
spec: {gatewayClassName: istio-waypoint}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-all, namespace: mesh-gw}
spec: {action: DENY, targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: waypoint}], rules: [{}]}`),
	}}
	var out, errOut bytes.Buffer
	code := runExplain([]string{"--kubeconfig", "kc", "--from", "frontend/web", "--from-labels", "app=web", "--to-namespace", "shop", "--to-labels", "app=api", "--port", "8080", "--mesh", "Istio"},
		nil, &out, &errOut, func(string, string) (ClusterReader, error) { return r, nil })
	g.Expect(code).To(Equal(ExplainDenied), "stdout: %s\nstderr: %s", out.String(), errOut.String())
	g.Expect(r.asked).To(Equal([][]string{{"shop", "frontend", "istio-system"}, {"mesh-gw"}}))
	g.Expect(out.String()).To(ContainSubstring("Result: Denied by the authorization (waypoint) layer"))
	g.Expect(out.String()).To(ContainSubstring("AuthorizationPolicy mesh-gw/deny-all[0]"))
}
