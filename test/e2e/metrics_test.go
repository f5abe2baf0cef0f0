package e2e

import (
	"bufio"
	"regexp"
	"strconv"
	"strings"
)

// sample is one series of a Prometheus text exposition.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

var labelPair = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// parseMetrics reads the series of a Prometheus text exposition (comments skipped).
func parseMetrics(text string) []sample {
	var out []sample
	s := bufio.NewScanner(strings.NewReader(text))
	s.Buffer(make([]byte, 1024*1024), 1024*1024)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var name, labels, rest string
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				continue
			}
			name, labels, rest = line[:i], line[i+1:j], line[j+1:]
		} else {
			fields := strings.Fields(line)
			if len(fields) < 2 {
				continue
			}
			name, rest = fields[0], strings.Join(fields[1:], " ")
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		m := map[string]string{}
		for _, p := range labelPair.FindAllStringSubmatch(labels, -1) {
			m[p[1]] = strings.NewReplacer(`\"`, `"`, `\\`, `\`, `\n`, "\n").Replace(p[2])
		}
		out = append(out, sample{name: name, labels: m, value: v})
	}
	return out
}

// sumMetric adds up the series named name whose labels include every pair of match, and says
// whether there was any.
func sumMetric(samples []sample, name string, match func(labels map[string]string) bool) (float64, bool) {
	total, found := 0.0, false
	for _, s := range samples {
		if s.name != name || (match != nil && !match(s.labels)) {
			continue
		}
		total += s.value
		found = true
	}
	return total, found
}

// labelsAre matches series whose labels include every pair of want.
func labelsAre(want map[string]string) func(map[string]string) bool {
	return func(got map[string]string) bool {
		for k, v := range want {
			if got[k] != v {
				return false
			}
		}
		return true
	}
}
