package clerk

import (
	"context"
	"fmt"

	"github.com/evidence-parity/docket/domain"
	"github.com/evidence-parity/docket/ledger"
)

// Cached is a state the clerk keeps and how many events it is folded from.
type Cached struct {
	State any
	Next  uint64
}

// CachedStates returns the states this clerk keeps, by stream.
func CachedStates(k *Clerk) map[string]Cached {
	k.cache.mu.Lock()
	defer k.cache.mu.Unlock()
	out := make(map[string]Cached, len(k.cache.streams))
	for stream, f := range k.cache.streams {
		out[stream] = Cached{f.state, f.next}
	}
	return out
}

// FoldStored folds the first c.Next events of stream, as stored in k's
// store, into a state of c.State's type.
func FoldStored(ctx context.Context, k *Clerk, stream string, c Cached) (any, error) {
	recs, err := k.store.ReadStream(ctx, stream, 0)
	if err != nil {
		return nil, err
	}
	if uint64(len(recs)) < c.Next {
		return nil, fmt.Errorf("%s has %d events, %d cached", stream, len(recs), c.Next)
	}
	recs = recs[:c.Next]
	switch c.State.(type) {
	case *domain.Change:
		return foldFresh[domain.Change](stream, recs)
	case *domain.Principal:
		return foldFresh[domain.Principal](stream, recs)
	case *domain.Agent:
		return foldFresh[domain.Agent](stream, recs)
	case *domain.Freezes:
		return foldFresh[domain.Freezes](stream, recs)
	}
	return nil, fmt.Errorf("%s: a state of type %T", stream, c.State)
}

func foldFresh[S any, P state[S]](stream string, recs []ledger.Record) (any, error) {
	s, _, err := extend[S, P](&streamCache{}, stream, new(S), 0, recs)
	return s, err
}
