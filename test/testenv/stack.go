package testenv

import (
	"context"
	"fmt"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// Stack is what the end-to-end suites run the built manager on: the binary, a local cluster with
// the Istio and Linkerd CRDs and kube-controller-manager, the test's clients (not the subject: no
// client-side rate limit), the meshes' CAs and meshguard's CRD and RBAC deployed from
// config/default. No manager runs yet: StartManager with ManagerKubeconfig starts one.
type Stack struct {
	ManagerBin string
	Cluster    *Cluster
	Client     client.Client
	Clientset  kubernetes.Interface
	Dynamic    dynamic.Interface
	CAs        *MeshCAs
	// ManagerKubeconfig and ManagerConfig are the deployed service account's credentials; with
	// asAdmin, the cluster administrator's.
	ManagerKubeconfig string
	ManagerConfig     *rest.Config
}

// StackOptions say how the stack is set up.
type StackOptions struct {
	// IstioCASubject is the subject of the Istio root certificate (each suite names its own).
	IstioCASubject string
	// AsAdmin runs the manager as a cluster administrator instead of the deployed service account
	// (only to tell RBAC problems from others).
	AsAdmin bool
	// Meshes are the CRDs the cluster serves (default Istio|Linkerd).
	Meshes Mesh
	// ManagerBin is a manager already built (several stacks share one build); "" builds it.
	ManagerBin string
}

// StartStack builds the manager and starts the stack in dir. On error, what was started is stopped.
func StartStack(ctx context.Context, dir string, opts StackOptions) (_ *Stack, retErr error) {
	s := &Stack{}
	defer func() {
		if retErr != nil {
			s.Stop()
		}
	}()
	var err error
	// The binary a user runs: `go build` of the module's main package.
	if s.ManagerBin = opts.ManagerBin; s.ManagerBin == "" {
		if s.ManagerBin, err = BuildManager(ctx, dir); err != nil {
			return nil, err
		}
	}
	meshes := opts.Meshes
	if meshes == 0 {
		meshes = Istio | Linkerd
	}
	if s.Cluster, err = StartCluster(meshes, dir); err != nil {
		return nil, fmt.Errorf("start the cluster: %w", err)
	}
	cfg := rest.CopyConfig(s.Cluster.Config)
	cfg.QPS, cfg.Burst = -1, 0
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	utilruntime.Must(apiextensionsv1.AddToScheme(scheme))
	if s.Client, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return nil, err
	}
	if s.Clientset, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, err
	}
	if s.Dynamic, err = dynamic.NewForConfig(cfg); err != nil {
		return nil, err
	}
	// The meshes are installed first, then meshguard.
	if s.CAs, err = CreateMeshCAs(ctx, s.Client, opts.IstioCASubject, true); err != nil {
		return nil, err
	}
	if opts.AsAdmin {
		s.ManagerKubeconfig, s.ManagerConfig = s.Cluster.AdminKubeconfig, s.Cluster.Config
		return s, nil
	}
	s.ManagerKubeconfig, s.ManagerConfig, err = s.Cluster.Deploy(ctx, s.Cluster.AdminKubeconfig, dir)
	return s, err
}

// Stop stops the cluster.
func (s *Stack) Stop() {
	if s.Cluster != nil {
		s.Cluster.Stop()
	}
}
