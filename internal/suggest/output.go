package suggest

import (
	"bytes"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// Marshal writes the proposals as YAML documents, each preceded by its notes as comments, ready
// for review and `kubectl apply` (or Git).
func Marshal(props []Proposal) ([]byte, error) {
	var buf bytes.Buffer
	for i, p := range props {
		if i > 0 {
			buf.WriteString("---\n")
		}
		fmt.Fprintf(&buf, "# Proposed by `manager suggest` for namespace %s from observed traffic: review before committing.\n", p.Profile.Namespace)
		for _, n := range p.Notes {
			fmt.Fprintf(&buf, "# note: %s\n", n)
		}
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(p.Profile)
		if err != nil {
			return nil, fmt.Errorf("encode profile %s/%s: %w", p.Profile.Namespace, p.Profile.Name, err)
		}
		unstructured.RemoveNestedField(m, "metadata", "creationTimestamp")
		unstructured.RemoveNestedField(m, "status")
		b, err := yaml.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("encode profile %s/%s: %w", p.Profile.Namespace, p.Profile.Name, err)
		}
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

// Comment prefixes every line of s with "# ", for notes printed next to YAML.
func Comment(s string) string {
	return "# " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n# ")
}
