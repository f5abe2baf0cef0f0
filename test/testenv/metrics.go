package testenv

import (
	"bufio"
	"strconv"
	"strings"
)

// The manager's and the API server's metrics, as the tests read them.

// Sample is one line of the Prometheus text format.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// ParseMetrics reads the Prometheus text exposition format (what /metrics serves); comments and
// lines it cannot read are skipped.
func ParseMetrics(text string) []Sample {
	var out []Sample
	s := bufio.NewScanner(strings.NewReader(text))
	s.Buffer(make([]byte, 1<<20), 1<<24)
	for s.Scan() {
		line := s.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		smp := Sample{Labels: map[string]string{}}
		var rest string
		if i := strings.IndexAny(line, "{ "); i >= 0 && line[i] == '{' {
			smp.Name = line[:i]
			j, ok := parseLabels(line[i+1:], smp.Labels)
			if !ok {
				continue
			}
			rest = line[i+1+j:]
		} else if i >= 0 {
			smp.Name, rest = line[:i], line[i:]
		} else {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		smp.Value = v
		out = append(out, smp)
	}
	return out
}

// parseLabels reads `a="x",b="y"}` into m and returns the length read, including the brace.
func parseLabels(s string, m map[string]string) (int, bool) {
	i := 0
	for i < len(s) {
		if s[i] == '}' {
			return i + 1, true
		}
		if s[i] == ',' || s[i] == ' ' {
			i++
			continue
		}
		eq := strings.IndexByte(s[i:], '=')
		if eq < 0 || i+eq+1 >= len(s) || s[i+eq+1] != '"' {
			return 0, false
		}
		key := s[i : i+eq]
		i += eq + 2
		var b strings.Builder
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					b.WriteByte('\n')
				default:
					b.WriteByte(s[i])
				}
				continue
			}
			b.WriteByte(s[i])
		}
		if i >= len(s) {
			return 0, false
		}
		m[key] = b.String()
		i++ // closing quote
	}
	return 0, false
}

// SumMetric adds the values of every sample of a metric whose labels include every pair of
// match, and says whether there was any.
func SumMetric(samples []Sample, name string, match map[string]string) (float64, bool) {
	total, found := 0.0, false
	for _, s := range samples {
		if s.Name != name || !LabelsInclude(s.Labels, match) {
			continue
		}
		total += s.Value
		found = true
	}
	return total, found
}

// LabelsInclude says whether labels include every pair of want.
func LabelsInclude(labels, want map[string]string) bool {
	for k, v := range want {
		if labels[k] != v {
			return false
		}
	}
	return true
}
