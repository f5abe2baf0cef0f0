// Package explain runs `manager explain --kubeconfig` against a real kube-apiserver with the
// Istio CRDs, as a user who may only read policies: live explain lists, never writes.
package explain

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/internal/cli"
	"github.com/meshguard/meshguard/internal/render"
	"github.com/meshguard/meshguard/internal/validation"
	"github.com/meshguard/meshguard/test/testenv"
)

// foreign is a policy meshguard did not write: it denies the backend to frontend/web.
const foreign = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-web, namespace: shop}
spec:
  selector: {matchLabels: {app: backend}}
  action: DENY
  rules: [{from: [{source: {principals: ["cluster.local/ns/frontend/sa/web"]}}]}]
`

func TestLiveExplainReadsTheClustersPoliciesWithReadOnlyRights(t *testing.T) {
	g := NewWithT(t)
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	env, err := testenv.New(testenv.Istio)
	g.Expect(err).NotTo(HaveOccurred())
	cfg, err := env.Start()
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { g.Expect(env.Stop()).To(Succeed()) }()
	ctx := context.Background()
	k8s, err := client.New(cfg, client.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())

	// Creating the namespaces and the shop sample's objects as meshguard would, plus a foreign DENY policy.
	for _, ns := range []string{"shop", "frontend"} {
		g.Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	}
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "samples", "security_v1alpha1_meshsecurityprofile_shop.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	p, errs, err := validation.Decode(b)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(errs).To(BeEmpty())
	res, err := render.Render(p, render.DefaultOptions())
	g.Expect(err).NotTo(HaveOccurred())
	objs := res.Objects
	u := &unstructured.Unstructured{}
	g.Expect(yaml.Unmarshal([]byte(foreign), &u.Object)).To(Succeed())
	objs = append(objs, u)
	for _, o := range objs {
		o = o.DeepCopy()
		o.SetOwnerReferences(nil) // the profile itself is not in this cluster
		g.Expect(k8s.Create(ctx, o)).To(Succeed(), "%s %s", o.GetKind(), o.GetName())
	}

	// Giving a user only get and list on the kinds explain reads.
	rules := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list"}}}
	for _, gk := range cli.ExplainKinds {
		rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{gk.Group}, Resources: []string{"*"}, Verbs: []string{"get", "list"}})
	}
	g.Expect(k8s.Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "explain-reader"}, Rules: rules})).To(Succeed())
	g.Expect(k8s.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "explain-reader"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "explain-reader"},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: "explainer"}}})).To(Succeed())
	user, err := env.AddUser(envtest.User{Name: "explainer"}, nil)
	g.Expect(err).NotTo(HaveOccurred())
	kc, err := user.KubeConfig()
	g.Expect(err).NotTo(HaveOccurred())
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	g.Expect(os.WriteFile(kubeconfig, kc, 0o600)).To(Succeed())

	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := cli.Explain(append([]string{"--kubeconfig", kubeconfig}, args...), nil, &out, &errOut)
		return code, out.String(), errOut.String()
	}

	// Web to the backend on 8080: the NetworkPolicies allow it, the foreign DENY policy stops it.
	code, out, errOut := run("--from", "frontend/web", "--from-labels", "app=web", "--from-ip", "10.244.0.9",
		"--to-namespace", "shop", "--to-labels", "app=backend", "--port", "8080")
	g.Expect(code).To(Equal(cli.ExplainDenied), "stdout:\n%s\nstderr:\n%s", out, errOut)
	g.Expect(out).To(ContainSubstring("NetworkPolicy shop/baseline-ingress-frontend-to-backend[0]"))
	g.Expect(out).To(ContainSubstring("AuthorizationPolicy shop/no-web[0]"))
	g.Expect(out).To(ContainSubstring("note: Server.policy.linkerd.io is not installed"))

	// Another namespace's pod is stopped by the default-deny NetworkPolicy, in JSON.
	code, out, _ = run("--from", "other/x", "--from-ip", "10.244.0.10", "--to-namespace", "shop", "--to-labels", "app=backend", "--port", "8080", "-o", "json")
	g.Expect(code).To(Equal(cli.ExplainDenied))
	g.Expect(out).To(ContainSubstring(`"name": "baseline-default-deny"`))

	// Explain only lists: the objects are exactly those created.
	list := &unstructured.UnstructuredList{}
	list.SetAPIVersion("security.istio.io/v1")
	list.SetKind("AuthorizationPolicyList")
	g.Expect(k8s.List(ctx, list, client.InNamespace("shop"))).To(Succeed())
	names := []string{}
	for _, i := range list.Items {
		names = append(names, i.GetName())
	}
	g.Expect(strings.Join(names, ",")).To(Equal("baseline-default-deny,baseline-rule-web-reads-api,no-web"))
}
