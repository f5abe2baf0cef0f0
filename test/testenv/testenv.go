// Package testenv starts a real control plane for meshguard's integration and end-to-end tests
// and for `make run-local`: etcd and kube-apiserver built from source (hack/build-controlplane.sh),
// with meshguard's CRD and the real Istio and Linkerd CRDs installed.
package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/meshguard/meshguard/test/crds"
)

// RepoRoot is the repository's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// KubernetesVersion is the k8s.io/kubernetes version pinned in hack/controlplane/go.mod.
func KubernetesVersion() (string, error) {
	f, err := os.Open(filepath.Join(RepoRoot(), "hack", "controlplane", "go.mod"))
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }() // opened for reading only
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) == 2 && fields[0] == "k8s.io/kubernetes" {
			return fields[1], nil
		}
	}
	return "", fmt.Errorf("k8s.io/kubernetes not pinned in hack/controlplane/go.mod")
}

// AssetsDir finds the control plane binaries: KUBEBUILDER_ASSETS when set, otherwise
// bin/controlplane-<version>, built by hack/build-controlplane.sh when missing.
func AssetsDir() (string, error) {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d, nil
	}
	v, err := KubernetesVersion()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(RepoRoot(), "bin", "controlplane-"+v)
	if _, err := os.Stat(filepath.Join(dir, "kube-apiserver")); err == nil {
		return dir, nil
	}
	cmd := exec.Command(filepath.Join(RepoRoot(), "hack", "build-controlplane.sh"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("build the control plane (hack/build-controlplane.sh): %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// LinkerdInstalled says whether environments get Linkerd's CRDs: false only when they cannot be
// had and MESHGUARD_SKIP_LINKERD=1 asks to go on without them, the reason then given in skip (for
// Ginkgo's Skip). Otherwise New installs them or fails.
func LinkerdInstalled() (ok bool, skip string) {
	_, err := crds.LinkerdCRDs()
	if err != nil && errors.Is(err, crds.ErrLinkerdUnavailable) && crds.SkipLinkerd() {
		return false, fmt.Sprintf("%s=1 and Linkerd's CRDs cannot be had: %v", crds.SkipLinkerdEnv, err)
	}
	return true, ""
}

// Mesh selects which mesh CRDs an environment installs.
type Mesh int

const (
	// NoMesh installs only meshguard's CRD: a cluster without Istio or Linkerd.
	NoMesh Mesh = 0
	// Istio installs Istio's CRDs from the istio.io/api module.
	Istio Mesh = 1 << iota
	// Linkerd installs Linkerd's policy CRDs from Linkerd's chart.
	Linkerd
	// NetworkPolicyAPI installs AdminNetworkPolicy, BaselineAdminNetworkPolicy and
	// ClusterNetworkPolicy from the sigs.k8s.io/network-policy-api module (crds.NetworkPolicyAPICRDs).
	NetworkPolicyAPI
	// GatewayAPI installs the Gateway API CRDs (Istio's waypoints are Gateways) from the
	// sigs.k8s.io/gateway-api module; those a mesh's CRDs already brought (Linkerd bundles its
	// own HTTPRoute) are kept as the mesh installs them.
	GatewayAPI
	// PolicyReport installs the Policy WG's PolicyReport and ClusterPolicyReport
	// (wgpolicyk8s.io/v1alpha2) from the Kyverno module hack/kyverno pins (crds.PolicyReportCRDs).
	PolicyReport
)

// New returns an environment (not started) with meshguard's CRD and the selected mesh CRDs.
func New(meshes Mesh) (*envtest.Environment, error) {
	dir, err := AssetsDir()
	if err != nil {
		return nil, err
	}
	var extra []*apiextensionsv1.CustomResourceDefinition
	if meshes&Istio != 0 {
		c, err := crds.IstioCRDs()
		if err != nil {
			return nil, fmt.Errorf("istio CRDs: %w", err)
		}
		extra = append(extra, c...)
	}
	if meshes&Linkerd != 0 {
		c, err := crds.LinkerdCRDs()
		switch {
		case errors.Is(err, crds.ErrLinkerdUnavailable) && crds.SkipLinkerd():
			// Only on explicit request: Linkerd objects then report LinkerdNotInstalled, and the
			// Linkerd specs skip themselves (see LinkerdInstalled).
			fmt.Fprintf(os.Stderr, "testenv: %s=1: running without Linkerd's CRDs: %v\n", crds.SkipLinkerdEnv, err)
		case err != nil:
			// Never continue without them silently: every Linkerd test would pass without testing.
			return nil, fmt.Errorf("linkerd CRDs: %w", err)
		default:
			extra = append(extra, c...)
		}
	}
	if meshes&NetworkPolicyAPI != 0 {
		c, err := crds.NetworkPolicyAPICRDs()
		if err != nil {
			return nil, fmt.Errorf("network-policy-api CRDs: %w", err)
		}
		extra = append(extra, c...)
	}
	if meshes&PolicyReport != 0 {
		c, err := crds.PolicyReportCRDs(RepoRoot())
		if err != nil {
			return nil, fmt.Errorf("PolicyReport CRDs: %w", err)
		}
		extra = append(extra, c...)
	}
	if meshes&GatewayAPI != 0 {
		c, err := crds.GatewayAPICRDs()
		if err != nil {
			return nil, fmt.Errorf("gateway API CRDs: %w", err)
		}
		have := map[string]bool{}
		for _, x := range extra {
			have[x.Name] = true
		}
		for _, x := range c {
			if !have[x.Name] {
				extra = append(extra, x)
			}
		}
	}
	return &envtest.Environment{
		BinaryAssetsDirectory: dir,
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		CRDs:                  extra,
	}, nil
}
