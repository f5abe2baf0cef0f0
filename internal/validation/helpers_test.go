package validation

import "testing"

func TestDistanceCountsEditsWithTranspositionsAsOne(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"mtls", "mtls", 0},
		{"mtsl", "mtls", 1},
		{"nme", "name", 1},
		{"form", "from", 1},
		{"kitten", "sitting", 3},
		{"", "abc", 3},
	}
	for _, tt := range tests {
		if got := distance(tt.a, tt.b); got != tt.want {
			t.Errorf("distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestEmptyDocumentsAreThoseWithOnlyCommentsAndBlankLines(t *testing.T) {
	tests := []struct {
		doc  string
		want bool
	}{
		{"", true},
		{"# a comment\n\n  # another\n", true},
		{"---\n", true},
		{"a: b\n", false},
		{"# comment\nkind: X\n", false},
	}
	for _, tt := range tests {
		if got := isEmptyDocument([]byte(tt.doc)); got != tt.want {
			t.Errorf("isEmptyDocument(%q) = %v, want %v", tt.doc, got, tt.want)
		}
	}
}
