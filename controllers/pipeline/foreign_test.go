package pipeline

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/event"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/certs"
)

func TestTheForeignCacheHoldsExactlyWhatTheManagersCacheDoesNot(t *testing.T) {
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   bool
	}{
		{"an unlabelled object is foreign", nil, true},
		{"an object managed by another tool is foreign", map[string]string{v1alpha1.LabelManagedBy: "argocd"}, true},
		{"an object labelled as meshguard's is left to the manager's cache", map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := foreignSelector().Matches(labels.Set(tc.labels)); got != tc.want {
				t.Errorf("foreign selector matches %v: %v, want %v", tc.labels, got, tc.want)
			}
		})
	}
}

func TestForeignMetadataKeepsOnlyIdentity(t *testing.T) {
	g := NewWithT(t)
	in := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: "open", Namespace: "shop", ResourceVersion: "7",
		Labels:          map[string]string{"app": "x"},
		Annotations:     map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{...}"},
		ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
		OwnerReferences: []metav1.OwnerReference{{Kind: "Thing", Name: "t", UID: "u"}}}}
	out, err := stripToIdentity(in)
	g.Expect(err).NotTo(HaveOccurred())
	o := out.(*metav1.PartialObjectMetadata)
	g.Expect(o.Annotations).To(BeEmpty())
	g.Expect(o.ManagedFields).To(BeEmpty())
	g.Expect(o.Labels).To(HaveKeyWithValue("app", "x"))
	g.Expect(o.OwnerReferences).To(HaveLen(1))
	g.Expect(o.ResourceVersion).To(Equal("7"), "the resourceVersion tells a changed object")
}

func TestAVerdictIsReusedOnlyForTheSameInputs(t *testing.T) {
	g := NewWithT(t)
	f := &foreignObjects{external: map[types.NamespacedName]externalMemo{}}
	p := &v1alpha1.MeshSecurityProfile{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "p", UID: "1", Generation: 2}}
	verdict := []v1alpha1.ExternalPolicy{{Kind: "PeerAuthentication", Name: "legacy"}}
	key := memoKey(p.Generation, []string{"PeerAuthentication/shop/legacy@5", "NetworkPolicy/shop/open@3"})
	f.remember(p, key, verdict)

	got, ok := f.remembered(p, memoKey(2, []string{"NetworkPolicy/shop/open@3", "PeerAuthentication/shop/legacy@5"}))
	g.Expect(ok).To(BeTrue(), "the same objects in another order")
	g.Expect(got).To(Equal(verdict))
	_, ok = f.remembered(p, memoKey(2, []string{"PeerAuthentication/shop/legacy@6", "NetworkPolicy/shop/open@3"}))
	g.Expect(ok).To(BeFalse(), "a changed foreign object")
	_, ok = f.remembered(p, memoKey(3, []string{"PeerAuthentication/shop/legacy@5", "NetworkPolicy/shop/open@3"}))
	g.Expect(ok).To(BeFalse(), "a new generation of the profile")
	recreated := p.DeepCopy()
	recreated.UID = "2"
	_, ok = f.remembered(recreated, key)
	g.Expect(ok).To(BeFalse(), "a profile recreated with the same name")
	f.Forget(types.NamespacedName{Namespace: "shop", Name: "p"})
	_, ok = f.remembered(p, key)
	g.Expect(ok).To(BeFalse(), "a forgotten profile")
}

func TestAnObjectMeshguardWroteIsNeverCreatedOnTheCachesWord(t *testing.T) {
	g := NewWithT(t)
	gvkNetworkPolicy := schema.GroupVersionKind{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicy"}
	gvkLinkerdServer := schema.GroupVersionKind{Group: "policy.linkerd.io", Version: "v1beta3", Kind: "Server"}
	f := &foreignObjects{kinds: map[schema.GroupVersionKind]bool{gvkNetworkPolicy: true}}
	key := types.NamespacedName{Namespace: "shop", Name: "p-allow-dns"}
	f.wrote(gvkNetworkPolicy, key)
	_, known, err := f.exists(context.Background(), gvkNetworkPolicy, key)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(known).To(BeFalse(), "the caches may lag behind meshguard's own apply: ask the API server")
	_, known, err = f.exists(context.Background(), gvkLinkerdServer, key)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(known).To(BeFalse(), "a kind whose metadata is not watched")
	var none *foreignObjects
	_, known, _ = none.exists(context.Background(), gvkNetworkPolicy, key)
	g.Expect(known).To(BeFalse(), "without a foreign cache every miss is asked of the API server")
}

func TestHealthyCertificateVerdictsAreReusedUntilTheNextThreshold(t *testing.T) {
	g := NewWithT(t)
	var v certificateVerdicts
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	src := certs.Source{Kind: "ConfigMap", Namespace: "shop", Name: certs.IstioRootConfigMap, Found: true, Data: map[string][]byte{"root-cert.pem": []byte("pem")}}
	computed := 0
	healthy := func() certs.Report {
		computed++
		return certs.Report{Healthy: true, NextCheck: now.Add(time.Hour), Certificates: []v1alpha1.CertificateStatus{{Subject: "root"}}}
	}
	a := v.check(now, time.Hour, healthy, src)
	b := v.check(now.Add(time.Minute), time.Hour, healthy, src)
	g.Expect(computed).To(Equal(1), "the same data before the next threshold")
	b.Certificates[0].Subject = "changed"
	g.Expect(a.Certificates[0].Subject).To(Equal("root"), "each caller gets rows of its own")
	v.check(now.Add(time.Hour), time.Hour, healthy, src)
	g.Expect(computed).To(Equal(2), "at the threshold the verdict may change")
	other := src
	other.Data = map[string][]byte{"root-cert.pem": []byte("rotated")}
	v.check(now, time.Hour, healthy, other)
	g.Expect(computed).To(Equal(3), "other data")
	v.check(now, 2*time.Hour, healthy, src)
	g.Expect(computed).To(Equal(4), "another minValidity")

	unhealthy := func() certs.Report { computed++; return certs.Report{Reason: v1alpha1.ReasonCertExpiringSoon} }
	v.check(now, time.Hour, unhealthy, src, src)
	v.check(now, time.Hour, unhealthy, src, src)
	g.Expect(computed).To(Equal(6), "an unhealthy verdict counts time in its message and is never reused")
}

func TestOneCreatedEventNamesAtMostTenObjects(t *testing.T) {
	g := NewWithT(t)
	g.Expect(summarize([]string{"PeerAuthentication p-mtls", "NetworkPolicy p-allow-dns"}, 10)).To(Equal("PeerAuthentication p-mtls, NetworkPolicy p-allow-dns"))
	many := make([]string, 12)
	for i := range many {
		many[i] = "x"
	}
	g.Expect(summarize(many, 10)).To(HaveSuffix("x and 2 more"))
}

func TestOnlyTheEchoOfMeshguardsOwnWriteIsIgnored(t *testing.T) {
	g := NewWithT(t)
	var w ownWrites
	obj := func(rv string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("security.istio.io/v1")
		u.SetKind("PeerAuthentication")
		u.SetNamespace("shop")
		u.SetName("p-mtls")
		u.SetResourceVersion(rv)
		return u
	}
	w.wrote(obj("10"))
	pred := w.NotEcho()
	g.Expect(pred.Update(event.UpdateEvent{ObjectOld: obj("9"), ObjectNew: obj("11")})).To(BeTrue(), "someone else's later write")
	g.Expect(pred.Update(event.UpdateEvent{ObjectOld: obj("9"), ObjectNew: obj("10")})).To(BeFalse(), "the echo of meshguard's write")
	g.Expect(pred.Update(event.UpdateEvent{ObjectOld: obj("9"), ObjectNew: obj("10")})).To(BeTrue(), "an echo is ignored once only (a resync delivers it again)")
	w.wrote(obj("12"))
	g.Expect(pred.Delete(event.DeleteEvent{Object: obj("12")})).To(BeTrue(), "a deletion is never an echo")
	other := obj("12")
	other.SetNamespace("api")
	g.Expect(pred.Create(event.CreateEvent{Object: other})).To(BeTrue(), "the same resourceVersion on another object")
}
