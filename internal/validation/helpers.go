package validation

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"

	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// objectMeta reads metadata the way the API server's custom resource validator does.
func objectMeta(obj *unstructured.Unstructured) (*metav1.ObjectMeta, field.ErrorList) {
	raw := obj.Object["metadata"]
	if raw == nil {
		return &metav1.ObjectMeta{}, nil
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, field.ErrorList{field.Invalid(field.NewPath("metadata"), raw, fmt.Sprintf("expected map[string]interface{}, got %T", raw))}
	}
	meta := &metav1.ObjectMeta{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, meta); err != nil {
		return nil, field.ErrorList{field.Invalid(field.NewPath("metadata"), raw, err.Error())}
	}
	return meta, nil
}

// metaFields are the fields of an object's root that the schema does not describe.
var metaFields = map[string]bool{"apiVersion": true, "kind": true, "metadata": true}

// suggestions walks obj along the schema as the API server's pruning does and, for each unknown
// field, the known field of the same object whose name is closest to it (a typo such as mtsl
// for mtls, or jwksURI for jwksUri). Keys are the unknown fields' paths in pruning's notation.
func suggestions(obj any, s *structuralschema.Structural) map[string]string {
	out := map[string]string{}
	suggest(obj, s, "", true, out)
	return out
}

func suggest(x any, s *structuralschema.Structural, path string, root bool, out map[string]string) {
	if s == nil {
		return
	}
	switch x := x.(type) {
	case map[string]any:
		for k, v := range x {
			if (root || s.XEmbeddedResource) && metaFields[k] {
				continue
			}
			if prop, ok := s.Properties[k]; ok {
				suggest(v, &prop, join(path, k), false, out)
			} else if s.AdditionalProperties != nil {
				suggest(v, s.AdditionalProperties.Structural, join(path, k), false, out)
			} else if !s.XPreserveUnknownFields {
				if alt := closest(k, s.Properties); alt != "" {
					out[join(path, k)] = alt
				}
			}
		}
	case []any:
		for i, v := range x {
			suggest(v, s.Items, path+"["+strconv.Itoa(i)+"]", false, out)
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// closest returns the property nearest to name (Nearest).
func closest(name string, props map[string]structuralschema.Structural) string {
	names := make([]string, 0, len(props))
	for p := range props {
		names = append(names, p)
	}
	return Nearest(name, names)
}

// Nearest returns the candidate nearest to name: equal but for case, or at most two edits away
// (a transposition counts as one edit); "" when none is near. Used for "did you mean" in field
// errors and in the manager's command line.
func Nearest(name string, candidates []string) string {
	best, bestDist := "", 3
	for _, p := range candidates {
		d := distance(strings.ToLower(name), strings.ToLower(p))
		if d < bestDist || (d == bestDist && p < best) {
			best, bestDist = p, d
		}
	}
	if best != "" && bestDist > len(name)/2 {
		// Too far for a short name: "to" is not a typo of "mode".
		return ""
	}
	return best
}

// distance is the optimal string alignment distance: insertions, deletions, substitutions and
// transpositions of adjacent characters each cost one.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

// isEmptyDocument reports whether a YAML document holds nothing but comments and whitespace.
func isEmptyDocument(doc []byte) bool {
	for _, line := range bytes.Split(doc, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' || bytes.Equal(line, []byte("---")) {
			continue
		}
		return false
	}
	return true
}
