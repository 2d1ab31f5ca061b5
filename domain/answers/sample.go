package answers

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"sort"
)

// Sample draws a reproducible sample (DESIGN.md, "Read side"): every id of
// the population is ranked by HMAC-SHA256 keyed with the seed over the id,
// and the n lowest ranks are taken, in rank order. The same population and
// seed always give the same sample, whatever order the ids come in, and a
// change's inclusion depends on nothing but its own id and the seed. The
// portal, the GraphQL API and the evidence binder all draw with this
// function.
func Sample(population []string, seed string, n int) []string {
	type ranked struct {
		id   string
		rank []byte
	}
	rs := make([]ranked, len(population))
	for i, id := range population {
		m := hmac.New(sha256.New, []byte(seed))
		m.Write([]byte(id))
		rs[i] = ranked{id, m.Sum(nil)}
	}
	sort.Slice(rs, func(i, j int) bool {
		if c := bytes.Compare(rs[i].rank, rs[j].rank); c != 0 {
			return c < 0
		}
		return rs[i].id < rs[j].id
	})
	out := make([]string, 0, min(n, len(rs)))
	for _, r := range rs[:min(n, len(rs))] {
		out = append(out, r.id)
	}
	return out
}
