// Package fleet holds the tested fleet samples (Argo CD ApplicationSet, Open Cluster Management
// ManifestWorkReplicaSet, Karmada ResourceInterpreterCustomization) and reads profiles the way
// those tools do: Open Cluster Management's work agent (Feedback) and Karmada's Lua interpreter
// (karmada.go), for the tests here and the end-to-end test with two control planes. Nothing in
// meshguard's manager imports it.
package fleet

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"

	"k8s.io/client-go/util/jsonpath"
	"sigs.k8s.io/yaml"
)

// Dir is this directory.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// JSONPath is one entry of a feedbackRules JSONPaths rule.
type JSONPath struct {
	Name string `json:"name"`
	Path string `json:"path"`
}

// ManifestWorkReplicaSet is the part of work.open-cluster-management.io/v1alpha1
// ManifestWorkReplicaSet the samples use.
type ManifestWorkReplicaSet struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Spec struct {
		PlacementRefs []struct {
			Name string `json:"name"`
		} `json:"placementRefs"`
		ManifestWorkTemplate struct {
			Workload struct {
				Manifests []map[string]any `json:"manifests"`
			} `json:"workload"`
			ManifestConfigs []struct {
				ResourceIdentifier struct {
					Group     string `json:"group"`
					Resource  string `json:"resource"`
					Namespace string `json:"namespace"`
					Name      string `json:"name"`
				} `json:"resourceIdentifier"`
				FeedbackRules []struct {
					Type      string     `json:"type"`
					JSONPaths []JSONPath `json:"jsonPaths"`
				} `json:"feedbackRules"`
			} `json:"manifestConfigs"`
		} `json:"manifestWorkTemplate"`
	} `json:"spec"`
}

// LoadManifestWorkReplicaSet reads manifestworkreplicaset.yaml, refusing unknown fields.
func LoadManifestWorkReplicaSet() (*ManifestWorkReplicaSet, error) {
	b, err := os.ReadFile(filepath.Join(Dir(), "manifestworkreplicaset.yaml"))
	if err != nil {
		return nil, err
	}
	m := &ManifestWorkReplicaSet{}
	if err := yaml.UnmarshalStrict(b, m); err != nil {
		return nil, fmt.Errorf("manifestworkreplicaset.yaml: %w", err)
	}
	return m, nil
}

// ProfileFeedbackPaths returns the JSONPaths the sample feeds back for MeshSecurityProfiles.
func ProfileFeedbackPaths() ([]JSONPath, error) {
	m, err := LoadManifestWorkReplicaSet()
	if err != nil {
		return nil, err
	}
	var out []JSONPath
	for _, c := range m.Spec.ManifestWorkTemplate.ManifestConfigs {
		if c.ResourceIdentifier.Group != "security.meshguard.dev" || c.ResourceIdentifier.Resource != "meshsecurityprofiles" {
			continue
		}
		for _, r := range c.FeedbackRules {
			if r.Type == "JSONPaths" {
				out = append(out, r.JSONPaths...)
			}
		}
	}
	return out, nil
}

// Feedback evaluates each path against an object (as unstructured content: integers int64) as
// Open Cluster Management's work agent does (open-cluster-management-io/ocm
// pkg/work/spoke/statusfeedback/reader.go getValueByJsonPath): jsonpath with missing keys allowed,
// the path wrapped in braces, the first result kept; a path that finds nothing gives no value;
// only string, int64 and bool values are fed back (anything else is an error there unless the
// RawFeedbackJsonString feature is on).
func Feedback(obj map[string]any, paths []JSONPath) (map[string]any, error) {
	out := map[string]any{}
	for _, p := range paths {
		j := jsonpath.New(p.Name).AllowMissingKeys(true)
		if err := j.Parse(fmt.Sprintf("{%s}", p.Path)); err != nil {
			return nil, fmt.Errorf("parse %s (%s): %w", p.Name, p.Path, err)
		}
		results, err := j.FindResults(obj)
		if err != nil {
			return nil, fmt.Errorf("find %s: %w", p.Name, err)
		}
		if len(results) == 0 || len(results[0]) == 0 {
			continue
		}
		if len(results) > 1 || len(results[0]) > 1 {
			return nil, fmt.Errorf("%s (%s) finds %d values, not one scalar", p.Name, p.Path, len(results[0]))
		}
		v := results[0][0].Interface()
		switch v.(type) {
		case nil:
			continue
		case string, int64, bool:
			out[p.Name] = v
		default:
			return nil, fmt.Errorf("%s (%s) is a %v, not a string, integer or boolean", p.Name, p.Path, reflect.TypeOf(v))
		}
	}
	return out, nil
}
