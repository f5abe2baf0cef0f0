package pipeline

import (
	"reflect"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// SameReport compares what meshguard sets in a report: labels, owner, results and summary.
func SameReport(live, want map[string]any) bool {
	for _, path := range [][]string{{"metadata", "labels"}, {"metadata", "ownerReferences"}, {"results"}, {"summary"}} {
		l, _, _ := unstructured.NestedFieldNoCopy(live, path...)
		w, _, _ := unstructured.NestedFieldNoCopy(want, path...)
		if !reflect.DeepEqual(l, w) {
			return false
		}
	}
	return true
}
