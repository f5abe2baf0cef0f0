package pipeline

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func TestARemoteClusterIsOneWithoutIstiodWhoseInjectorCallsElsewhere(t *testing.T) {
	for _, tc := range []struct {
		name   string
		facts  istioClusterFacts
		remote bool
	}{
		{"a primary: istiod runs here", istioClusterFacts{localIstiod: "istiod", readerAccount: true}, false},
		{"a primary that also serves remotes keeps its own injector", istioClusterFacts{localIstiod: "istiod", externalInjector: "istio-sidecar-injector", readerAccount: true}, false},
		{"a remote: no istiod, the injector calls the primary", istioClusterFacts{externalInjector: "istio-sidecar-injector", readerAccount: true}, true},
		{"a remote: no istiod, the namespace names its control plane cluster", istioClusterFacts{controlPlaneClusters: "cluster1"}, true},
		{"the config cluster of an external control plane: istiod validates its config", istioClusterFacts{externalInjector: "istio-sidecar-injector", externalValidator: "istio-validator-external-istiod"}, false},
		{"Istio's base chart alone (the reader account is in every cluster) says nothing", istioClusterFacts{readerAccount: true}, false},
		{"no Istio at all", istioClusterFacts{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.facts.configElsewhere("istio-system")
			if tc.remote {
				NewWithT(t).Expect(got).To(ContainSubstring("istio/istio#31211"))
			} else {
				NewWithT(t).Expect(got).To(BeEmpty())
			}
		})
	}
}

func TestTheIstioClusterFactsAreReadFromTheirObjects(t *testing.T) {
	g := NewWithT(t)
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	url := "https://istiod.primary.example.com:15017/inject/cluster/cluster2/net/network1"
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "istio-system", Annotations: map[string]string{annotationControlPlaneClusters: "cluster1"}}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "istio-system", Name: istioReaderServiceAccount}},
		// The istiod Service of a remote cluster selects nothing: its Endpoints are the primary's.
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "istio-system", Name: "istiod"}},
		&admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "istio-sidecar-injector"},
			Webhooks: []admissionregistrationv1.MutatingWebhook{{Name: "namespace.sidecar-injector.istio.io", ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url}}}},
	).Build()
	f, err := readIstioClusterFacts(context.Background(), c, c, "istio-system")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f).To(Equal(istioClusterFacts{externalInjector: "istio-sidecar-injector", controlPlaneClusters: "cluster1", readerAccount: true}))

	g.Expect(c.Create(context.Background(), &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "istio-system", Name: "istiod-canary"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "istiod", "istio.io/rev": "canary"}}})).To(Succeed())
	f, err = readIstioClusterFacts(context.Background(), c, c, "istio-system")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f.localIstiod).To(Equal("istiod-canary"), "a revision's istiod selecting pods here")
	g.Expect(f.configElsewhere("istio-system")).To(BeEmpty())
}
