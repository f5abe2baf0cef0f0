package suggest

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// readWorkloads reads a YAML stream of workloads.
func readWorkloads(t *testing.T, path string) []Workload {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	var objs []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := d.Decode(&u.Object); err != nil {
			break
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
	w, err := WorkloadsFromObjects(objs)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func propose(t *testing.T, name string, mesh v1alpha1.Mesh, opts Options) []byte {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name+".prom"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	samples, err := ParseExposition(f)
	if err != nil {
		t.Fatal(err)
	}
	obs, err := Observe(mesh, samples)
	if err != nil {
		t.Fatal(err)
	}
	opts.Mesh = mesh
	opts.Skip = append(opts.Skip, "istio-system", "linkerd", "kube-system")
	props, err := Suggest(obs, readWorkloads(t, filepath.Join("testdata", name+".workloads.yaml")), opts)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Marshal(props)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGoldens: the recorded metrics of each mesh give the reviewed profiles.
func TestGoldens(t *testing.T) {
	for _, c := range []struct {
		name string
		mesh v1alpha1.Mesh
	}{{"istio-shop", v1alpha1.MeshIstio}, {"linkerd-payments", v1alpha1.MeshLinkerd}} {
		t.Run(c.name, func(t *testing.T) {
			g := NewWithT(t)
			got := propose(t, c.name, c.mesh, Options{})
			golden := filepath.Join("testdata", c.name+".golden.yaml")
			if *update {
				g.Expect(os.WriteFile(golden, got, 0o644)).To(Succeed())
			}
			want, err := os.ReadFile(golden)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(string(got)).To(Equal(string(want)), "run go test ./internal/suggest -update and review the diff")
		})
	}
}
