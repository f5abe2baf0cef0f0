package render

import "testing"

// BenchmarkRender renders the largest golden profile (every Istio field and NetworkPolicies).
func BenchmarkRender(b *testing.B) {
	p := loadProfile(b, "testdata/baseline-full.yaml")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(p, DefaultOptions()); err != nil {
			b.Fatal(err)
		}
	}
}
