package cli

import (
	"bytes"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
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

func TestExplainExpectationsJudgeWantDeniedForASenderWithoutProxyToo(t *testing.T) {
	g := NewWithT(t)
	// The audit's is1.yaml: a platform DENY by source namespace under PERMISSIVE. "This field
	// requires mTLS enabled" (AuthorizationPolicy reference, Source.namespaces): a plaintext
	// sender of sandbox is not denied (ISTIO-SECURITY-2021-004).
	is1 := `
apiVersion: security.meshguard.dev/v1alpha1
kind: MeshSecurityProfile
metadata: {name: mig, namespace: shop}
spec:
  mtls: {mode: Permissive}
  expectations:
  - {name: sandbox-cannot-reach-api, from: {namespace: sandbox}, to: {podLabels: {app: api}, port: 8080}, want: Denied}
  - {name: meshed-sandbox-cannot-reach-api, from: {namespace: sandbox}, to: {podLabels: {app: api}, port: 8080}, want: Allowed}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: block-sandbox, namespace: istio-system}
spec: {action: DENY, rules: [{from: [{source: {namespaces: [sandbox]}}]}]}
`
	r := assuranceRun(t, is1, "--expectations")
	g.Expect(r.code).To(Equal(ExplainDenied), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	g.Expect(r.stdout).To(MatchRegexp(`shop/mig\s+sandbox-cannot-reach-api\s+Denied\s+Allowed\s+no`))
	g.Expect(r.stdout).To(ContainSubstring("sandbox-cannot-reach-api: mTLS: for the same sender without a mesh proxy (plaintext, no identity; add from.unmeshed to ask only about it): "))
	// want: Allowed is about the sender with a proxy, which the DENY stops.
	g.Expect(r.stdout).To(MatchRegexp(`shop/mig\s+meshed-sandbox-cannot-reach-api\s+Allowed\s+Denied\s+no\s+authorization\s+AuthorizationPolicy istio-system/block-sandbox\[0\] \(foreign\)`))

	// from.unmeshed asks about the plaintext sender only; under STRICT it is refused.
	r = assuranceRun(t, `
apiVersion: security.meshguard.dev/v1alpha1
kind: MeshSecurityProfile
metadata: {name: strict, namespace: shop}
spec:
  mtls: {mode: Strict}
  expectations:
  - {name: plaintext-refused, from: {namespace: sandbox, unmeshed: true}, to: {podLabels: {app: api}, port: 8080}, want: Denied}
`, "--expectations")
	g.Expect(r.code).To(Equal(ExplainAllowed), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	g.Expect(r.stdout).To(MatchRegexp(`shop/strict\s+plaintext-refused\s+Denied\s+Denied\s+yes\s+mTLS`))
}

func TestExplainExpectationsJudgeEveryPieceOfACIDRSource(t *testing.T) {
	g := NewWithT(t)
	// The audit's ip1.yaml: the profile opens 198.51.100.128/25; "nothing from 0.0.0.0/0" and
	// "nothing from 198.51.100.0/24" do not hold.
	ip1 := `
apiVersion: security.meshguard.dev/v1alpha1
kind: MeshSecurityProfile
metadata: {name: edge, namespace: shop}
spec:
  mtls: {mode: Permissive}
  authorization: {defaultDeny: true, rules: [{name: partner, from: {ipBlocks: ["198.51.100.128/25"]}, to: {ports: [8080]}}]}
  networkPolicy: {defaultDeny: [Ingress], ingress: [{name: partner, from: [{ipBlock: {cidr: 198.51.100.128/25}}], ports: [{port: 8080}]}]}
  expectations:
  - {name: nothing-from-the-internet,      from: {ipBlock: 0.0.0.0/0},       to: {podLabels: {app: api}, port: 8080}, want: Denied}
  - {name: nothing-from-partner-net-range, from: {ipBlock: 198.51.100.0/24}, to: {podLabels: {app: api}, port: 8080}, want: Denied}
  - {name: nothing-from-documentation,     from: {ipBlock: 203.0.113.0/24},  to: {podLabels: {app: api}, port: 8080}, want: Denied}
`
	r := assuranceRun(t, ip1, "--expectations")
	g.Expect(r.code).To(Equal(ExplainDenied), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	g.Expect(r.stdout).To(MatchRegexp(`nothing-from-the-internet\s+Denied\s+Allowed\s+no`))
	g.Expect(r.stdout).To(MatchRegexp(`nothing-from-partner-net-range\s+Denied\s+Allowed\s+no`))
	g.Expect(r.stdout).To(MatchRegexp(`nothing-from-documentation\s+Denied\s+Denied\s+yes`))
	g.Expect(r.stdout).To(ContainSubstring("for the sender 198.51.100.128 (of from.ipBlock 198.51.100.0/24"))
}

func TestExplainExpectationsDoNotCountTheSendersOwnEgressPolicy(t *testing.T) {
	g := NewWithT(t)
	// The audit's eg1.yaml: only sandbox's own egress lockdown stops sandbox → db; sandbox can
	// delete it, so the destination is not protected.
	eg1 := `
apiVersion: security.meshguard.dev/v1alpha1
kind: MeshSecurityProfile
metadata: {name: dst, namespace: shop}
spec:
  mtls: {mode: Strict}
  expectations:
  - {name: sandbox-cannot-reach-db, from: {namespace: sandbox}, to: {podLabels: {app: db}, port: 5432}, want: Denied}
  - {name: shop-cannot-leave, from: {namespace: shop}, to: {podLabels: {app: db}, port: 5432}, want: Denied}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: lockdown, namespace: sandbox}
spec: {podSelector: {}, policyTypes: [Egress]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: lockdown, namespace: shop}
spec: {podSelector: {}, policyTypes: [Egress]}
`
	r := assuranceRun(t, eg1, "--expectations", "-o", "json")
	g.Expect(r.code).To(Equal(ExplainDenied), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	g.Expect(r.stdout).To(ContainSubstring(`"reason": "DeniedOnlyBySource"`))
	r = assuranceRun(t, eg1, "--expectations")
	g.Expect(r.stdout).To(MatchRegexp(`sandbox-cannot-reach-db\s+Denied\s+Allowed\s+no`))
	g.Expect(r.stdout).To(ContainSubstring("only the sender's own egress NetworkPolicy (NetworkPolicy sandbox/lockdown (foreign)) denies it, which the sender controls and does not protect this namespace (DeniedOnlyBySource)"))
	// The namespace's own egress policy is the namespace's: it counts.
	g.Expect(r.stdout).To(MatchRegexp(`shop-cannot-leave\s+Denied\s+Denied\s+yes\s+egress NetworkPolicy`))
}

func TestExplainATCPQuestionIsUndeterminedWhereAnAllowRuleWithHTTPConditionsMayAdmitIt(t *testing.T) {
	g := NewWithT(t)
	// The audit's tcp1.yaml: sandbox may GET anything; "sandbox cannot reach the API" is not met.
	// Istio skips such a rule on the TCP filter chain only (pilot/pkg/security/authz/builder/
	// builder.go); on an HTTP port the sender simply sends GET.
	tcp1 := `
apiVersion: security.meshguard.dev/v1alpha1
kind: MeshSecurityProfile
metadata: {name: api, namespace: shop}
spec:
  authorization: {defaultDeny: true, rules: [{name: sandbox-reads, from: {namespaces: [sandbox]}, to: {methods: [GET]}}]}
  expectations:
  - {name: sandbox-cannot-reach-api, from: {namespace: sandbox}, to: {podLabels: {app: api}, port: 8080}, want: Denied}
  - {name: sandbox-cannot-post, from: {namespace: sandbox}, to: {podLabels: {app: api}, port: 8080, method: POST, path: /}, want: Denied}
`
	r := assuranceRun(t, tcp1, "--expectations")
	g.Expect(r.code).To(Equal(ExplainDenied), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	g.Expect(r.stdout).To(MatchRegexp(`sandbox-cannot-reach-api\s+Denied\s+Unknown\s+no\s+authorization`))
	g.Expect(r.stdout).To(ContainSubstring("the port may speak HTTP and this rule has HTTP conditions (methods, paths, hosts, request principals); give method and path"))
	g.Expect(r.stdout).To(MatchRegexp(`sandbox-cannot-post\s+Denied\s+Denied\s+yes`))

	args := []string{"--from", "sandbox/worker", "--from-labels", "", "--to-labels", "app=api", "--port", "8080"}
	r = assuranceRun(t, tcp1, args...)
	g.Expect(r.code).To(Equal(ExplainUnknown), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	r = assuranceRun(t, tcp1, append(args, "--opaque-tcp")...)
	g.Expect(r.code).To(Equal(ExplainDenied), "a raw TCP connection: the ALLOW rule is skipped\nstdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
}

func TestExplainOfflineANamespaceSelectorOnLabelsOfANamespaceNotGivenIsUndetermined(t *testing.T) {
	g := NewWithT(t)
	// The audit's nsl.yaml: a foreign NetworkPolicy admits namespaces labelled env: dev.
	nsl := `
apiVersion: security.meshguard.dev/v1alpha1
kind: MeshSecurityProfile
metadata: {name: p, namespace: shop}
spec:
  mtls: {mode: Strict}
  networkPolicy: {defaultDeny: [Ingress]}
  expectations:
  - {name: sandbox-denied, from: {namespace: sandbox, podLabels: {app: x}}, to: {podLabels: {app: api}, port: 8080}, want: Denied}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-dev-tier, namespace: shop}
spec:
  podSelector: {}
  ingress: [{from: [{namespaceSelector: {matchLabels: {env: dev}}}]}]
`
	r := assuranceRun(t, nsl, "--expectations")
	g.Expect(r.code).To(Equal(ExplainDenied), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	g.Expect(r.stdout).To(MatchRegexp(`sandbox-denied\s+Denied\s+Unknown\s+no\s+ingress NetworkPolicy`))
	g.Expect(r.stdout).To(ContainSubstring("the labels of namespace sandbox were not given (give its Namespace object)"))

	r = assuranceRun(t, nsl+"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: sandbox, labels: {env: dev}}\n", "--expectations")
	g.Expect(r.stdout).To(MatchRegexp(`sandbox-denied\s+Denied\s+Allowed\s+no\s+ingress NetworkPolicy\s+NetworkPolicy shop/allow-dev-tier\[0\] \(foreign\)`))

	r = assuranceRun(t, nsl+"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: sandbox, labels: {env: prod}}\n", "--expectations")
	g.Expect(r.code).To(Equal(ExplainAllowed), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
}

func TestExplainModelsAdminNetworkPoliciesAndDoesNotTrustNetworkPolicyDenialsUnderCNIPolicies(t *testing.T) {
	g := NewWithT(t)
	// The audit's anp.yaml. "AdminNetworkPolicyRuleActionAllow indicates that matching traffic
	// will be allowed regardless of NetworkPolicy and BaselineAdminNetworkPolicy rules"
	// (sigs.k8s.io/network-policy-api apis/v1alpha1/adminnetworkpolicy_types.go).
	base := `
apiVersion: security.meshguard.dev/v1alpha1
kind: MeshSecurityProfile
metadata: {name: base, namespace: shop}
spec:
  mesh: Istio
  mtls: {mode: Permissive}
  networkPolicy: {defaultDeny: [Ingress]}
  expectations:
  - {name: sandbox-to-api, from: {namespace: sandbox, unmeshed: true}, to: {podLabels: {app: api}, port: 8080}, want: Denied}
  - {name: outside-to-api, from: {ipBlock: 203.0.113.10}, to: {podLabels: {app: api}, port: 8080}, want: Denied}
---
apiVersion: v1
kind: Namespace
metadata: {name: sandbox}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop}
`
	r := assuranceRun(t, base, "--expectations")
	g.Expect(r.code).To(Equal(ExplainAllowed), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)

	anp := base + `---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: allow-lb-health}
spec: {priority: 10, subject: {namespaces: {}}, ingress: [{name: all, action: Allow, from: [{namespaces: {}}]}]}
`
	r = assuranceRun(t, anp, "--expectations")
	g.Expect(r.code).To(Equal(ExplainDenied), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	g.Expect(r.stdout).To(MatchRegexp(`sandbox-to-api\s+Denied\s+Allowed\s+no\s+ingress NetworkPolicy\s+AdminNetworkPolicy allow-lb-health\[0\] \(foreign\)`))
	g.Expect(r.stdout).To(MatchRegexp(`outside-to-api\s+Denied\s+Denied\s+yes`), "an ANP ingress peer selects pods, never outside addresses")

	// "Cilium supports running multiple of these policy types at the same time … this may lead
	// to unintended policy allow behavior" (docs.cilium.io/en/stable/network/kubernetes/policy/).
	cilium := base + `---
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: world}
spec: {endpointSelector: {}, ingress: [{fromEntities: [world]}]}
`
	r = assuranceRun(t, cilium, "--expectations")
	g.Expect(r.code).To(Equal(ExplainDenied), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	g.Expect(r.stdout).To(MatchRegexp(`outside-to-api\s+Denied\s+Unknown\s+no\s+ingress NetworkPolicy`))
	g.Expect(r.stdout).To(ContainSubstring("CiliumClusterwideNetworkPolicy.cilium.io"))

	r = assuranceRun(t, base, "--expectations", "--cni-policy-kinds", "GlobalNetworkPolicy.crd.projectcalico.org")
	g.Expect(r.code).To(Equal(ExplainDenied), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	g.Expect(r.stdout).To(MatchRegexp(`outside-to-api\s+Denied\s+Unknown\s+no`))
}

func TestExplainModelsLinkerdServerAuthorizations(t *testing.T) {
	g := NewWithT(t)
	// The audit's lk2.yaml: a ServerAuthorization with selector {} and identities ["*"] opens
	// every Server of the namespace to every meshed client (linkerd2 policy-controller/k8s/index/
	// src/inbound/index.rs client_authzs; server_authorization.rs).
	lk2 := `
apiVersion: security.meshguard.dev/v1alpha1
kind: MeshSecurityProfile
metadata: {name: lk, namespace: shop}
spec:
  mesh: Linkerd
  authorization:
    defaultDeny: true
    rules:
    - {name: web-reads-api, selector: {matchLabels: {app: api}}, from: {serviceAccounts: [frontend/web]}, to: {ports: [8080]}}
  expectations:
  - {name: batch-cannot-call-api, from: {serviceAccount: batch/worker}, to: {podLabels: {app: api}, port: 8080}, want: Denied}
`
	r := assuranceRun(t, lk2, "--expectations")
	g.Expect(r.code).To(Equal(ExplainAllowed), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	r = assuranceRun(t, lk2+`---
apiVersion: policy.linkerd.io/v1beta1
kind: ServerAuthorization
metadata: {name: legacy-open, namespace: shop}
spec: {server: {selector: {}}, client: {meshTLS: {identities: ["*"]}}}
`, "--expectations")
	g.Expect(r.code).To(Equal(ExplainDenied), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	g.Expect(r.stdout).To(MatchRegexp(`batch-cannot-call-api\s+Denied\s+Allowed\s+no\s+authorization\s+ServerAuthorization shop/legacy-open \(foreign\)`))
}

func TestExplainChecksTheDestinationPodsProxyAndProbes(t *testing.T) {
	g := NewWithT(t)
	// The audit's um.yaml: STRICT + default deny, but the legacy pod runs without a sidecar
	// (sidecar.istio.io/inject: "false", Istio's injection-template.yaml): nothing of the mesh
	// protects it.
	um := `
apiVersion: security.meshguard.dev/v1alpha1
kind: MeshSecurityProfile
metadata: {name: p, namespace: shop}
spec:
  mtls: {mode: Strict}
  authorization: {defaultDeny: true}
  expectations:
  - {name: outside-denied, from: {ipBlock: 203.0.113.10}, to: {podLabels: {app: legacy}, port: 8080}, want: Denied}
`
	r := assuranceRun(t, um, "--expectations")
	g.Expect(r.code).To(Equal(ExplainAllowed), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	withPod := um + `---
apiVersion: v1
kind: Pod
metadata: {name: legacy-7d9f, namespace: shop, labels: {app: legacy}, annotations: {sidecar.istio.io/inject: "false"}}
spec: {containers: [{name: legacy, image: legacy:1}]}
`
	r = assuranceRun(t, withPod, "--expectations")
	g.Expect(r.code).To(Equal(ExplainDenied), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	g.Expect(r.stdout).To(MatchRegexp(`outside-denied\s+Denied\s+Allowed\s+no`))
	r = assuranceRun(t, withPod, "--from-ip", "203.0.113.10", "--to-labels", "app=legacy", "--port", "8080")
	g.Expect(r.code).To(Equal(ExplainAllowed), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	g.Expect(r.stdout).To(ContainSubstring("pod legacy-7d9f has no istio-proxy container: mesh policies are not enforced on this port"))

	// The audit's lk3.yaml: GET on the pod's liveness path is authorized from probeNetworks
	// (default 0.0.0.0/0, ::/0) whatever the policy (linkerd2 policy-controller/k8s/index/src/
	// inbound/index.rs, probe routes).
	lk3 := `
apiVersion: security.meshguard.dev/v1alpha1
kind: MeshSecurityProfile
metadata: {name: lk, namespace: shop}
spec:
  mesh: Linkerd
  authorization: {defaultDeny: true}
  expectations:
  - {name: internet-cannot-hit-admin-health, from: {ipBlock: 203.0.113.10}, to: {podLabels: {app: api}, port: 8080, method: GET, path: /debug/health}, want: Denied}
`
	r = assuranceRun(t, lk3, "--expectations")
	g.Expect(r.code).To(Equal(ExplainDenied), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	g.Expect(r.stdout).To(MatchRegexp(`internet-cannot-hit-admin-health\s+Denied\s+Unknown\s+no`), "the probe paths are not known without the Pod")
	r = assuranceRun(t, lk3+`---
apiVersion: v1
kind: Pod
metadata: {name: api-0, namespace: shop, labels: {app: api}}
spec:
  containers:
  - {name: api, image: api, ports: [{containerPort: 8080}], livenessProbe: {httpGet: {path: /debug/health, port: 8080}}}
  - {name: linkerd-proxy, image: proxy}
`, "--expectations")
	g.Expect(r.code).To(Equal(ExplainDenied), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	g.Expect(r.stdout).To(MatchRegexp(`internet-cannot-hit-admin-health\s+Denied\s+Allowed\s+no\s+`))
	g.Expect(r.stdout).To(ContainSubstring("GET /debug/health is a probe path of the destination pods"))
}

// floorWithDenyAndAllow is a floor as docs/cluster-profiles.md describes it: STRICT mTLS,
// default-deny with Prometheus scraping allowed, a Deny nobody may lift, and required tokens for
// public namespaces' APIs.
const floorWithDenyAndAllow = `
apiVersion: security.meshguard.dev/v1alpha1
kind: ClusterMeshSecurityProfile
metadata: {name: platform-floor}
spec:
  namespaceSelector: {}
  excludeNamespaces: [kube-system, istio-system, monitoring]
  mtls: {mode: Strict}
  authorization:
    defaultDeny: true
    rules:
    - {name: prometheus-scrapes, from: {namespaces: [monitoring]}, to: {methods: [GET], paths: [/metrics]}}
    - {name: no-sandbox, action: Deny, from: {namespaces: [sandbox]}}
`

// teamOpen is a team profile that opens its API to every namespace.
const teamOpen = `
apiVersion: security.meshguard.dev/v1alpha1
kind: MeshSecurityProfile
metadata: {name: team, namespace: shop}
spec:
  authorization:
    defaultDeny: true
    rules:
    - {name: anyone, selector: {matchLabels: {app: api}}, from: {namespaces: [sandbox, frontend]}, to: {ports: [8080]}}
  expectations:
  - {name: monitoring-cannot-scrape, from: {serviceAccount: monitoring/prometheus}, to: {podLabels: {app: api}, port: 8080, method: GET, path: /metrics}, want: Denied}
  - {name: sandbox-cannot-call, from: {serviceAccount: sandbox/worker}, to: {podLabels: {app: api}, port: 8080, method: GET, path: /}, want: Denied}
`

func TestExplainMergesTheClusterProfilesThatSelectTheNamespaceAsTheControllerDoes(t *testing.T) {
	g := NewWithT(t)
	// Without the floor: the team's rule lets sandbox in, and monitoring is denied.
	r := assuranceRun(t, teamOpen, "--expectations")
	g.Expect(r.stdout).To(MatchRegexp(`sandbox-cannot-call\s+Denied\s+Allowed\s+no`), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	g.Expect(r.stdout).To(MatchRegexp(`monitoring-cannot-scrape\s+Denied\s+Denied\s+yes`))

	// With it: the floor's Deny stops sandbox, and its own Allow opens /metrics to monitoring,
	// exactly as internal/merge merges them for the controller.
	r = assuranceRun(t, teamOpen+"---\n"+floorWithDenyAndAllow, "--expectations")
	g.Expect(r.code).To(Equal(ExplainDenied), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	g.Expect(r.stdout).To(MatchRegexp(`sandbox-cannot-call\s+Denied\s+Denied\s+yes\s+authorization\s+AuthorizationPolicy shop/team-rule-platform-floor-no-sandbox`))
	g.Expect(r.stdout).To(MatchRegexp(`monitoring-cannot-scrape\s+Denied\s+Allowed\s+no\s+authorization\s+AuthorizationPolicy shop/team-rule-platform-floor-prometheus-scrapes`))
	g.Expect(r.stdout).To(ContainSubstring("note: shop/team is merged with the floor of ClusterMeshSecurityProfile platform-floor"))

	// One request: the floor's Deny decides.
	r = assuranceRun(t, teamOpen+"---\n"+floorWithDenyAndAllow, "--from", "sandbox/worker", "--from-labels", "", "--to-labels", "app=api", "--port", "8080", "--method", "GET", "--path", "/")
	g.Expect(r.code).To(Equal(ExplainDenied), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	g.Expect(r.stdout).To(ContainSubstring("Denied by the authorization layer"))
}

func TestExplainRendersTheFloorOfANamespaceWithoutProfile(t *testing.T) {
	g := NewWithT(t)
	// billing has no profile: the floor alone applies there (default deny, STRICT), as the
	// controller applies it to every namespace it selects.
	args := []string{"--from", "frontend/web", "--from-labels", "", "--to-namespace", "billing", "--to-labels", "app=api", "--port", "8080"}
	r := assuranceRun(t, floorWithDenyAndAllow, args...)
	g.Expect(r.code).To(Equal(ExplainDenied), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	g.Expect(r.stdout).To(ContainSubstring("AuthorizationPolicy billing/platform-floor-default-deny"))
	g.Expect(r.stdout).To(ContainSubstring("note: namespace billing has no profile among the inputs: the floor of platform-floor applies"))

	// A floor selecting by label needs the namespace's labels.
	byLabel := strings.Replace(floorWithDenyAndAllow, "namespaceSelector: {}", "namespaceSelector: {matchLabels: {tier: public}}", 1)
	r = assuranceRun(t, byLabel, args...)
	g.Expect(r.code).To(Equal(ExplainError), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	g.Expect(r.stderr).To(ContainSubstring("the labels of namespace billing were not given"))
	r = assuranceRun(t, byLabel, append(args, "--namespace-labels", "billing:tier=public")...)
	g.Expect(r.code).To(Equal(ExplainDenied), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	r = assuranceRun(t, byLabel, append(args, "--namespace-labels", "billing:tier=internal")...)
	g.Expect(r.code).To(Equal(ExplainAllowed), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
}

func TestExplainExpectationsLiveMergeTheClustersFloors(t *testing.T) {
	g := NewWithT(t)
	var objs []*unstructured.Unstructured
	for _, m := range []string{floorWithDenyAndAllow, `
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {kubernetes.io/metadata.name: shop}}
`, `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: platform-floor-default-deny
  namespace: shop
  ownerReferences: [{apiVersion: security.meshguard.dev/v1alpha1, kind: ClusterMeshSecurityProfile, name: platform-floor, uid: x, controller: true}]
spec: {}
`} {
		u := &unstructured.Unstructured{}
		g.Expect(yaml.Unmarshal([]byte(m), &u.Object)).To(Succeed())
		objs = append(objs, u)
	}
	f := &fakeReader{objs: objs}
	in := writeFile(t, t.TempDir(), "team.yaml", teamOpen)
	var out, errOut bytes.Buffer
	code := runExplain([]string{"--expectations", "-f", in, "--kubeconfig", "kc"}, nil, &out, &errOut,
		func(string, string) (ClusterReader, error) { return f, nil })
	g.Expect(code).To(Equal(ExplainDenied), "stdout: %s\nstderr: %s", out.String(), errOut.String())
	g.Expect(out.String()).To(MatchRegexp(`sandbox-cannot-call\s+Denied\s+Denied\s+yes`))
	g.Expect(out.String()).To(MatchRegexp(`monitoring-cannot-scrape\s+Denied\s+Allowed\s+no`))
	g.Expect(out.String()).NotTo(ContainSubstring("platform-floor-default-deny"), "the floor's own objects are replaced by the merged render")
}
