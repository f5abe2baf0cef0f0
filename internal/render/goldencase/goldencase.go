// Package goldencase reads internal/render's golden test cases — a profile, and for the ambient
// cases the data plane facts of its namespace (<case>.facts.yaml) — for the tests outside render
// that check what render produces for them (explain, the mesh CRDs, the API server's stored form).
package goldencase

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/dataplane"
	"github.com/meshguard/meshguard/internal/render"
)

// UID is the profile UID every golden file was rendered with.
const UID = types.UID("00000000-0000-0000-0000-000000000001")

// Facts is the file <case>.facts.yaml: what the controller would have observed in the profile's
// namespace.
type Facts struct {
	SourceServiceAccounts bool                `json:"sourceServiceAccounts"`
	NamespaceLabels       map[string]string   `json:"namespaceLabels"`
	Pods                  []dataplane.Pod     `json:"pods"`
	Services              []dataplane.Service `json:"services"`
	Gateways              []dataplane.Gateway `json:"gateways"`
}

// Paths lists the profiles of the cases in dir (not the .golden.yaml and .facts.yaml files).
func Paths(dir string) ([]string, error) {
	all, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range all {
		if !strings.HasSuffix(p, ".golden.yaml") && !strings.HasSuffix(p, ".facts.yaml") {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no golden cases in %s", dir)
	}
	return out, nil
}

// Load reads the profile at path (namespace "default" when it names none, UID set) and the render
// options of its case: the defaults, with the data plane facts of <case>.facts.yaml when the case
// has them (opts.DataPlane is nil otherwise).
func Load(path string) (*v1alpha1.MeshSecurityProfile, render.Options, error) {
	opts := render.DefaultOptions()
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, opts, err
	}
	p := &v1alpha1.MeshSecurityProfile{}
	if err := yaml.UnmarshalStrict(b, p); err != nil {
		return nil, opts, fmt.Errorf("%s: %w", path, err)
	}
	if p.Namespace == "" {
		p.Namespace = "default"
	}
	p.UID = UID
	factsPath := strings.TrimSuffix(path, ".yaml") + ".facts.yaml"
	b, err = os.ReadFile(factsPath)
	if errors.Is(err, fs.ErrNotExist) {
		return p, opts, nil
	}
	if err != nil {
		return nil, opts, err
	}
	var f Facts
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		return nil, opts, fmt.Errorf("%s: %w", factsPath, err)
	}
	opts.IstioSourceServiceAccounts = f.SourceServiceAccounts
	opts.DataPlane = &dataplane.Facts{Namespace: p.Namespace, NamespaceLabels: f.NamespaceLabels,
		Pods: f.Pods, Services: f.Services, Gateways: f.Gateways}
	return p, opts, nil
}
