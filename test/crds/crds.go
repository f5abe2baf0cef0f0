package crds

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	apiextensions "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

const (
	// IstioModule is the module whose CRD file IstioCRDs reads, at the version go.mod requires.
	IstioModule = "istio.io/api"
	// IstioCRDFile is the file of IstioModule that holds every Istio CRD.
	IstioCRDFile = "kubernetes/customresourcedefinitions.gen.yaml"

	// LinkerdModule is the module whose Helm chart LinkerdCRDs resolves.
	LinkerdModule = "github.com/linkerd/linkerd2"
	// LinkerdVersion pins LinkerdModule: the pseudo-version of the linkerd2 main-branch commit
	// eadc1acf79ad of 2026-06-22 (Linkerd edge releases are cut from main). Its Server CRD stores
	// policy.linkerd.io/v1beta3, with accessPolicy. To move it, pick a commit of a release, take
	// its pseudo-version (v0.5.1-0.<UTC commit time>-<12 hex digits>), and run this package's
	// tests.
	LinkerdVersion = "v0.5.1-0.20260622225159-eadc1acf79ad"
	// LinkerdChartDir is the chart of Linkerd's CRDs inside LinkerdModule.
	LinkerdChartDir = "charts/linkerd-crds"

	// LinkerdChartEnv names the environment variable that, when set, points at a
	// charts/linkerd-crds directory LinkerdCRDs reads instead of the pinned module (a linkerd2
	// checkout, for trying another Linkerd version). The Makefile sets it to
	// ../shared/linkerd-crds when that directory exists.
	LinkerdChartEnv = "MESHGUARD_LINKERD_CRDS_CHART"

	// SkipLinkerdEnv names the variable that, set to 1, is the only way to run the tests (and make
	// run-local) without Linkerd's CRDs: without it, a missing chart fails them instead of
	// skipping Linkerd quietly.
	SkipLinkerdEnv = "MESHGUARD_SKIP_LINKERD"

	// LinkerdHint says how to provide Linkerd's CRDs; it ends every "unavailable" error.
	LinkerdHint = "set " + LinkerdChartEnv + " to the charts/linkerd-crds directory of linkerd2 " +
		LinkerdVersion + " (make uses ../shared/linkerd-crds when it exists), or " + SkipLinkerdEnv +
		"=1 to run without Linkerd on purpose"
)

// The Gateway API CRDs (Gateway, GatewayClass, HTTPRoute, ...), which Istio's waypoints are made
// of: the standard channel of the sigs.k8s.io/gateway-api module, downloaded without touching
// meshguard's go.mod (v1.7.0 needs a newer Go than the one this project builds with).
const (
	GatewayAPIModule  = "sigs.k8s.io/gateway-api"
	GatewayAPIVersion = "v1.6.3"
	GatewayAPICRDDir  = "config/crd/standard"
)

// GatewayAPICRDs returns the standard-channel Gateway API CRDs of GatewayAPIModule at
// GatewayAPIVersion, sorted by file name. The directory's ValidatingAdmissionPolicy
// (…_vap_safeupgrades.yaml) is not a CRD and is left out.
func GatewayAPICRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	dir, err := downloadModule(GatewayAPIModule, GatewayAPIVersion)
	if err != nil {
		return nil, err
	}
	files, err := filepath.Glob(filepath.Join(dir, filepath.FromSlash(GatewayAPICRDDir), "gateway.networking.k8s.io_*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, f := range files {
		if strings.Contains(filepath.Base(f), "_vap_") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		c, err := parseCRDs(f, b)
		if err != nil {
			return nil, err
		}
		out = append(out, c...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no Gateway API CRDs in %s", dir)
	}
	return out, nil
}

// ErrLinkerdUnavailable is returned (wrapped, with the go command's message and LinkerdHint) when
// the pinned linkerd2 module cannot be downloaded, for example because the module proxy does not
// serve it, and no chart directory is named.
var ErrLinkerdUnavailable = errors.New("linkerd2 module not available")

// SkipLinkerd reports whether MESHGUARD_SKIP_LINKERD=1 asks to go on without Linkerd's CRDs.
func SkipLinkerd() bool { return os.Getenv(SkipLinkerdEnv) == "1" }

// IstioCRDs returns Istio's CRDs from the istio.io/api module that meshguard's go.mod requires.
// It must run inside meshguard's module (any package directory, as `go test` does); the module
// is downloaded when it is not in the module cache yet.
func IstioCRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	dir, err := mainModuleDependencyDir(IstioModule)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, filepath.FromSlash(IstioCRDFile))
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseCRDs(path, b)
}

// LinkerdCRDs returns the CRDs of Linkerd's linkerd-crds chart at LinkerdVersion (or in the
// directory named by MESHGUARD_LINKERD_CRDS_CHART): the policy.linkerd.io policy CRDs (Server,
// ServerAuthorization, AuthorizationPolicy, MeshTLSAuthentication, NetworkAuthentication,
// HTTPRoute, ...) and whatever else the chart installs (ServiceProfile, ExternalWorkload, the
// Gateway API CRDs Linkerd bundles), sorted by name.
func LinkerdCRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	chart := os.Getenv(LinkerdChartEnv)
	if chart == "" {
		dir, err := downloadModule(LinkerdModule, LinkerdVersion)
		if err != nil {
			return nil, err
		}
		chart = filepath.Join(dir, filepath.FromSlash(LinkerdChartDir))
	} else if err := checkChartSource(chart); err != nil {
		return nil, err
	}
	return LinkerdCRDsFromChart(chart)
}

// commitRE finds a full git commit hash in a chart's SOURCE.md.
var commitRE = regexp.MustCompile(`\b[0-9a-f]{40}\b`)

// checkChartSource refuses a chart copy whose SOURCE.md (written beside a copied chart, as in
// ../shared/linkerd-crds) names another linkerd2 commit than LinkerdVersion, so that the copy the
// Makefile picks up can never silently test other CRDs than the pinned ones. A chart without
// SOURCE.md (a linkerd2 checkout, to try another version) is taken as it is.
func checkChartSource(chart string) error {
	b, err := os.ReadFile(filepath.Join(chart, "SOURCE.md"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	pin := LinkerdVersion[strings.LastIndex(LinkerdVersion, "-")+1:]
	commit := commitRE.FindString(string(b))
	if commit != "" && !strings.HasPrefix(commit, pin) {
		return fmt.Errorf("%s=%s holds linkerd2 commit %s (its SOURCE.md), but test/crds pins %s (%s): update the copy or the pin",
			LinkerdChartEnv, chart, commit, LinkerdVersion, pin)
	}
	return nil
}

// LinkerdCRDsFromChart resolves the templates of a linkerd-crds chart directory (with Chart.yaml,
// values.yaml and templates/) and returns its CRDs sorted by name.
func LinkerdCRDsFromChart(chartDir string) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	vals, err := chartValues(chartDir)
	if err != nil {
		return nil, err
	}
	var files []string
	err = filepath.WalkDir(filepath.Join(chartDir, "templates"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".yaml") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read chart %s: %w", chartDir, err)
	}
	sort.Strings(files)
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		resolved, err := resolveTemplate(string(b), vals)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		crds, err := parseCRDs(f, []byte(resolved))
		if err != nil {
			return nil, err
		}
		out = append(out, crds...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no CRDs in chart %s", chartDir)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	for i := 1; i < len(out); i++ {
		if out[i].Name == out[i-1].Name {
			return nil, fmt.Errorf("chart %s defines CRD %s twice", chartDir, out[i].Name)
		}
	}
	return out, nil
}

// WriteAll writes every Istio, Gateway API and Linkerd CRD to dir as <crd name>.yaml, for envtest's
// CRDInstallOptions.Paths or kubectl apply. The Istio CRDs are written even when the Linkerd ones
// cannot be had; the error then wraps ErrLinkerdUnavailable.
func WriteAll(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	istio, err := IstioCRDs()
	if err != nil {
		return fmt.Errorf("istio CRDs: %w", err)
	}
	if err := writeCRDs(dir, istio); err != nil {
		return err
	}
	// Istio's waypoints are Gateway API Gateways. Written before Linkerd's, whose chart bundles
	// its own copies of some Gateway API route CRDs: those are installed as Linkerd ships them.
	gateway, err := GatewayAPICRDs()
	if err != nil {
		return fmt.Errorf("gateway API CRDs: %w", err)
	}
	if err := writeCRDs(dir, gateway); err != nil {
		return err
	}
	linkerd, err := LinkerdCRDs()
	if err != nil {
		return fmt.Errorf("linkerd CRDs: %w", err)
	}
	return writeCRDs(dir, linkerd)
}

func writeCRDs(dir string, crds []*apiextensionsv1.CustomResourceDefinition) error {
	for _, c := range crds {
		b, err := yaml.Marshal(c)
		if err != nil {
			return fmt.Errorf("encode CRD %s: %w", c.Name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, c.Name+".yaml"), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// parseCRDs decodes a multi-document YAML stream of CRDs, refusing any other kind and any CRD
// the API server would refuse.
func parseCRDs(source string, b []byte) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	var out []*apiextensionsv1.CustomResourceDefinition
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", source, i, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.UnmarshalStrict(doc, crd); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", source, i, err)
		}
		if crd.APIVersion != apiextensionsv1.SchemeGroupVersion.String() || crd.Kind != "CustomResourceDefinition" {
			return nil, fmt.Errorf("%s: document %d is a %s %s, not a CustomResourceDefinition", source, i, crd.APIVersion, crd.Kind)
		}
		if err := validateCRD(crd); err != nil {
			return nil, fmt.Errorf("%s: CRD %s: %w", source, crd.Name, err)
		}
		out = append(out, crd)
	}
	return out, nil
}

// stripComments drops YAML comment lines, so that a document of only comments counts as empty.
func stripComments(doc []byte) []byte {
	var buf bytes.Buffer
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			buf.Write(line)
			buf.WriteByte('\n')
		}
	}
	return buf.Bytes()
}

// validateCRD runs the API server's create validation on a CRD: names, versions (at least one
// served, exactly one stored), structural schemas and CEL rules.
func validateCRD(crd *apiextensionsv1.CustomResourceDefinition) error {
	c := crd.DeepCopy()
	apiextensionsv1.SetObjectDefaults_CustomResourceDefinition(c)
	internal := &apiextensions.CustomResourceDefinition{}
	if err := apiextensionsv1.Convert_v1_CustomResourceDefinition_To_apiextensions_CustomResourceDefinition(c, internal, nil); err != nil {
		return err
	}
	if errs := validation.ValidateCustomResourceDefinition(context.Background(), internal); len(errs) > 0 {
		return errs.ToAggregate()
	}
	served := false
	for _, v := range crd.Spec.Versions {
		served = served || v.Served
	}
	if !served {
		return fmt.Errorf("no served version")
	}
	return nil
}

// mainModuleDependencyDir is the module cache directory of a dependency of the main module,
// downloading it when needed.
func mainModuleDependencyDir(module string) (string, error) {
	var m struct{ Dir, Version string }
	out, err := goCommand("", "list", "-m", "-json", module)
	if err != nil {
		return "", fmt.Errorf("find %s (run inside meshguard's module): %w", module, err)
	}
	if err := json.Unmarshal(out, &m); err != nil {
		return "", fmt.Errorf("go list -m %s: %w", module, err)
	}
	if m.Dir != "" {
		return m.Dir, nil
	}
	return downloadModule(module, m.Version)
}

// downloadModule downloads module@version (a no-op when it is in the module cache) and returns
// its directory. It runs outside any module, so that no go.mod or go.sum is touched.
func downloadModule(module, version string) (string, error) {
	tmp, err := os.MkdirTemp("", "meshguard-crds-")
	if err != nil {
		return "", err
	}
	defer func() { _ = os.RemoveAll(tmp) }() // a temporary directory: nothing to do if it stays
	out, err := goCommand(tmp, "mod", "download", "-json", module+"@"+version)
	var m struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &m); jerr != nil && err == nil {
		err = jerr
	}
	if m.Error != "" || err != nil || m.Dir == "" {
		msg := m.Error
		if msg == "" && err != nil {
			msg = err.Error()
		}
		if module == LinkerdModule {
			return "", fmt.Errorf("%w: go mod download %s@%s: %s; %s", ErrLinkerdUnavailable, module, version, strings.TrimSpace(msg), LinkerdHint)
		}
		return "", fmt.Errorf("go mod download %s@%s: %s", module, version, msg)
	}
	return m.Dir, nil
}

// goCommand runs the go command in dir ("" for the current directory) and returns its stdout.
// In a directory outside any module it runs with GOFLAGS cleared (flags such as -mod apply to a
// main module only) and GOWORK off.
func goCommand(dir string, args ...string) ([]byte, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	if dir != "" {
		cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off", "GO111MODULE=on")
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
