package scale

import (
	"fmt"
	"sort"
	"strings"

	"github.com/meshguard/meshguard/test/testenv"
)

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
func requestsFrom(samples []testenv.Sample) Requests {
	out := Requests{}
	for _, s := range samples {
		if s.Name != "apiserver_request_total" || s.Labels["dry_run"] != "" || !watchedResources[s.Labels["resource"]] {
			continue
		}
		res := s.Labels["resource"]
		if sub := s.Labels["subresource"]; sub != "" {
			res += "/" + sub
		}
		out[s.Labels["verb"]+" "+res] += s.Value
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
