package crds

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

const (
	// KyvernoModule carries the Policy WG's PolicyReport CRDs (wgpolicyk8s.io/v1alpha2) that
	// Kyverno installs, in KyvernoPolicyReportDir.
	KyvernoModule = "github.com/kyverno/kyverno"
	// KyvernoPolicyReportDir is the folder of KyvernoModule with PolicyReport and
	// ClusterPolicyReport.
	KyvernoPolicyReportDir = "config/crds/policyreport"
)

// KyvernoVersion is the Kyverno version pinned in hack/kyverno/go.mod (the module of the
// performance peer), so that one Kyverno version serves both.
func KyvernoVersion(repoRoot string) (string, error) {
	f, err := os.Open(filepath.Join(repoRoot, "hack", "kyverno", "go.mod"))
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }() // opened for reading only
	s := bufio.NewScanner(f)
	for s.Scan() {
		if fields := strings.Fields(s.Text()); len(fields) >= 2 && fields[0] == KyvernoModule {
			return fields[1], nil
		}
	}
	return "", fmt.Errorf("%s not pinned in hack/kyverno/go.mod", KyvernoModule)
}

// PolicyReportCRDs returns PolicyReport and ClusterPolicyReport as Kyverno ships them, read from
// the Kyverno module at the version hack/kyverno pins (downloaded into the module cache, without
// its dependencies, when missing).
func PolicyReportCRDs(repoRoot string) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	v, err := KyvernoVersion(repoRoot)
	if err != nil {
		return nil, err
	}
	dir, err := downloadModule(KyvernoModule, v)
	if err != nil {
		return nil, err
	}
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, f := range []string{"wgpolicyk8s.io_policyreports.yaml", "wgpolicyk8s.io_clusterpolicyreports.yaml"} {
		path := filepath.Join(dir, filepath.FromSlash(KyvernoPolicyReportDir), f)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		c, err := parseCRDs(path, b)
		if err != nil {
			return nil, err
		}
		out = append(out, c...)
	}
	return out, nil
}
