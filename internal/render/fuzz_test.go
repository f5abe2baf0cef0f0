package render

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/test/fixtures"
)

// FuzzRender feeds Render every profile the fuzzer can decode from YAML, valid or not: rendering
// never panics, refuses bad input with an *InvalidSpecError whose errors name a field, is
// deterministic, and, for a profile whose name the API server would accept, produces only objects
// with valid names of at most MaxNameLength characters, in the profile's namespace, labelled and
// owned by it. The seeds are the golden inputs (testdata/*.yaml), test/fixtures' profiles and
// testdata/fuzz/FuzzRender.
// controllers' "fuzz corpus" spec then creates the objects of every corpus entry with a
// server-side dry run against the real CRDs.
//
//	go test ./internal/render -run '^$' -fuzz FuzzRender -fuzztime 60s
func FuzzRender(f *testing.F) {
	for _, in := range profileCases(f, "testdata/*.yaml") {
		b, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, c := range fixtures.ValidProfiles {
		f.Add([]byte(c.YAML))
	}
	for _, c := range fixtures.InvalidProfiles {
		f.Add([]byte(c.YAML))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := &v1alpha1.MeshSecurityProfile{}
		if err := yaml.Unmarshal(data, p); err != nil {
			return
		}
		if p.Namespace == "" {
			p.Namespace = "default"
		}
		p.UID = types.UID("00000000-0000-0000-0000-000000000001")
		before := p.DeepCopy()
		res, err := Render(p, DefaultOptions())
		if !reflect.DeepEqual(p, before) {
			t.Fatal("Render changed its input")
		}
		if err != nil {
			var invalid *InvalidSpecError
			if !errors.As(err, &invalid) {
				t.Fatalf("an error that is not an *InvalidSpecError: %v", err)
			}
			for _, e := range invalid.Errs {
				if e.Field == "" {
					t.Fatalf("an error that names no field: %v", e)
				}
			}
			return
		}
		again, err := Render(p.DeepCopy(), DefaultOptions())
		if err != nil || !reflect.DeepEqual(res, again) {
			t.Fatalf("two renders of one profile differ: %v", err)
		}
		if len(res.Unsupported) > 0 {
			if len(res.Objects) > 0 {
				t.Fatal("objects rendered for a profile the mesh cannot express: nothing may be applied half-way")
			}
			return
		}
		if len(validation.IsDNS1123Label(p.Name)) > 0 || len(validation.IsDNS1123Label(p.Namespace)) > 0 {
			return // The API server refuses such a profile: the names below derive from it.
		}
		seen := map[string]bool{}
		for _, o := range res.Objects {
			id := o.GetAPIVersion() + "/" + o.GetKind() + "/" + o.GetName()
			if seen[id] {
				t.Fatalf("%s rendered twice", id)
			}
			seen[id] = true
			if errs := validation.IsDNS1123Subdomain(o.GetName()); len(errs) > 0 || len(o.GetName()) > MaxNameLength {
				t.Fatalf("%s: invalid name: %s", id, strings.Join(errs, "; "))
			}
			if o.GetNamespace() != p.Namespace {
				t.Fatalf("%s in namespace %q, not the profile's", id, o.GetNamespace())
			}
			if o.GetLabels()[v1alpha1.LabelProfile] != p.Name || o.GetLabels()[v1alpha1.LabelManagedBy] != v1alpha1.ManagedByValue {
				t.Fatalf("%s without meshguard's labels: %v", id, o.GetLabels())
			}
			if refs := o.GetOwnerReferences(); len(refs) != 1 || refs[0].UID != p.UID {
				t.Fatalf("%s not owned by the profile: %v", id, refs)
			}
		}
	})
}
