package explain

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// objs parses YAML documents separated by --- into objects.
func objs(t *testing.T, docs string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, d := range strings.Split(docs, "\n---\n") {
		if strings.TrimSpace(d) == "" {
			continue
		}
		m := map[string]any{}
		if err := yaml.Unmarshal([]byte(d), &m); err != nil {
			t.Fatalf("parse %q: %v", d, err)
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
	return out
}

type layerCase struct {
	name     string
	objects  string
	req      Request
	opts     Options
	layer    string
	want     Decision
	deciding []string // Ref strings, when asserted
	overall  Decision // asserted when set
}

func runLayerCases(t *testing.T, cases []layerCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Evaluate(objs(t, tc.objects), tc.req, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			var got *LayerResult
			for i := range res.Layers {
				if res.Layers[i].Layer == tc.layer {
					got = &res.Layers[i]
				}
			}
			if got == nil {
				t.Fatalf("no layer %q in %+v", tc.layer, res.Layers)
			}
			if got.Decision != tc.want {
				t.Fatalf("%s: got %s (%s), want %s", tc.layer, got.Decision, got.Reason, tc.want)
			}
			if tc.deciding != nil {
				var refs []string
				for _, r := range got.Deciding {
					refs = append(refs, r.String())
				}
				if strings.Join(refs, ",") != strings.Join(tc.deciding, ",") {
					t.Fatalf("%s deciding: got %v, want %v", tc.layer, refs, tc.deciding)
				}
			}
			if tc.overall != "" && res.Decision != tc.overall {
				t.Fatalf("overall: got %s, want %s", res.Decision, tc.overall)
			}
		})
	}
}

func pod(ns, sa string, l ...string) Source {
	return Source{Namespace: ns, ServiceAccount: sa, PodLabels: lbls(l...)}
}

func to(ns string, port int32, l ...string) Destination {
	return Destination{Namespace: ns, Port: port, PodLabels: lbls(l...)}
}

func lbls(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func get(path string) *HTTP { return &HTTP{Method: "GET", Path: path} }

func opaque(d Destination) Destination {
	d.OpaqueTCP = true
	return d
}
