package explain

import "testing"

// BenchmarkEvaluateSeedProfile evaluates one request against the rendered objects of the
// issue's example profile (every layer, Istio).
func BenchmarkEvaluateSeedProfile(b *testing.B) {
	objs := renderSeed(b)
	x := Expectation{Name: "b", From: ExpectationFrom{ServiceAccount: "frontend/web", PodLabels: map[string]string{"app": "web"}},
		To: ExpectationTo{PodLabels: map[string]string{"app": "backend"}, Port: 8080, Method: "GET", Path: "/"}, Want: Allowed}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EvaluateExpectation(objs, "shop", x, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
