// Command bundle writes meshguard's OLM bundle (bundle/ and bundle.Dockerfile) from config/;
// `make bundle` runs it from the repository root.
package main

import (
	"fmt"
	"os"

	bundle "github.com/meshguard/meshguard/hack/bundle/olmbundle"
)

func main() {
	root := "."
	if len(os.Args) > 1 {
		root = os.Args[1]
	}
	files, err := bundle.Generate(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bundle:", err)
		os.Exit(1)
	}
	if err := bundle.Write(root, files); err != nil {
		fmt.Fprintln(os.Stderr, "bundle:", err)
		os.Exit(1)
	}
	fmt.Printf("bundle: wrote %d files\n", len(files))
}
