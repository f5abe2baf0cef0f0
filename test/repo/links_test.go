package repo

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/meshguard/meshguard/test/testenv"
)

// mdLink matches inline Markdown links [text](target); images too. Targets with a scheme are not
// checked (no network here), only files of the repository and their headings.
var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// codeFence and inlineCode hide code, where brackets are not links.
var (
	codeFence  = regexp.MustCompile("(?s)```.*?```")
	inlineCode = regexp.MustCompile("`[^`\n]*`")
)

// anchor is the id GitHub gives a heading: lower case, punctuation other than '-' and '_' dropped,
// spaces turned into '-' (github.com/gjtorikian/html-pipeline's TableOfContentsFilter, which
// github.com uses for rendered Markdown).
func anchor(heading string) string {
	heading = strings.ToLower(strings.TrimSpace(heading))
	var b strings.Builder
	for _, r := range heading {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_':
			b.WriteRune(r)
		case unicode.IsLetter(r), unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// anchors lists the heading ids of a Markdown file (duplicates get -1, -2, … as on GitHub).
func anchors(text string) map[string]bool {
	text = codeFence.ReplaceAllString(text, "")
	out := map[string]bool{}
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.TrimLeft(line, "#")
		if !strings.HasPrefix(h, " ") {
			continue
		}
		id := anchor(strings.ReplaceAll(h, "`", ""))
		if !out[id] {
			out[id] = true
			continue
		}
		for i := 1; ; i++ {
			if alt := id + "-" + strconv.Itoa(i); !out[alt] {
				out[alt] = true
				break
			}
		}
	}
	return out
}

// Every relative link of every tracked Markdown file names a file that exists and, with #anchor, a
// heading of that file: the README and the docs link into each other, and moving a section must
// not leave a reader at a dead link.
func TestMarkdownLinksResolve(t *testing.T) {
	root := testenv.RepoRoot()
	out, err := exec.Command("git", "-C", root, "ls-files", "*.md").Output()
	if err != nil {
		t.Skipf("not a git checkout (%v): nothing to check", err)
	}
	files := strings.Fields(string(out))
	if len(files) < 5 {
		t.Fatalf("git ls-files listed %d Markdown files; expected README.md and docs/", len(files))
	}
	checked := 0
	for _, f := range files {
		if strings.HasPrefix(f, "charts/") || strings.HasPrefix(f, "bundle/") {
			continue // copies and generated text
		}
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		text := inlineCode.ReplaceAllString(codeFence.ReplaceAllString(string(data), ""), "")
		for _, m := range mdLink.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, frag, _ := strings.Cut(target, "#")
			dest := filepath.Join(root, f)
			if path != "" {
				dest = filepath.Join(filepath.Dir(filepath.Join(root, f)), path)
			}
			info, err := os.Stat(dest)
			if err != nil {
				t.Errorf("%s: link %q: %s does not exist", f, target, path)
				continue
			}
			checked++
			if frag == "" || info.IsDir() || !strings.HasSuffix(dest, ".md") {
				continue
			}
			body, err := os.ReadFile(dest)
			if err != nil {
				t.Fatal(err)
			}
			if !anchors(string(body))[frag] {
				t.Errorf("%s: link %q: %s has no heading with the id %q", f, target, filepath.Base(dest), frag)
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d relative links checked: the link pattern no longer matches the docs", checked)
	}
}

func TestAnchorIsGitHubs(t *testing.T) {
	for heading, want := range map[string]string{
		"Linkerd's CRDs for tests and run-local":           "linkerds-crds-for-tests-and-run-local",
		"GitOps previews and CI checks: manager render":    "gitops-previews-and-ci-checks-manager-render",
		"Fields, one example each":                         "fields-one-example-each",
		"What a met want: Denied guarantees":               "what-a-met-want-denied-guarantees",
		"A cluster-wide floor: ClusterMeshSecurityProfile": "a-cluster-wide-floor-clustermeshsecurityprofile",
	} {
		if got := anchor(heading); got != want {
			t.Errorf("anchor(%q) = %q, want %q", heading, got, want)
		}
	}
}
