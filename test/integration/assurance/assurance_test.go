// Package assurance checks, on a real API server with the real CRDs, that a profile's
// `want: Denied` expectations turn ExpectationsMet False, naming the object, within seconds of
// each kind of object that opens the flow, and True again once it is gone (issue 18, "Done
// when"): a foreign ALLOW in Istio's root namespace, a foreign NetworkPolicy, an
// AdminNetworkPolicy Allow, a floor's own Allow rule and a Linkerd ServerAuthorization. The
// network-policy-api CRDs are installed after meshguard started, as in a cluster that adds them
// later: their objects must be watched all the same.
package assurance

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/test/crds"
	"github.com/meshguard/meshguard/test/integration/inprocess"
	"github.com/meshguard/meshguard/test/testenv"
)

// within is how soon a change must show in status: "within seconds". It covers the poll that
// finds kinds installed after the start (1s here, 15s by default) and the reconcile.
const within = 15 * time.Second

var (
	k8s client.Client
	ctx context.Context
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	env, err := testenv.New(testenv.Istio | testenv.Linkerd)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	var cancel context.CancelFunc
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	mg, err := inprocess.Start(cfg, inprocess.Options{Floors: true, KindPoll: time.Second,
		Controller: controller.Options{MaxConcurrentReconciles: 2}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = mg.Stop() }()
	k8s = mg.Client

	// Installed after the start: meshguard must find and watch them on its own.
	npa, err := crds.NetworkPolicyAPICRDs()
	if err == nil {
		_, err = envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{CRDs: npa})
	}
	for _, ns := range []string{"istio-system", "sandbox"} {
		if err == nil {
			err = k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// object reads one object from YAML.
func object(t *testing.T, y string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(y), &u.Object); err != nil {
		t.Fatal(err)
	}
	return u
}

func profile(t *testing.T, y string) *v1alpha1.MeshSecurityProfile {
	t.Helper()
	p := &v1alpha1.MeshSecurityProfile{}
	if err := yaml.UnmarshalStrict([]byte(y), p); err != nil {
		t.Fatal(err)
	}
	return p
}

func namespace(g Gomega, name string, labels map[string]string) {
	g.Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}})).To(Succeed())
}

// met is "<status>/<reason>: <message>" of ExpectationsMet once it describes the current
// generation.
func met(p *v1alpha1.MeshSecurityProfile) func() string {
	return func() string {
		cur := &v1alpha1.MeshSecurityProfile{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(p), cur); err != nil {
			return err.Error()
		}
		c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionExpectationsMet)
		if c == nil || cur.Status.ObservedGeneration != cur.Generation {
			return ""
		}
		return string(c.Status) + "/" + c.Reason + ": " + c.Message
	}
}

// external are the profile's status.externalPolicies as "Kind/name: weakens".
func external(p *v1alpha1.MeshSecurityProfile) func() []string {
	return func() []string {
		cur := &v1alpha1.MeshSecurityProfile{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(p), cur); err != nil {
			return []string{err.Error()}
		}
		var out []string
		for _, e := range cur.Status.ExternalPolicies {
			out = append(out, e.Kind+"/"+e.Name+": "+e.Weakens)
		}
		return out
	}
}

// opens creates obj, expects ExpectationsMet False naming it within seconds, deletes it and
// expects ExpectationsMet True again.
func opens(t *testing.T, p *v1alpha1.MeshSecurityProfile, obj client.Object, naming string) {
	t.Helper()
	g := NewWithT(t)
	g.Eventually(met(p), within, 100*time.Millisecond).Should(HavePrefix("True/AllMet"))
	start := time.Now()
	g.Expect(k8s.Create(ctx, obj)).To(Succeed())
	g.Eventually(met(p), within, 100*time.Millisecond).Should(And(HavePrefix("False/ExpectationNotMet"), ContainSubstring(naming)))
	t.Logf("%s: ExpectationsMet False after %v", naming, time.Since(start).Round(10*time.Millisecond))
	start = time.Now()
	g.Expect(k8s.Delete(ctx, obj)).To(Succeed())
	g.Eventually(met(p), within, 100*time.Millisecond).Should(HavePrefix("True/AllMet"))
	t.Logf("%s removed: ExpectationsMet True after %v", naming, time.Since(start).Round(10*time.Millisecond))
}

// An Istio profile whose default deny decides: the mesh layers are the ones that deny.
func TestIstioRootNamespaceAllow(t *testing.T) {
	g := NewWithT(t)
	namespace(g, "root-a", nil)
	p := profile(t, `
metadata: {name: p, namespace: root-a}
spec:
  authorization: {defaultDeny: true}
  expectations:
  - {name: sandbox-cannot-reach-api, from: {namespace: sandbox}, to: {podLabels: {app: api}, port: 8080}, want: Denied}`)
	g.Expect(k8s.Create(ctx, p)).To(Succeed())
	opens(t, p, object(t, `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: mesh-allow, namespace: istio-system}
spec: {action: ALLOW, rules: [{}]}`), "AuthorizationPolicy istio-system/mesh-allow[0] (foreign)")
}

// A profile whose NetworkPolicy default deny decides.
func TestForeignNetworkPolicy(t *testing.T) {
	g := NewWithT(t)
	namespace(g, "np-b", nil)
	p := profile(t, `
metadata: {name: p, namespace: np-b}
spec:
  networkPolicy: {defaultDeny: [Ingress]}
  expectations:
  - {name: sandbox-cannot-reach-api, from: {namespace: sandbox}, to: {podLabels: {app: api}, port: 8080}, want: Denied}`)
	g.Expect(k8s.Create(ctx, p)).To(Succeed())
	port := intstr.FromInt32(8080)
	opens(t, p, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "np-b", Name: "open-8080"},
		Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: &port}}}}}},
		"NetworkPolicy np-b/open-8080[0] (foreign)")
}

// The floor's Allow rule is part of what the namespace gets: its own expectations must see it.
func TestFloorAllowRule(t *testing.T) {
	g := NewWithT(t)
	namespace(g, "floor-c", map[string]string{"tier": "floored"})
	p := profile(t, `
metadata: {name: p, namespace: floor-c}
spec:
  authorization: {defaultDeny: true}
  expectations:
  - {name: sandbox-cannot-reach-api, from: {namespace: sandbox}, to: {podLabels: {app: api}, port: 8080}, want: Denied}`)
	g.Expect(k8s.Create(ctx, p)).To(Succeed())
	floor := &v1alpha1.ClusterMeshSecurityProfile{}
	g.Expect(yaml.UnmarshalStrict([]byte(`
apiVersion: security.meshguard.dev/v1alpha1
kind: ClusterMeshSecurityProfile
metadata: {name: sandbox-floor}
spec:
  namespaceSelector: {matchLabels: {tier: floored}}
  authorization:
    rules:
    - {name: sandbox-reads, from: {namespaces: [sandbox]}, to: {ports: [8080]}}`), floor)).To(Succeed())
	opens(t, p, floor, "AuthorizationPolicy floor-c/p-rule-sandbox-floor-sandbox-reads[0]")
}

// An AdminNetworkPolicy Allow is evaluated before NetworkPolicies: the profile's default deny
// does not stop what it admits. It is reported as widening too (Effective).
func TestAdminNetworkPolicyAllow(t *testing.T) {
	g := NewWithT(t)
	namespace(g, "anp-d", nil)
	p := profile(t, `
metadata: {name: p, namespace: anp-d}
spec:
  networkPolicy: {defaultDeny: [Ingress]}
  expectations:
  - {name: sandbox-cannot-reach-api, from: {namespace: sandbox}, to: {podLabels: {app: api}, port: 8080}, want: Denied}`)
	g.Expect(k8s.Create(ctx, p)).To(Succeed())
	anp := object(t, anpYAML)
	g.Eventually(met(p), within, 100*time.Millisecond).Should(HavePrefix("True/AllMet"))
	g.Expect(k8s.Create(ctx, anp)).To(Succeed())
	g.Eventually(external(p), within, 100*time.Millisecond).Should(ContainElement(
		HavePrefix("AdminNetworkPolicy/allow-into-anp-d: networkPolicy.defaultDeny Ingress: Ingress rule sandbox (priority 10)")))
	g.Expect(k8s.Delete(ctx, anp)).To(Succeed())
	g.Eventually(external(p), within, 100*time.Millisecond).Should(BeEmpty())

	// The Done-when form: the AdminNetworkPolicy Allow (network-policy-api v0.1.1's v1alpha1, whose
	// peers are NamespacedPeers) makes the expectation not met, naming it, and met again once gone.
	opens(t, p, object(t, anpYAML), "AdminNetworkPolicy allow-into-anp-d[0] (foreign)")
}

// A ClusterNetworkPolicy of the Admin tier (network-policy-api v0.3.0, v1alpha2) accepts before
// any NetworkPolicy.
func TestClusterNetworkPolicyAccept(t *testing.T) {
	g := NewWithT(t)
	namespace(g, "cnp-f", nil)
	p := profile(t, `
metadata: {name: p, namespace: cnp-f}
spec:
  networkPolicy: {defaultDeny: [Ingress]}
  expectations:
  - {name: sandbox-cannot-reach-api, from: {namespace: sandbox}, to: {podLabels: {app: api}, port: 8080}, want: Denied}`)
	g.Expect(k8s.Create(ctx, p)).To(Succeed())
	opens(t, p, object(t, `
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: accept-into-cnp-f}
spec:
  tier: Admin
  priority: 10
  subject: {namespaces: {matchLabels: {kubernetes.io/metadata.name: cnp-f}}}
  ingress: [{name: sandbox, action: Accept, from: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: sandbox}}}]}]`),
		"ClusterNetworkPolicy accept-into-cnp-f[0] (foreign)")
	g.Eventually(external(p), within, 100*time.Millisecond).Should(BeEmpty())
}

const anpYAML = `
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: allow-into-anp-d}
spec:
  priority: 10
  subject: {namespaces: {matchLabels: {kubernetes.io/metadata.name: anp-d}}}
  ingress: [{name: sandbox, action: Allow, from: [{namespaces: {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: sandbox}}}}]}]`

// A Linkerd ServerAuthorization that selects the profile's Server authorizes more than the
// profile: reported as weakening, and it opens the flow.
func TestLinkerdServerAuthorization(t *testing.T) {
	g := NewWithT(t)
	namespace(g, "lk-e", nil)
	p := profile(t, `
metadata: {name: p, namespace: lk-e}
spec:
  mesh: Linkerd
  authorization:
    defaultDeny: true
    rules:
    - {name: web-reads-api, selector: {matchLabels: {app: api}}, from: {serviceAccounts: [frontend/web]}, to: {ports: [8080]}}
  expectations:
  - {name: batch-cannot-call-api, from: {serviceAccount: batch/worker}, to: {podLabels: {app: api}, port: 8080}, want: Denied}`)
	g.Expect(k8s.Create(ctx, p)).To(Succeed())
	saz := object(t, sazYAML)
	g.Eventually(met(p), within, 100*time.Millisecond).Should(HavePrefix("True/AllMet"))
	g.Expect(k8s.Create(ctx, saz)).To(Succeed())
	g.Eventually(external(p), within, 100*time.Millisecond).Should(ContainElement(And(
		HavePrefix("ServerAuthorization/legacy-open: Server p-8080-"), ContainSubstring("authorizes identities *"))))
	g.Expect(k8s.Delete(ctx, saz)).To(Succeed())
	g.Eventually(external(p), within, 100*time.Millisecond).Should(BeEmpty())

	opens(t, p, object(t, sazYAML), "ServerAuthorization lk-e/legacy-open")
}

const sazYAML = `
apiVersion: policy.linkerd.io/v1beta1
kind: ServerAuthorization
metadata: {name: legacy-open, namespace: lk-e}
spec: {server: {selector: {}}, client: {meshTLS: {identities: ["*"]}}}`

// A pod without a proxy in a namespace that asks for injection escapes the mesh: the profile
// lists it (Effective), and an expectation on it is answered as for an unmeshed destination.
func TestPodWithoutProxy(t *testing.T) {
	g := NewWithT(t)
	namespace(g, "pods-g", map[string]string{"istio-injection": "enabled"})
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "pods-g", Name: "api-legacy", Labels: map[string]string{"app": "api"},
		Annotations: map[string]string{"sidecar.istio.io/inject": "false"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.invalid/api"}}}}
	g.Expect(k8s.Create(ctx, pod)).To(Succeed())
	p := profile(t, `
metadata: {name: p, namespace: pods-g}
spec:
  authorization: {defaultDeny: true}
  expectations:
  - {name: sandbox-cannot-reach-api, from: {namespace: sandbox}, to: {podLabels: {app: api}, port: 8080}, want: Denied}`)
	g.Expect(k8s.Create(ctx, p)).To(Succeed())
	g.Eventually(external(p), within, 100*time.Millisecond).Should(ContainElement(
		HavePrefix(`Pod/api-legacy: mtls and authorization: the pod has no Istio proxy (no istio-proxy container (sidecar.istio.io/inject: "false"))`)))
	// With a proxy, the default deny would deny it (TestIstioRootNamespaceAllow): here only the
	// NetworkPolicy layers apply, and none isolates the pod.
	g.Eventually(met(p), within, 100*time.Millisecond).Should(HavePrefix("False/ExpectationNotMet: expectation sandbox-cannot-reach-api wants Denied, got Allowed"))
}
