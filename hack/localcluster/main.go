// Command localcluster runs the local control plane of `make run-local` and the end-to-end tests:
// etcd, kube-apiserver (built from source, see hack/build-controlplane.sh) and
// kube-controller-manager for garbage collection, with meshguard's CRD and the real Istio and
// Linkerd CRDs installed. It writes an admin kubeconfig and runs until interrupted.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/meshguard/meshguard/test/testenv"
)

func main() {
	dir := flag.String("dir", "bin/local", "directory for the kubeconfig and logs")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "localcluster:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	_ = os.Remove(kubeconfig)
	c, err := testenv.StartCluster(testenv.Istio|testenv.Linkerd|testenv.GatewayAPI, dir)
	if err != nil {
		return err
	}
	defer c.Stop()
	// Written last: its presence tells scripts the control plane is ready.
	if err := os.WriteFile(kubeconfig+".tmp", c.KubeConfig, 0o600); err != nil {
		return err
	}
	if err := os.Rename(kubeconfig+".tmp", kubeconfig); err != nil {
		return err
	}
	fmt.Printf("control plane ready: export KUBECONFIG=%s\n", kubeconfig)
	<-ctx.Done()
	fmt.Println("stopping the control plane")
	return nil
}
