package cli

import (
	"testing"

	. "github.com/onsi/gomega"
)

// Tests of `manager explain` for the findings of the semantics audit 3
// (../shared/audits/semantics-audit-3.md, E1–E10, C2 and issue 18 part 3): explain and
// expectations never certify a flow the cluster allows.

// assuranceRun runs explain on inline manifests.
func assuranceRun(t *testing.T, manifests string, args ...string) result {
	t.Helper()
	f := writeFile(t, t.TempDir(), "in.yaml", manifests)
	return explainRun(t, "", append([]string{"-f", f}, args...)...)
}

// lk1 is the audit's E1 reproduction: the ingress rule admits frontend on the proxy port only,
// as docs/semantics.md tells Linkerd users to write it.
const lk1 = `
apiVersion: security.meshguard.dev/v1alpha1
kind: MeshSecurityProfile
metadata: {name: lk, namespace: shop}
spec:
  mesh: Linkerd
  networkPolicy:
    defaultDeny: [Ingress]
    ingress:
    - {name: meshed-peers, from: [{namespaces: [frontend]}], ports: [{port: 4143}]}
  expectations:
  - {name: evil-to-api, from: {namespace: frontend, podLabels: {app: batch}}, to: {podLabels: {app: api}, port: 8080}, want: Denied}
`

func TestExplainLinkerdMeshedTrafficMeetsNetworkPoliciesOnTheProxyInboundPort(t *testing.T) {
	g := NewWithT(t)
	// https://linkerd.io/2/common-errors/network-policy/: "Communication between two meshed pods
	// will always have its original target port replaced with the proxy's inbound port".
	r := assuranceRun(t, lk1, "--expectations")
	g.Expect(r.code).To(Equal(ExplainDenied), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	g.Expect(r.stdout).To(MatchRegexp(`shop/lk\s+evil-to-api\s+Denied\s+Allowed\s+no`))

	r = assuranceRun(t, lk1, "--from-namespace", "frontend", "--from-labels", "app=batch", "--to-labels", "app=api", "--port", "8080")
	g.Expect(r.code).To(Equal(ExplainAllowed), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	g.Expect(r.stdout).To(ContainSubstring("TCP/4143 (Linkerd's proxy inbound port: meshed-to-meshed traffic for port 8080 arrives there)"))

	// A proxy inbound port changed with proxy.ports.inbound is given by flag.
	r = assuranceRun(t, lk1, "--from-namespace", "frontend", "--from-labels", "app=batch", "--to-labels", "app=api", "--port", "8080",
		"--linkerd-proxy-inbound-port", "4000")
	g.Expect(r.code).To(Equal(ExplainDenied), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	g.Expect(r.stdout).To(ContainSubstring("TCP/4000 (Linkerd's proxy inbound port"))

	// The reverse error: a rule on the container port does not admit meshed peers.
	r = assuranceRun(t, `
apiVersion: security.meshguard.dev/v1alpha1
kind: MeshSecurityProfile
metadata: {name: lk, namespace: shop}
spec:
  mesh: Linkerd
  networkPolicy:
    defaultDeny: [Ingress]
    ingress:
    - {name: container-port, from: [{namespaces: [frontend]}], ports: [{port: 8080}]}
`, "--from-namespace", "frontend", "--from-labels", "app=web", "--to-labels", "app=api", "--port", "8080")
	g.Expect(r.code).To(Equal(ExplainDenied), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	g.Expect(r.stdout).To(ContainSubstring("Denied by the ingress NetworkPolicy layer"))
}

func TestExplainLinkerdClusterNetworksAreAFlag(t *testing.T) {
	g := NewWithT(t)
	ns := `
apiVersion: v1
kind: Namespace
metadata: {name: shop, annotations: {config.linkerd.io/default-inbound-policy: cluster-unauthenticated}}
`
	args := []string{"--mesh", "Linkerd", "--from-ip", "203.0.113.10", "--to-namespace", "shop", "--to-labels", "app=api", "--port", "8080"}
	r := assuranceRun(t, ns, args...)
	g.Expect(r.code).To(Equal(ExplainDenied), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	// clusterNetworks of linkerd-config (charts/linkerd-control-plane values.yaml clusterNetworks).
	r = assuranceRun(t, ns, append(args, "--linkerd-cluster-networks", "10.0.0.0/8,203.0.113.0/24")...)
	g.Expect(r.code).To(Equal(ExplainAllowed), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	g.Expect(r.stdout).To(ContainSubstring("the source IP is in the cluster networks"))
	r = assuranceRun(t, ns, append(args, "--linkerd-cluster-networks", "10.0.0.0/33")...)
	g.Expect(r.code).To(Equal(ExplainError))
	g.Expect(r.stderr).To(ContainSubstring("--linkerd-cluster-networks"))
}
