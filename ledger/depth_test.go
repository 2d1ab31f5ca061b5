package ledger

import (
	"strings"
	"testing"
	"time"
)

func TestDepthSkipsStrings(t *testing.T) {
	for in, want := range map[string]int{
		`{}`:                           1,
		`{"a":[1,{"b":[]}]}`:           4,
		`{"a":"[[[{{{"}`:               1,
		`{"a":"\"[[","b":"\\"}`:        1,
		`{"a":[` + `"]]]\\\"]"` + `]}`: 2,
		strings.Repeat(`{"a":`, 50) + `1` + strings.Repeat(`}`, 50): 50,
	} {
		if got := depth([]byte(in)); got != want {
			t.Errorf("depth(%s) = %d, want %d", in, got, want)
		}
	}
	deepest := `{"a":` + strings.Repeat("[", MaxDepth-1) + strings.Repeat("]", MaxDepth-1) + `}`
	if _, err := Prepare("s", []Event{{Type: "T", Actor: Actor{Kind: ActorSystem, ID: "x"}, Data: []byte(deepest)}}, DefaultLimits, time.Now()); err != nil {
		t.Fatalf("data %d levels deep: %v", MaxDepth, err)
	}
}
