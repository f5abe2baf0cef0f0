package cli

import (
	"bytes"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

func managerRun(args ...string) (int, bool, string, string) {
	var out, errOut bytes.Buffer
	code, ran := Main(args, strings.NewReader(""), &out, &errOut)
	return code, ran, out.String(), errOut.String()
}

func TestAMisspelledCommandIsRefusedWithTheNearestCommandInsteadOfStartingTheController(t *testing.T) {
	for _, tc := range []struct{ arg, want string }{
		{"rendr", `unknown command "rendr" (did you mean "render"?)`},
		{"explian", `(did you mean "explain"?)`},
		{"Version", `(did you mean "version"?)`},
		{"sugest", `(did you mean "suggest"?)`},
		{"deploy", `unknown command "deploy"; commands: render, explain, suggest, version`},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			g := NewWithT(t)
			code, ran, _, stderr := managerRun(tc.arg, "-f", "x.yaml")
			g.Expect(ran).To(BeTrue(), "the controller must not start")
			g.Expect(code).To(Equal(ExitUsage))
			g.Expect(stderr).To(ContainSubstring(tc.want))
		})
	}
}

func TestFlagsOrNothingRunTheController(t *testing.T) {
	g := NewWithT(t)
	_, ran, _, _ := managerRun()
	g.Expect(ran).To(BeFalse())
	_, ran, _, _ = managerRun("--leader-elect", "--metrics-bind-address=:8080")
	g.Expect(ran).To(BeFalse())
}

func TestVersionPrintsTheBuild(t *testing.T) {
	g := NewWithT(t)
	code, ran, stdout, _ := managerRun("version")
	g.Expect(ran).To(BeTrue())
	g.Expect(code).To(Equal(ExitOK))
	g.Expect(stdout).To(MatchRegexp(`(?m)^meshguard \S+\ncommit: \S+\ngo: go`))
}

func TestTheUsageListsEveryCommand(t *testing.T) {
	g := NewWithT(t)
	for _, c := range []string{"manager render", "manager explain", "manager version"} {
		g.Expect(Usage()).To(ContainSubstring(c))
	}
}
