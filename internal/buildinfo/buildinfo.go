// Package buildinfo says which build of meshguard is running: `manager version` prints it and
// the meshguard_build_info metric carries it, so an alert or a support question can name the
// release.
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// version and commit are set at link time:
//
//	go build -ldflags "-X github.com/meshguard/meshguard/internal/buildinfo.version=v0.2.0 -X github.com/meshguard/meshguard/internal/buildinfo.commit=$(git rev-parse HEAD)"
//
// Unset, they come from the module and VCS information the Go toolchain records in the binary.
var version, commit string

// Info is one build's identity.
type Info struct {
	Version   string
	Commit    string
	GoVersion string
}

// Get returns the running binary's identity; "unknown" for what neither the linker flags nor
// the Go build information say.
func Get() Info {
	i := Info{Version: version, Commit: commit, GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if i.Version == "" && bi.Main.Version != "" {
			// "(devel)" for a build from a work tree, v1.2.3 for `go install ...@v1.2.3`.
			i.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && i.Commit == "" {
				i.Commit = s.Value
			}
			if s.Key == "vcs.modified" && s.Value == "true" && commit == "" && i.Commit != "" {
				i.Commit += "-dirty"
			}
		}
	}
	if i.Version == "" {
		i.Version = "unknown"
	}
	if i.Commit == "" {
		i.Commit = "unknown"
	}
	return i
}
