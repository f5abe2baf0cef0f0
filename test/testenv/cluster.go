package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Cluster is a running local control plane: etcd and kube-apiserver (envtest) plus
// kube-controller-manager, so that ownerReferences are garbage-collected as in a real cluster.
type Cluster struct {
	Env        *envtest.Environment
	Config     *rest.Config
	KubeConfig []byte
	// AdminKubeconfig is KubeConfig written to dir/admin.kubeconfig, for kubectl and processes.
	AdminKubeconfig string
	kcm             *exec.Cmd
	kcmDone         chan struct{}
}

// StartCluster starts a cluster with the selected mesh CRDs; logs of kube-controller-manager go to
// dir/kube-controller-manager.log.
func StartCluster(meshes Mesh, dir string) (*Cluster, error) {
	env, err := New(meshes)
	if err != nil {
		return nil, err
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("start etcd and kube-apiserver: %w", err)
	}
	c := &Cluster{Env: env, Config: cfg}
	user, err := env.AddUser(envtest.User{Name: "meshguard-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		c.Stop()
		return nil, fmt.Errorf("add admin user: %w", err)
	}
	if c.KubeConfig, err = user.KubeConfig(); err != nil {
		c.Stop()
		return nil, err
	}
	c.AdminKubeconfig = filepath.Join(dir, "admin.kubeconfig")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		c.Stop()
		return nil, err
	}
	if err := os.WriteFile(c.AdminKubeconfig, c.KubeConfig, 0o600); err != nil {
		c.Stop()
		return nil, err
	}
	if err := c.startControllerManager(dir); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) startControllerManager(dir string) error {
	kubeconfig := c.AdminKubeconfig
	logf, err := os.Create(filepath.Join(dir, "kube-controller-manager.log"))
	if err != nil {
		return err
	}
	bin := filepath.Join(c.Env.BinaryAssetsDirectory, "kube-controller-manager")
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("kube-controller-manager not found in %s: run hack/build-controlplane.sh", c.Env.BinaryAssetsDirectory)
	}
	c.kcm = exec.Command(bin,
		"--kubeconfig", kubeconfig,
		"--authentication-kubeconfig", kubeconfig,
		"--authorization-kubeconfig", kubeconfig,
		// Garbage collection (children of deleted profiles) and namespace deletion are what a
		// local meshguard needs; the rest would need nodes and service account keys.
		"--controllers", "garbagecollector,namespace",
		"--leader-elect=false",
		"--bind-address", "127.0.0.1",
		"--secure-port", "0",
	)
	c.kcm.Stdout, c.kcm.Stderr = logf, logf
	if err := c.kcm.Start(); err != nil {
		return fmt.Errorf("start kube-controller-manager: %w", err)
	}
	c.kcmDone = make(chan struct{})
	go func() { _ = c.kcm.Wait(); _ = logf.Close(); close(c.kcmDone) }()
	return nil
}

// Stop stops kube-controller-manager, then kube-apiserver before etcd (once etcd is gone the
// apiserver ignores SIGTERM for a long time).
func (c *Cluster) Stop() {
	if c.kcm != nil && c.kcm.Process != nil {
		_ = c.kcm.Process.Signal(os.Interrupt)
		select {
		case <-c.kcmDone:
		case <-time.After(5 * time.Second):
			_ = c.kcm.Process.Kill()
		}
	}
	if c.Env != nil {
		_ = c.Env.Stop()
	}
}
