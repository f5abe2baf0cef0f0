package crds

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"
)

// linkerdNamespace is what .Release.Namespace resolves to: the namespace `linkerd install` uses.
const linkerdNamespace = "linkerd"

// chart is what the templates of a chart may refer to.
type chart struct {
	name, version, appVersion string
	values                    map[string]any
}

// chartValues reads Chart.yaml and values.yaml of a chart directory.
func chartValues(dir string) (*chart, error) {
	var meta struct {
		Name       string `json:"name"`
		Version    string `json:"version"`
		AppVersion string `json:"appVersion"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		return nil, fmt.Errorf("read chart: %w", err)
	}
	if err := yaml.Unmarshal(b, &meta); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "Chart.yaml"), err)
	}
	c := &chart{name: meta.Name, version: meta.Version, appVersion: meta.AppVersion, values: map[string]any{}}
	if b, err := os.ReadFile(filepath.Join(dir, "values.yaml")); err == nil {
		if err := yaml.Unmarshal(b, &c.values); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "values.yaml"), err)
		}
	} else if !os.IsNotExist(err) {
		return nil, err
	}
	return c, nil
}

var actionRE = regexp.MustCompile(`\{\{-?(.*?)-?\}\}`)

// resolveTemplate resolves the Helm template forms that Linkerd's CRD templates use, and refuses
// every other form, so that a template Linkerd changes in a way this cannot follow fails loudly
// instead of yielding a different CRD:
//
//   - A line holding only {{ if ... }}, {{ end }}, {{ with ... }}, {{ range ... }} or a
//     {{/* comment */}} is dropped: every CRD of the chart is wanted, so conditions that switch
//     some off (such as installGatewayAPI) are taken as true. {{ else }} is refused, as both
//     branches would be kept.
//   - {{ include "partials.annotations.created-by" . }} becomes the annotation Linkerd's partial
//     writes: linkerd.io/created-by: linkerd/helm <chart version>.
//   - {{ .Chart.Name }}, {{ .Chart.Version }}, {{ .Chart.AppVersion }} come from Chart.yaml,
//     optionally piped through replace "+" "_"; {{ .Release.Namespace }} is "linkerd";
//     {{ .Values.a.b }} is a scalar of values.yaml.
func resolveTemplate(text string, c *chart) (string, error) {
	lines := strings.Split(text, "\n")
	out := make([]string, 0, len(lines))
	for i, line := range lines {
		trimmed := strings.TrimSpace(line)
		if loc := actionRE.FindStringIndex(trimmed); loc != nil && loc[0] == 0 && loc[1] == len(trimmed) {
			expr := actionExpr(trimmed)
			keyword, _, _ := strings.Cut(expr, " ")
			switch {
			case strings.HasPrefix(expr, "/*"):
				continue
			case keyword == "if" || keyword == "end" || keyword == "with" || keyword == "range":
				continue
			case keyword == "else":
				return "", fmt.Errorf("line %d: {{ else }} is not supported: both branches would be kept", i+1)
			}
		}
		var err error
		resolved := actionRE.ReplaceAllStringFunc(line, func(action string) string {
			v, e := evalAction(actionExpr(action), c)
			if e != nil && err == nil {
				err = fmt.Errorf("line %d: %s: %w", i+1, action, e)
			}
			return v
		})
		if err != nil {
			return "", err
		}
		out = append(out, resolved)
	}
	return strings.Join(out, "\n"), nil
}

// actionExpr is the expression of an action, without braces, trim markers and extra spaces.
func actionExpr(action string) string {
	s := strings.TrimPrefix(strings.TrimSuffix(action, "}}"), "{{")
	s = strings.TrimPrefix(strings.TrimSuffix(s, "-"), "-")
	return strings.Join(strings.Fields(s), " ")
}

func evalAction(expr string, c *chart) (string, error) {
	if expr == `include "partials.annotations.created-by" .` {
		return "linkerd.io/created-by: linkerd/helm " + c.version, nil
	}
	base, pipe, piped := strings.Cut(expr, " | ")
	var v string
	switch {
	case base == ".Chart.Name":
		v = c.name
	case base == ".Chart.Version":
		v = c.version
	case base == ".Chart.AppVersion":
		v = c.appVersion
	case base == ".Release.Namespace":
		v = linkerdNamespace
	case strings.HasPrefix(base, ".Values."):
		var cur any = c.values
		for _, k := range strings.Split(strings.TrimPrefix(base, ".Values."), ".") {
			m, ok := cur.(map[string]any)
			if !ok {
				return "", fmt.Errorf("%s is not in values.yaml", base)
			}
			if cur, ok = m[k]; !ok {
				return "", fmt.Errorf("%s is not in values.yaml", base)
			}
		}
		switch cur.(type) {
		case map[string]any, []any, nil:
			return "", fmt.Errorf("%s is not a scalar", base)
		}
		v = fmt.Sprint(cur)
	default:
		return "", fmt.Errorf("unsupported template expression %q", expr)
	}
	if piped {
		if pipe != `replace "+" "_"` {
			return "", fmt.Errorf("unsupported template function %q", pipe)
		}
		v = strings.ReplaceAll(v, "+", "_")
	}
	return v, nil
}
