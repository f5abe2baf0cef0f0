package scale

import (
	"bufio"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// sample is one line of the Prometheus text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// parseMetrics reads the Prometheus text exposition format (what /metrics serves); comments and
// lines it cannot read are skipped.
func parseMetrics(text string) []sample {
	var out []sample
	s := bufio.NewScanner(strings.NewReader(text))
	s.Buffer(make([]byte, 1<<20), 1<<24)
	for s.Scan() {
		line := s.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		smp := sample{labels: map[string]string{}}
		var rest string
		if i := strings.IndexAny(line, "{ "); i >= 0 && line[i] == '{' {
			smp.name = line[:i]
			j, ok := parseLabels(line[i+1:], smp.labels)
			if !ok {
				continue
			}
			rest = line[i+1+j:]
		} else if i >= 0 {
			smp.name, rest = line[:i], line[i:]
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
		smp.value = v
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

// metricSum adds the values of every sample of a metric whose labels include match.
func metricSum(samples []sample, name string, match map[string]string) float64 {
	total := 0.0
	for _, s := range samples {
		if s.name != name {
			continue
		}
		ok := true
		for k, v := range match {
			if s.labels[k] != v {
				ok = false
				break
			}
		}
		if ok {
			total += s.value
		}
	}
	return total
}

// watchedResources are the resources whose requests count: what meshguard reads and writes. The
// API server's own background requests (leases, endpoints, flow control) are not among them.
var watchedResources = map[string]bool{
	"meshsecurityprofiles": true, "networkpolicies": true, "peerauthentications": true,
	"requestauthentications": true, "authorizationpolicies": true, "servers": true,
	"meshtlsauthentications": true, "networkauthentications": true, "httproutes": true,
	"configmaps": true, "secrets": true, "namespaces": true, "events": true,
}

// writeVerbs are the verbs of apiserver_request_total that change something (APPLY is a
// server-side apply PATCH).
var writeVerbs = map[string]bool{"POST": true, "PUT": true, "PATCH": true, "APPLY": true, "DELETE": true, "DELETECOLLECTION": true}

// Requests counts API requests by verb and resource, as the kube-apiserver counted them.
type Requests map[string]float64

// requestsFrom reads apiserver_request_total for the watched resources (dry runs excluded),
// keyed "VERB resource[/subresource]".
func requestsFrom(samples []sample) Requests {
	out := Requests{}
	for _, s := range samples {
		if s.name != "apiserver_request_total" || s.labels["dry_run"] != "" || !watchedResources[s.labels["resource"]] {
			continue
		}
		res := s.labels["resource"]
		if sub := s.labels["subresource"]; sub != "" {
			res += "/" + sub
		}
		out[s.labels["verb"]+" "+res] += s.value
	}
	return out
}

// Minus is the difference r - o: the requests made between two scrapes.
func (r Requests) Minus(o Requests) Requests {
	d := Requests{}
	for k, v := range r {
		if x := v - o[k]; x != 0 {
			d[k] = x
		}
	}
	return d
}

// Writes is the number of write requests.
func (r Requests) Writes() int { return r.count(func(verb string) bool { return writeVerbs[verb] }) }

// Gets is the number of single-object GET requests.
func (r Requests) Gets() int { return r.count(func(verb string) bool { return verb == "GET" }) }

// Lists is the number of LIST requests.
func (r Requests) Lists() int { return r.count(func(verb string) bool { return verb == "LIST" }) }

func (r Requests) count(f func(verb string) bool) int {
	n := 0.0
	for k, v := range r {
		if f(strings.SplitN(k, " ", 2)[0]) {
			n += v
		}
	}
	return int(n + 0.5)
}

// String lists the non-WATCH requests, largest first, for the report's detail lines.
func (r Requests) String() string {
	type kv struct {
		k string
		v float64
	}
	var all []kv
	for k, v := range r {
		if !strings.HasPrefix(k, "WATCH ") && v != 0 {
			all = append(all, kv{k, v})
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].v != all[j].v {
			return all[i].v > all[j].v
		}
		return all[i].k < all[j].k
	})
	parts := make([]string, len(all))
	for i, e := range all {
		parts[i] = fmt.Sprintf("%s=%d", e.k, int(e.v+0.5))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
