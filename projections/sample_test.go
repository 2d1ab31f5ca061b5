package projections_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/evidence-parity/docket/projections"
)

func TestSample(t *testing.T) {
	pop := make([]string, 200)
	for i := range pop {
		pop[i] = fmt.Sprintf("chg-%03d", i)
	}
	got := projections.Sample(pop, "seed-1", 25)

	// The definition, computed independently: rank by the hex HMAC.
	type r struct{ id, mac string }
	var rs []r
	for _, id := range pop {
		m := hmac.New(sha256.New, []byte("seed-1"))
		m.Write([]byte(id))
		rs = append(rs, r{id, hex.EncodeToString(m.Sum(nil))})
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].mac < rs[j].mac })
	for i := range got {
		if got[i] != rs[i].id {
			t.Fatalf("rank %d: got %s, want %s", i, got[i], rs[i].id)
		}
	}

	shuffled := slices.Clone(pop)
	rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	if !slices.Equal(projections.Sample(shuffled, "seed-1", 25), got) {
		t.Fatal("the sample depends on the population's order")
	}
	if !slices.Equal(projections.Sample(pop, "seed-1", 10), got[:10]) {
		t.Fatal("a smaller sample is not the first part of a larger one")
	}
	if slices.Equal(projections.Sample(pop, "seed-2", 25), got) {
		t.Fatal("another seed drew the same sample")
	}
	if all := projections.Sample(pop[:5], "s", 25); len(all) != 5 {
		t.Fatalf("a sample larger than the population: %d", len(all))
	}
	if none := projections.Sample(nil, "s", 25); len(none) != 0 {
		t.Fatal("a sample of nothing")
	}
}
