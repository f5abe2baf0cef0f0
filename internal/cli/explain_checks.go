package cli

import (
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshguard/meshguard/internal/explain"
)

// checkMesh refuses a --mesh that contradicts the mesh of the profiles among the inputs: the
// answer would be for policies the profile does not render. --mesh None stays allowed: it asks
// for the NetworkPolicy layers alone.
func checkMesh(flagMesh, profileMesh explain.Mesh) error {
	if flagMesh == explain.MeshAuto || flagMesh == explain.MeshNone || profileMesh == explain.MeshAuto || flagMesh == profileMesh {
		return nil
	}
	return fmt.Errorf("--mesh %s contradicts the profile among the inputs, whose spec.mesh is %s; leave --mesh out or give a profile of that mesh", flagMesh, profileMesh)
}

// warnEmptyNamespaces says on stderr when no input object lives in the destination namespace: a
// misspelled --to-namespace would otherwise answer for a namespace without any policy, which
// reads like a real answer. (A source namespace without objects is common: no egress policy.)
func warnEmptyNamespaces(stderr io.Writer, objs []*unstructured.Unstructured, req explain.Request) {
	ns := req.To.Namespace
	if ns == "" {
		return
	}
	for _, u := range objs {
		if u.GetNamespace() == ns || (u.GetKind() == "Namespace" && u.GetAPIVersion() == "v1" && u.GetName() == ns) {
			return
		}
	}
	fmt.Fprintf(stderr, "explain: warning: no input object lives in namespace %s (--to-namespace): the answer assumes it has no policies\n", ns)
}
