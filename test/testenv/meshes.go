package testenv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/meshguard/meshguard/internal/certs"
	"github.com/meshguard/meshguard/internal/certs/certstest"
)

// The namespaces of the meshes' control planes, and the identity `make deploy` gives meshguard.
const (
	IstioNamespace       = "istio-system"
	LinkerdNamespace     = "linkerd"
	DeployNamespace      = "meshguard-system"
	DeployServiceAccount = "meshguard-controller-manager"
)

// MeshCAs are the meshes' certificate authorities, as their installations create them.
type MeshCAs struct {
	// IstioRoot is istiod's self-signed root (Secret istio-ca-secret).
	IstioRoot *certstest.Cert
	// LinkerdAnchor and LinkerdIssuer are Linkerd's trust anchor and identity issuer; nil
	// unless asked for.
	LinkerdAnchor, LinkerdIssuer *certstest.Cert
}

// CreateMeshCAs creates Istio's self-signed CA Secret in istio-system and, with linkerd, Linkerd's
// trust anchor ConfigMap and identity issuer Secret in linkerd, so that certificate health keeps
// no profile from Ready. Objects that exist already are left as they are.
func CreateMeshCAs(ctx context.Context, c client.Client, istioSubject string, linkerd bool) (*MeshCAs, error) {
	root, err := certstest.MintCA(certstest.WithSubject(istioSubject))
	if err != nil {
		return nil, err
	}
	cas := &MeshCAs{IstioRoot: root}
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: IstioNamespace}},
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: IstioNamespace, Name: certs.IstioSelfSignedCASecret},
			Type:       "istio.io/ca-root",
			Data:       map[string][]byte{certs.KeyCACert: root.CertPEM, "ca-key.pem": root.KeyPEM},
		},
	}
	if linkerd {
		if cas.LinkerdAnchor, err = certstest.MintCA(certstest.WithSubject("root.linkerd.cluster.local")); err != nil {
			return nil, err
		}
		if cas.LinkerdIssuer, err = certstest.MintIntermediate(cas.LinkerdAnchor, certstest.WithSubject("identity.linkerd.cluster.local")); err != nil {
			return nil, err
		}
		objs = append(objs,
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: LinkerdNamespace}},
			&corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Namespace: LinkerdNamespace, Name: "linkerd-identity-trust-roots"},
				Data:       map[string]string{"ca-bundle.crt": string(cas.LinkerdAnchor.CertPEM)},
			},
			&corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Namespace: LinkerdNamespace, Name: "linkerd-identity-issuer"},
				Type:       corev1.SecretTypeTLS,
				Data:       map[string][]byte{"tls.crt": cas.LinkerdIssuer.CertPEM, "tls.key": cas.LinkerdIssuer.KeyPEM, "ca.crt": cas.LinkerdAnchor.CertPEM},
			})
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("create %T %s/%s: %w", o, o.GetNamespace(), o.GetName(), err)
		}
	}
	return cas, nil
}

// CreateNamespace creates a namespace with the labels and Istio's root certificate ConfigMap in
// it, as istiod publishes it into every namespace. An existing namespace is fine.
func (cas *MeshCAs) CreateNamespace(ctx context.Context, c client.Client, name string, labels map[string]string) error {
	err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: certs.IstioRootConfigMap},
		Data:       map[string]string{certs.IstioRootConfigMapKey: string(cas.IstioRoot.CertPEM)},
	}
	if err := c.Create(ctx, cm); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create ConfigMap %s/%s: %w", name, certs.IstioRootConfigMap, err)
	}
	return nil
}

// Kubectl runs the control plane's kubectl with the kubeconfig, from the repository root (so
// that paths such as config/samples work), with stdin when it is not nil.
func (c *Cluster) Kubectl(ctx context.Context, kubeconfig string, stdin io.Reader, args ...string) (string, string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.Env.BinaryAssetsDirectory, "kubectl"), args...)
	cmd.Dir = RepoRoot()
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// Deploy deploys meshguard as `make deploy` does (the Deployment stays without pods: there are no
// nodes) and writes dir/manager.kubeconfig for its service account, which the manager then runs
// with: outside the cluster, but with exactly the permissions it has inside.
func (c *Cluster) Deploy(ctx context.Context, adminKubeconfig, dir string) (kubeconfig string, cfg *rest.Config, err error) {
	if _, stderr, err := c.Kubectl(ctx, adminKubeconfig, nil, "apply", "--server-side", "--force-conflicts", "-k", "config/default"); err != nil {
		return "", nil, fmt.Errorf("deploy meshguard with kubectl apply -k config/default: %w: %s", err, stderr)
	}
	sa, err := c.Env.AddUser(envtest.User{
		Name:   "system:serviceaccount:" + DeployNamespace + ":" + DeployServiceAccount,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + DeployNamespace, "system:authenticated"},
	}, nil)
	if err != nil {
		return "", nil, fmt.Errorf("add the service account user: %w", err)
	}
	b, err := sa.KubeConfig()
	if err != nil {
		return "", nil, err
	}
	kubeconfig = filepath.Join(dir, "manager.kubeconfig")
	return kubeconfig, sa.Config(), os.WriteFile(kubeconfig, b, 0o600)
}
