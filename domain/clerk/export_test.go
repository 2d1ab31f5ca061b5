package clerk

import (
	"context"
	"fmt"

	"github.com/evidence-parity/docket/domain"
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
	var scratch streamCache
	switch c.State.(type) {
	case *domain.Change:
		s, _, err := extend[domain.Change](&scratch, stream, new(domain.Change), 0, recs)
		return s, err
	case *domain.Principal:
		s, _, err := extend[domain.Principal](&scratch, stream, new(domain.Principal), 0, recs)
		return s, err
	case *domain.Agent:
		s, _, err := extend[domain.Agent](&scratch, stream, new(domain.Agent), 0, recs)
		return s, err
	case *domain.Freezes:
		s, _, err := extend[domain.Freezes](&scratch, stream, new(domain.Freezes), 0, recs)
		return s, err
	}
	return nil, fmt.Errorf("%s: a state of type %T", stream, c.State)
}
