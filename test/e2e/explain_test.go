package e2e

import (
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("manager explain", func() {
	It("explains offline why web cannot call the shop sample's API, with exit code 3", func(ctx SpecContext) {
		stdout, stderr, code, err := env.runManager(ctx, nil, "explain",
			"-f", filepath.Join("config", "samples", "security_v1alpha1_meshsecurityprofile_shop.yaml"),
			"--from", "frontend/web", "--from-labels", "app=web", "--to-labels", "app=api",
			"--port", "8080", "--method", "GET", "--path", "/api/items")
		Expect(err).NotTo(HaveOccurred())
		Expect(code).To(Equal(3), "stdout:\n%s\nstderr:\n%s", stdout, stderr)
		Expect(stdout).To(ContainSubstring("NetworkPolicy shop/baseline-default-deny"))
		Expect(stdout).To(ContainSubstring("AuthorizationPolicy shop/baseline-rule-web-reads-api[0]"))
		Expect(stdout).To(ContainSubstring("Result: Denied by the ingress NetworkPolicy layer"))
	})

	It("checks the orders sample's expectations offline, as CI would before applying: all met, exit 0", func(ctx SpecContext) {
		stdout, stderr, code, err := env.runManager(ctx, nil, "explain", "--expectations",
			"-f", filepath.Join("config", "samples", "security_v1alpha1_meshsecurityprofile_orders.yaml"))
		Expect(err).NotTo(HaveOccurred())
		Expect(code).To(Equal(0), "stdout:\n%s\nstderr:\n%s", stdout, stderr)
		Expect(stdout).To(ContainSubstring("orders/baseline: ExpectationsMet=True (AllMet): 5 of 5 expectations met"))
	})

	It("explains live, from the policies meshguard generated for a profile", func(ctx SpecContext) {
		const ns = "explain-e2e"
		Expect(env.createNamespace(ctx, ns)).To(Succeed())
		kubectl(ctx, profileManifest(ns, "live", `  mtls: {mode: Strict}
  authorization:
    defaultDeny: true
    rules:
    - {name: web-reads-api, selector: {matchLabels: {app: api}}, from: {serviceAccounts: [frontend/web]}, to: {ports: [8080]}}
  networkPolicy:
    defaultDeny: [Ingress]
    ingress:
    - {name: from-frontend, selector: {matchLabels: {app: api}}, from: [{namespaces: [frontend]}], ports: [{port: 8080}]}
`), "apply", "--server-side", "-f", "-")
		explain := func(from string, port string) (int, string) {
			stdout, stderr, code, err := env.runManager(ctx, nil, "explain", "--kubeconfig", env.adminKubeconfig,
				"--from", from, "--from-labels", "app=x", "--from-ip", "10.244.9.9",
				"--to-namespace", ns, "--to-labels", "app=api", "--port", port)
			Expect(err).NotTo(HaveOccurred())
			return code, stdout + stderr
		}
		By("waiting for the generated policies: the authorization layer allows frontend/web once they exist")
		Eventually(func(g Gomega) {
			code, out := explain("frontend/web", "8080")
			g.Expect(code).To(Equal(0), out)
			g.Expect(out).To(ContainSubstring("NetworkPolicy " + ns + "/live-ingress-from-frontend[0]"))
			g.Expect(out).To(ContainSubstring("AuthorizationPolicy " + ns + "/live-rule-web-reads-api[0]"))
		}).WithContext(ctx).WithTimeout(60 * time.Second).WithPolling(time.Second).Should(Succeed())

		By("another service account of frontend passes the NetworkPolicy and is stopped by the default deny")
		code, out := explain("frontend/batch", "8080")
		Expect(code).To(Equal(3), out)
		Expect(out).To(ContainSubstring("AuthorizationPolicy " + ns + "/live-default-deny"))

		By("another namespace is stopped by the NetworkPolicy default deny")
		code, out = explain("other/web", "8080")
		Expect(code).To(Equal(3), out)
		Expect(out).To(ContainSubstring("Denied by the ingress NetworkPolicy layer"))
	})
})
