package billing

import "testing"

func TestTotal(t *testing.T) {
	if got := Total([]int64{100, 250}); got != 350 {
		t.Fatalf("got %d", got)
	}
}

func TestTotalEmpty(t *testing.T) {
	if Total(nil) != 0 {
		t.Fatal("nonzero")
	}
}

func TestRounding(t *testing.T) {
	if Total([]int64{1, 1}) != 3 {
		t.Fatal("rounding is still wrong: got 2, want 3")
	}
}

func TestSkipped(t *testing.T) { t.Skip("needs a database") }
