package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/test/testenv"
)

// strictProfile is the spec of the profile the drift specs edit around: strict mTLS, deny by
// default, and a default-deny NetworkPolicy.
const strictProfile = `  mtls:
    mode: Strict
  authorization:
    defaultDeny: true
  networkPolicy:
    defaultDeny: [Ingress]
`

var _ = Describe("drift on a generated PeerAuthentication", func() {
	var ns, profile, pa string

	BeforeEach(func(ctx SpecContext) {
		ns, profile = newNamespace(ctx, "drift"), "baseline"
		applyProfile(ctx, ns, profile, strictProfile)
		expectReady(ctx, ns, profile)
		pa = generatedName(ctx, ns, profile, "PeerAuthentication")
	})

	It("is restored to STRICT, recorded in the status, in events on the profile and in the metrics", func(ctx SpecContext) {
		By("weakening the PeerAuthentication to PERMISSIVE as another field manager")
		mode := kubectl(ctx, "", "patch", "peerauthentications.security.istio.io", pa, "-n", ns,
			"--type=merge", "-p", `{"spec":{"mtls":{"mode":"PERMISSIVE"}}}`,
			"--field-manager=intruder", "-o", "jsonpath={.spec.mtls.mode}")
		Expect(mode).To(Equal("PERMISSIVE"), "the edit reached the API server")
		edited := time.Now()

		By("waiting for meshguard to restore it")
		Eventually(func(g Gomega) {
			g.Expect(peerAuthenticationMode(ctx, g, ns, pa)).To(Equal("STRICT"))
		}).WithContext(ctx).Should(Succeed())
		fmt.Fprintf(GinkgoWriter, "PeerAuthentication %s/%s restored within %s of the edit (reported, not asserted)\n", ns, pa, time.Since(edited))

		By("checking that meshguard took the field back from the other manager")
		live, err := env.dynamic.Resource(gvrPeerAuthentication).Namespace(ns).Get(ctx, pa, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(fieldManagersOf(live, "f:spec", "f:mtls", "f:mode")).To(ConsistOf(v1alpha1.FieldManager))

		By("reading the correction record in the profile's status")
		Eventually(func(g Gomega) {
			p, err := getProfile(ctx, ns, profile)
			g.Expect(err).NotTo(HaveOccurred())
			var row *v1alpha1.ResourceStatus
			for i := range p.Status.Resources {
				if r := &p.Status.Resources[i]; r.Kind == "PeerAuthentication" && r.Name == pa {
					row = r
				}
			}
			g.Expect(row).NotTo(BeNil(), "a status row for the PeerAuthentication")
			g.Expect(row.State).To(Equal(v1alpha1.ResourceInSync))
			g.Expect(row.LastCorrected).NotTo(BeNil(), "when the drift was corrected")
			g.Expect(row.LastCorrection).To(ContainSubstring("spec.mtls.mode"), "what was corrected")
			g.Expect(findCondition(p.Status.Conditions, v1alpha1.ConditionReady)).To(HaveField("Status", metav1.ConditionTrue))
			g.Expect(findCondition(p.Status.Conditions, v1alpha1.ConditionInSync)).To(HaveField("Status", metav1.ConditionTrue))
		}).WithContext(ctx).Should(Succeed())

		By("finding the DriftDetected and DriftCorrected events on the profile (events.k8s.io/v1)")
		Eventually(func(g Gomega) {
			events := profileEvents(ctx, g, ns, profile)
			g.Expect(events).To(ContainElement(SatisfyAll(
				HaveField("Type", "Warning"), HaveField("Reason", "DriftDetected"),
				HaveField("Related.Kind", "PeerAuthentication"), HaveField("Related.Name", pa),
				HaveField("Note", ContainSubstring("spec.mtls.mode")),
			)), "a Warning DriftDetected event naming the object and the field; events:\n%s", eventSummary(events))
			g.Expect(events).To(ContainElement(SatisfyAll(
				HaveField("Type", "Normal"), HaveField("Reason", "DriftCorrected"),
				HaveField("Related.Kind", "PeerAuthentication"), HaveField("Related.Name", pa),
			)), "a Normal DriftCorrected event naming the object; events:\n%s", eventSummary(events))
		}).WithContext(ctx).Should(Succeed())

		By("scraping the drift counters from the metrics endpoint")
		labels := map[string]string{"namespace": ns, "profile": profile, "kind": "PeerAuthentication"}
		Eventually(func(g Gomega) {
			text, err := env.scrapeMetrics(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			samples := testenv.ParseMetrics(text)
			detected, found := testenv.SumMetric(samples, "meshguard_drift_detected_total", labels)
			g.Expect(found).To(BeTrue(), "meshguard_drift_detected_total%v is exposed", labels)
			g.Expect(detected).To(BeNumerically(">=", 1))
			corrected, found := testenv.SumMetric(samples, "meshguard_drift_corrected_total", labels)
			g.Expect(found).To(BeTrue(), "meshguard_drift_corrected_total%v is exposed", labels)
			g.Expect(corrected).To(BeNumerically(">=", 1))
		}).WithContext(ctx).Should(Succeed())
	})

	It("is recreated when deleted, and the deletion is reported as drift", func(ctx SpecContext) {
		before, err := env.dynamic.Resource(gvrPeerAuthentication).Namespace(ns).Get(ctx, pa, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		kubectl(ctx, "", "delete", "peerauthentications.security.istio.io", pa, "-n", ns, "--wait=false")

		Eventually(func(g Gomega) {
			now, err := env.dynamic.Resource(gvrPeerAuthentication).Namespace(ns).Get(ctx, pa, metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(now.GetUID()).NotTo(Equal(before.GetUID()), "a new object")
			g.Expect(peerAuthenticationMode(ctx, g, ns, pa)).To(Equal("STRICT"))
			g.Expect(metav1.GetControllerOf(now)).NotTo(BeNil())
		}).WithContext(ctx).Should(Succeed())
		expectReady(ctx, ns, profile)

		Eventually(func(g Gomega) {
			events := profileEvents(ctx, g, ns, profile)
			g.Expect(events).To(ContainElement(SatisfyAll(
				HaveField("Type", "Warning"), HaveField("Reason", "DriftDetected"), HaveField("Related.Name", pa),
			)), "events:\n%s", eventSummary(events))
			g.Expect(events).To(ContainElement(SatisfyAll(
				HaveField("Type", "Normal"), HaveField("Reason", "DriftCorrected"), HaveField("Related.Name", pa),
			)), "events:\n%s", eventSummary(events))
			text, err := env.scrapeMetrics(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			corrected, _ := testenv.SumMetric(testenv.ParseMetrics(text), "meshguard_drift_corrected_total", map[string]string{"namespace": ns, "profile": profile, "kind": "PeerAuthentication"})
			g.Expect(corrected).To(BeNumerically(">=", 1))
		}).WithContext(ctx).Should(Succeed())
	})

	// meshguard's cache holds only objects with its label: an object that loses the label
	// disappears from it, and must still be found, relabelled and watched again.
	It("gets meshguard's label back when someone removes it, and drift on it is still corrected", func(ctx SpecContext) {
		kubectl(ctx, "", "label", "peerauthentications.security.istio.io", pa, "-n", ns, v1alpha1.LabelManagedBy+"-")
		Eventually(func(g Gomega) {
			live, err := env.dynamic.Resource(gvrPeerAuthentication).Namespace(ns).Get(ctx, pa, metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(live.GetLabels()).To(HaveKeyWithValue(v1alpha1.LabelManagedBy, v1alpha1.ManagedByValue))
		}).WithContext(ctx).Should(Succeed())

		kubectl(ctx, "", "patch", "peerauthentications.security.istio.io", pa, "-n", ns,
			"--type=merge", "-p", `{"spec":{"mtls":{"mode":"DISABLE"}}}`, "--field-manager=intruder")
		Eventually(func(g Gomega) {
			g.Expect(peerAuthenticationMode(ctx, g, ns, pa)).To(Equal("STRICT"))
		}).WithContext(ctx).Should(Succeed())
		expectReady(ctx, ns, profile)
	})

	It("loses a selector another manager added, which would narrow it to some workloads", func(ctx SpecContext) {
		kubectl(ctx, "", "patch", "peerauthentications.security.istio.io", pa, "-n", ns,
			"--type=merge", "-p", `{"spec":{"selector":{"matchLabels":{"app":"nothing"}}}}`, "--field-manager=intruder")

		Eventually(func(g Gomega) {
			live, err := env.dynamic.Resource(gvrPeerAuthentication).Namespace(ns).Get(ctx, pa, metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			_, found, _ := unstructured.NestedFieldNoCopy(live.Object, "spec", "selector")
			g.Expect(found).To(BeFalse(), "spec.selector was removed")
		}).WithContext(ctx).Should(Succeed())
		expectReady(ctx, ns, profile)
	})
})

// generatedName returns the name of the one object of the kind that the profile generated.
func generatedName(ctx context.Context, namespace, profile, kind string) string {
	GinkgoHelper()
	objs, err := generatedObjects(ctx, namespace, profile)
	Expect(err).NotTo(HaveOccurred())
	var names []string
	for _, o := range objs {
		if o.GetKind() == kind {
			names = append(names, o.GetName())
		}
	}
	Expect(names).To(HaveLen(1), "one %s generated by %s/%s among %v", kind, namespace, profile, kindNames(objs))
	return names[0]
}

func peerAuthenticationMode(ctx context.Context, g Gomega, namespace, name string) string {
	u, err := env.dynamic.Resource(gvrPeerAuthentication).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	mode, _, _ := unstructured.NestedString(u.Object, "spec", "mtls", "mode")
	return mode
}

// fieldManagersOf returns the managers that own the field at the path (in managedFields' fieldsV1
// notation, such as "f:spec", "f:mtls", "f:mode").
func fieldManagersOf(u *unstructured.Unstructured, path ...string) []string {
	var out []string
	for _, mf := range u.GetManagedFields() {
		if mf.FieldsV1 == nil {
			continue
		}
		var fields map[string]any
		if err := json.Unmarshal(mf.FieldsV1.GetRawBytes(), &fields); err != nil {
			continue
		}
		if _, found, _ := unstructured.NestedFieldNoCopy(fields, path...); found {
			out = append(out, mf.Manager)
		}
	}
	return out
}

// profileEvents lists the events.k8s.io/v1 Events about the profile that meshguard reported.
func profileEvents(ctx context.Context, g Gomega, namespace, profile string) []eventsv1.Event {
	list, err := env.clientset.EventsV1().Events(namespace).List(ctx, metav1.ListOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Kind == "MeshSecurityProfile" && e.Regarding.Name == profile && e.ReportingController == "meshguard" {
			out = append(out, e)
		}
	}
	return out
}

// eventSummary is for failure messages.
func eventSummary(events []eventsv1.Event) string {
	var b strings.Builder
	for _, e := range events {
		fmt.Fprintf(&b, "%s %s %s: %s\n", e.Type, e.Reason, e.ReportingController, e.Note)
	}
	return b.String()
}
