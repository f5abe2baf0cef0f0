package e2e

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

var _ = Describe("the sample floor (ClusterMeshSecurityProfile) with kubectl", func() {
	It("reads as Ready in kubectl get cmsp, and holds a team profile that asks for less at the floor", func(ctx SpecContext) {
		By("creating a floor-only namespace and a team namespace, labelled for the floor, with Istio's root certificate")
		for _, ns := range []string{"team-a", "team-b"} {
			Expect(env.createNamespace(ctx, ns)).To(Succeed())
		}
		kubectl(ctx, "", "label", "namespace", "team-a", "team-b", "security.meshguard.dev/floor=platform", "--overwrite")

		By("applying the sample floor and a team profile below it")
		kubectl(ctx, "", "apply", "--server-side", "-f", "config/samples/security_v1alpha1_clustermeshsecurityprofile_floor.yaml")
		team := `apiVersion: security.meshguard.dev/v1alpha1
kind: MeshSecurityProfile
metadata: {name: relaxed, namespace: team-b}
spec:
  mtls: {mode: Permissive}
  authorization:
    rules:
    - {name: web, from: {serviceAccounts: [shop/web]}, to: {ports: [8080]}}
`
		kubectl(ctx, team, "apply", "--server-side", "-f", "-")
		DeferCleanup(func(ctx SpecContext) {
			kubectl(ctx, "", "delete", "msp", "-n", "team-b", "relaxed", "--ignore-not-found")
		})

		By("waiting with kubectl wait, as a pipeline does")
		if _, stderr, err := env.kubectl(ctx, nil, "wait", "--for=condition=Ready", "cmsp/platform-floor", "--timeout=60s"); err != nil {
			status, _, _ := env.kubectl(ctx, nil, "get", "cmsp", "platform-floor", "-o", "yaml")
			Fail(fmt.Sprintf("cmsp/platform-floor is not Ready: %s\n%s", stderr, status))
		}
		kubectl(ctx, "", "wait", "--for=condition=Ready", "msp/relaxed", "-n", "team-b", "--timeout=60s")

		By("reading kubectl get cmsp")
		out := kubectl(ctx, "", "get", "cmsp")
		fmt.Fprintf(GinkgoWriter, "$ kubectl get cmsp\n%s", out)
		header, rows := parseTable(out)
		Expect(header).To(Equal([]string{"NAME", "NAMESPACES", "READY", "WEAKENED", "AGE"}))
		var row map[string]string
		for _, r := range rows {
			if r["NAME"] == "platform-floor" {
				row = r
			}
		}
		Expect(row).NotTo(BeNil(), "rows: %v", rows)
		Expect(row).To(HaveKeyWithValue("NAMESPACES", "2"))
		Expect(row).To(HaveKeyWithValue("READY", "2"))
		Expect(row).To(HaveKeyWithValue("WEAKENED", "0"))

		By("reading kubectl get msp and the Baseline condition of the team profile")
		fmt.Fprintf(GinkgoWriter, "$ kubectl get msp -n team-b\n%s", kubectl(ctx, "", "get", "msp", "-n", "team-b"))
		msg := kubectl(ctx, "", "get", "msp", "-n", "team-b", "relaxed", "-o", `jsonpath={.status.conditions[?(@.type=="Baseline")].reason}: {.status.conditions[?(@.type=="Baseline")].message}`)
		fmt.Fprintf(GinkgoWriter, "Baseline: %s\n", msg)
		Expect(msg).To(HavePrefix("BelowBaseline: held at the floor: spec.mtls.mode (asks Permissive, held at Strict by ClusterMeshSecurityProfile platform-floor)"))

		By("checking what is applied: the floor's strictness, one set of objects per namespace")
		mode := kubectl(ctx, "", "get", "peerauthentication", "-n", "team-b", "relaxed-mtls", "-o", "jsonpath={.spec.mtls.mode}")
		Expect(mode).To(Equal("STRICT"))
		owner := kubectl(ctx, "", "get", "peerauthentication", "-n", "team-a", "platform-floor-mtls", "-o", "jsonpath={.metadata.ownerReferences[0].kind}")
		Expect(owner).To(Equal("ClusterMeshSecurityProfile"))

		c := &v1alpha1.ClusterMeshSecurityProfile{}
		Expect(env.client.Get(ctx, client.ObjectKey{Name: "platform-floor"}, c)).To(Succeed())
		Expect(c.Status.ObservedGeneration).To(Equal(c.Generation))
		Expect(findCondition(c.Status.Conditions, v1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
	})
})
