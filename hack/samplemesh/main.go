// Command samplemesh plays the mesh control planes' part for `make run-local`, where no istiod or
// Linkerd runs: it creates sample CAs (an Istio plugged-in CA in istio-system/cacerts and a Linkerd
// trust anchor and issuer) and publishes the Istio root into namespaces as istiod does
// (istio-ca-root-cert). The Linkerd issuer expires in 30 days, so its profile shows a
// CertificatesHealthy=False/ExpiringSoon warning while staying Ready.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshguard/meshguard/internal/certs/certstest"
)

func main() {
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the local control plane")
	namespaces := flag.String("namespaces", "", "comma-separated namespaces that get istio-ca-root-cert")
	flag.Parse()
	if err := run(*kubeconfig, strings.Split(*namespaces, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "samplemesh:", err)
		os.Exit(1)
	}
}

func run(kubeconfig string, namespaces []string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme.Scheme})
	if err != nil {
		return err
	}
	ctx := context.Background()
	now := time.Now()

	root, err := certstest.MintCA(certstest.WithSubject("meshguard sample Istio root CA"))
	if err != nil {
		return err
	}
	inter, err := certstest.MintIntermediate(root, certstest.WithSubject("meshguard sample Istio intermediate CA"))
	if err != nil {
		return err
	}
	anchor, err := certstest.MintCA(certstest.WithSubject("root.linkerd.cluster.local"))
	if err != nil {
		return err
	}
	issuer, err := certstest.MintIntermediate(anchor, certstest.WithSubject("identity.linkerd.cluster.local"),
		certstest.WithValidity(now.Add(-time.Hour), now.Add(30*24*time.Hour)))
	if err != nil {
		return err
	}

	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "istio-system"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "linkerd"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "istio-system", Name: "cacerts"}, Data: map[string][]byte{
			"ca-cert.pem": inter.CertPEM, "ca-key.pem": inter.KeyPEM, "root-cert.pem": root.CertPEM,
			"cert-chain.pem": certstest.PEM(inter, root),
		}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "linkerd", Name: "linkerd-identity-trust-roots"},
			Data: map[string]string{"ca-bundle.crt": string(anchor.CertPEM)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "linkerd", Name: "linkerd-identity-issuer"}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{"tls.crt": issuer.CertPEM, "tls.key": issuer.KeyPEM, "ca.crt": anchor.CertPEM}},
	}
	for _, ns := range namespaces {
		if ns == "" {
			continue
		}
		objs = append(objs, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "istio-ca-root-cert"},
			Data: map[string]string{"root-cert.pem": string(root.CertPEM)}})
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %T %s: %w", o, o.GetName(), err)
		}
	}
	fmt.Println("sample mesh CAs created (Istio plugged-in CA in istio-system/cacerts, Linkerd anchor and issuer in linkerd)")
	return nil
}
