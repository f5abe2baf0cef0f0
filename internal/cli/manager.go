package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/meshguard/meshguard/internal/buildinfo"
	"github.com/meshguard/meshguard/internal/validation"
)

// command is one of manager's subcommands.
type subcommand struct {
	name, summary string
	run           func(args []string, stdin io.Reader, stdout, stderr io.Writer) int
}

var subcommands = []subcommand{
	{"render", "print the objects profiles and cluster profiles generate (GitOps preview, CI checks)", Render},
	{"explain", "say whether a request gets through the policies, layer by layer, offline or live", Explain},
	{"suggest", "propose a profile per namespace from the mesh's observed traffic (metrics file or Prometheus)", Suggest},
	{"version", "print meshguard's version, commit and Go version", Version},
}

// Usage is the head of `manager --help`: the subcommands, then the controller's flags follow.
func Usage() string {
	var b strings.Builder
	b.WriteString("Usage:\n  manager [flags]            run the meshguard controller\n")
	for _, c := range subcommands {
		fmt.Fprintf(&b, "  manager %-18s %s\n", c.name+" ...", c.summary)
	}
	b.WriteString("\n`manager COMMAND --help` describes a command's flags.\n\nController flags:\n")
	return b.String()
}

// Main runs the subcommand args[0] names and returns its exit code with ran true. With no
// argument or a flag first, ran is false: the caller runs the controller. Any other first
// argument is refused (exit 2) with the nearest command named, rather than starting a controller
// that ignores it.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) (code int, ran bool) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return 0, false
	}
	names := make([]string, 0, len(subcommands))
	for _, c := range subcommands {
		if c.name == args[0] {
			return c.run(args[1:], stdin, stdout, stderr), true
		}
		names = append(names, c.name)
	}
	if args[0] == "help" {
		fmt.Fprint(stdout, Usage())
		fmt.Fprintln(stdout, "  (manager --help lists them)")
		return ExitOK, true
	}
	msg := fmt.Sprintf("manager: unknown command %q", args[0])
	if near := validation.Nearest(args[0], names); near != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", near)
	}
	fmt.Fprintf(stderr, "%s; commands: %s; the controller takes flags only (manager --help)\n", msg, strings.Join(names, ", "))
	return ExitUsage, true
}

// Version runs `manager version`.
func Version(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "version: unexpected argument %q\n", args[0])
		return ExitUsage
	}
	i := buildinfo.Get()
	fmt.Fprintf(stdout, "meshguard %s\ncommit: %s\ngo: %s\n", i.Version, i.Commit, i.GoVersion)
	return ExitOK
}
