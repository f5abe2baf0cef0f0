package repo

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshguard/meshguard/test/testenv"
)

// TestEveryGoModNamesTheSameGoVersion: the root module and the nested ones (tools under hack/,
// test/packaging, test/crosscheck) build with one Go; a module asking for a newer patch release
// than the others would make `go` download a toolchain (or refuse) in that module only.
func TestEveryGoModNamesTheSameGoVersion(t *testing.T) {
	root := testenv.RepoRoot()
	out, err := exec.Command("git", "-C", root, "ls-files", "go.mod", "*/go.mod").Output()
	if err != nil {
		t.Skipf("not a git checkout (%v): nothing to check", err)
	}
	versions := map[string][]string{}
	files := strings.Fields(string(out))
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		version := ""
		for _, line := range strings.Split(string(b), "\n") {
			if fields := strings.Fields(line); len(fields) == 2 && fields[0] == "go" {
				version = fields[1]
			}
		}
		if version == "" {
			t.Errorf("%s has no go directive", f)
			continue
		}
		versions[version] = append(versions[version], f)
	}
	if len(files) < 2 {
		t.Fatalf("found %d go.mod files, want the root module's and the nested ones", len(files))
	}
	if len(versions) != 1 {
		t.Errorf("go directives differ: %v", versions)
	}
}
