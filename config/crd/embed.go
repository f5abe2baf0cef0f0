// Package crd embeds the CustomResourceDefinitions that controller-gen generates into bases/, so
// that the manager, `manager render` and the tests use the very schema the API server is given.
//
// Regenerate the manifests with `make manifests`; this package picks them up at the next build.
package crd

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"sync"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// MeshSecurityProfileName is the name of the MeshSecurityProfile CRD: <plural>.<group>.
const MeshSecurityProfileName = "meshsecurityprofiles.security.meshguard.dev"

// MeshSecurityProfileFile is the path of the MeshSecurityProfile CRD manifest among the embedded files.
const MeshSecurityProfileFile = "bases/security.meshguard.dev_meshsecurityprofiles.yaml"

// ClusterMeshSecurityProfileName is the name of the ClusterMeshSecurityProfile CRD.
const ClusterMeshSecurityProfileName = "clustermeshsecurityprofiles.security.meshguard.dev"

//go:embed bases/*.yaml
var files embed.FS

// MeshSecurityProfileYAML returns the MeshSecurityProfile CRD manifest exactly as controller-gen
// wrote it. The slice is a copy the caller may modify.
func MeshSecurityProfileYAML() []byte {
	b, err := files.ReadFile(MeshSecurityProfileFile)
	if err != nil {
		// The go:embed pattern guarantees the file is there: a build without it fails.
		return nil
	}
	return b
}

// parsed holds every embedded CRD, parsed once. The CRDs are never handed out: callers get deep
// copies, so this cache is never modified after it is built.
var parsed = sync.OnceValues(parseAll)

// MeshSecurityProfile returns the parsed MeshSecurityProfile CRD. Each call returns a new copy the
// caller may modify.
func MeshSecurityProfile() (*apiextensionsv1.CustomResourceDefinition, error) {
	all, err := parsed()
	if err != nil {
		return nil, err
	}
	for _, c := range all {
		if c.Name == MeshSecurityProfileName {
			return c.DeepCopy(), nil
		}
	}
	return nil, fmt.Errorf("crd %s not found in embedded bases/", MeshSecurityProfileName)
}

// ClusterMeshSecurityProfile returns the parsed ClusterMeshSecurityProfile CRD. Each call returns
// a new copy the caller may modify.
func ClusterMeshSecurityProfile() (*apiextensionsv1.CustomResourceDefinition, error) {
	return byName(ClusterMeshSecurityProfileName)
}

func byName(name string) (*apiextensionsv1.CustomResourceDefinition, error) {
	all, err := parsed()
	if err != nil {
		return nil, err
	}
	for _, c := range all {
		if c.Name == name {
			return c.DeepCopy(), nil
		}
	}
	return nil, fmt.Errorf("crd %s not found in embedded bases/", name)
}

// All returns every embedded CRD sorted by name, for installing them (for example into envtest's
// CRDInstallOptions.CRDs). Each call returns new copies the caller may modify.
func All() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	all, err := parsed()
	if err != nil {
		return nil, err
	}
	out := make([]*apiextensionsv1.CustomResourceDefinition, 0, len(all))
	for _, c := range all {
		out = append(out, c.DeepCopy())
	}
	return out, nil
}

func parseAll() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	names, err := fs.Glob(files, "bases/*.yaml")
	if err != nil {
		return nil, err
	}
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, name := range names {
		b, err := files.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		c := &apiextensionsv1.CustomResourceDefinition{}
		// Strict: a field this apiextensions version does not know would be dropped silently.
		if err := yaml.UnmarshalStrict(b, c); err != nil {
			return nil, fmt.Errorf("parse %s: %w", name, err)
		}
		if c.Kind != "CustomResourceDefinition" || c.Name == "" {
			return nil, fmt.Errorf("parse %s: not a CustomResourceDefinition", name)
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
