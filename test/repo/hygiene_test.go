package repo

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshguard/meshguard/test/testenv"
)

// maxTrackedSize is the largest file git may track: sources, manifests and goldens are far
// smaller; anything bigger is build output or a binary that belongs under the ignored bin/.
const maxTrackedSize = 1 << 20

// executableMagic are the first bytes of the executable formats a Go toolchain or a download
// could leave behind (ELF, Mach-O 32/64 both endians, fat Mach-O, PE).
var executableMagic = [][]byte{
	[]byte("\x7fELF"),
	{0xfe, 0xed, 0xfa, 0xce}, {0xce, 0xfa, 0xed, 0xfe},
	{0xfe, 0xed, 0xfa, 0xcf}, {0xcf, 0xfa, 0xed, 0xfe},
	{0xca, 0xfe, 0xba, 0xbe},
	[]byte("MZ"),
}

func TestNoBinaryOrLargeFileIsTracked(t *testing.T) {
	root := testenv.RepoRoot()
	out, err := exec.Command("git", "-C", root, "ls-files", "-z").Output()
	if err != nil {
		t.Skipf("not a git checkout (%v): nothing to check", err)
	}
	files := strings.Split(strings.TrimRight(string(out), "\x00"), "\x00")
	if len(files) < 10 {
		t.Fatalf("git ls-files listed %d files; expected the whole tree", len(files))
	}
	for _, f := range files {
		path := filepath.Join(root, f)
		info, err := os.Lstat(path)
		if err != nil {
			continue // deleted in the work tree but not yet in the index
		}
		if !info.Mode().IsRegular() {
			continue
		}
		if info.Size() > maxTrackedSize {
			t.Errorf("%s is tracked and %d bytes (> %d): build output and binaries belong under the ignored bin/", f, info.Size(), maxTrackedSize)
		}
		head := make([]byte, 4)
		fh, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := fh.Read(head)
		_ = fh.Close() // opened for reading only
		for _, magic := range executableMagic {
			if n >= len(magic) && bytes.Equal(head[:len(magic)], magic) {
				t.Errorf("%s is tracked and is an executable binary: build it from source instead", f)
			}
		}
	}
}
