// Package admission checks the admission policies meshguard ships in config/admission on a real
// kube-apiserver (ValidatingAdmissionPolicy is GA since Kubernetes 1.30).
package admission

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/test/testenv"
)

// namePrefix is config/default's kustomize namePrefix.
const namePrefix = "meshguard-"

// admissionObjects reads config/admission/*.yaml as config/default deploys them.
func admissionObjects(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "admission", "profile_namespaces.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytesReader(b), 4096)
	var out []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			break
		}
		if len(u.Object) > 0 {
			u.SetName(namePrefix + u.GetName())
			out = append(out, u)
		}
	}
	return out
}

func TestProfilesInTheMeshRootAndControlPlaneNamespacesAreRefusedAtAdmission(t *testing.T) {
	g := NewWithT(t)
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	env, err := testenv.New(testenv.NoMesh)
	g.Expect(err).NotTo(HaveOccurred())
	cfg, err := env.Start()
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { g.Expect(env.Stop()).To(Succeed()) }()
	k8s, err := client.New(cfg, client.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())
	ctx := context.Background()

	objs := admissionObjects(t)
	g.Expect(objs).To(HaveLen(2), "a ValidatingAdmissionPolicy and its binding")
	for _, o := range objs {
		g.Expect(k8s.Create(ctx, o)).To(Succeed(), o.GetKind())
	}
	for _, ns := range []string{"istio-system", "linkerd", "shop"} {
		g.Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	}
	profile := func(ns string) *v1alpha1.MeshSecurityProfile {
		return &v1alpha1.MeshSecurityProfile{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p"},
			Spec: v1alpha1.MeshSecurityProfileSpec{Authorization: &v1alpha1.AuthorizationSpec{DefaultDeny: true}}}
	}

	// The API server starts enforcing a new policy once its informer has seen it.
	g.Eventually(func() error {
		return k8s.Create(ctx, profile("istio-system"), client.DryRunAll)
	}, 20*time.Second, 200*time.Millisecond).Should(MatchError(And(
		ContainSubstring("ValidatingAdmissionPolicy 'meshguard-profile-namespaces'"),
		ContainSubstring("metadata.namespace: a MeshSecurityProfile cannot govern namespace istio-system"))))
	g.Expect(k8s.Create(ctx, profile("linkerd"))).To(MatchError(ContainSubstring("cannot govern namespace linkerd")))
	g.Expect(k8s.Create(ctx, profile("shop"))).To(Succeed(), "any other namespace is fine")
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
