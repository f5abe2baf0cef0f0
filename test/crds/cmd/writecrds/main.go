// Command writecrds writes the real Istio, Gateway API and Linkerd CRDs (see package crds) to a directory, one
// file per CRD, for `make run-local`, kubectl apply or envtest's CRDInstallOptions.Paths.
//
//	go run ./test/crds/cmd/writecrds -dir bin/crds
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/meshguard/meshguard/test/crds"
)

func main() {
	dir := flag.String("dir", "bin/crds", "directory to write the CRDs to")
	requireLinkerd := flag.Bool("require-linkerd", true, "fail when the pinned Linkerd CRDs cannot be had; when false, write the Istio CRDs and warn")
	flag.Parse()
	err := crds.WriteAll(*dir)
	if errors.Is(err, crds.ErrLinkerdUnavailable) && !*requireLinkerd {
		fmt.Fprintf(os.Stderr, "warning: Linkerd CRDs not written: %v\n", err)
		err = nil
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "writecrds: %v\n", err)
		os.Exit(1)
	}
}
