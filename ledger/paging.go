package ledger

import (
	"context"
	"iter"
)

// PageReader reads the records at positions from on, in position order, at
// most one page of them; a short page means the log ends there for now.
type PageReader func(ctx context.Context, from uint64) ([]Record, error)

// ReadPages is ReadAll over a store that reads its log a page at a time:
// it yields records from position from on until a page shorter than
// pageSize.
func ReadPages(ctx context.Context, from uint64, pageSize int, page PageReader) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		for {
			recs, err := page(ctx, from)
			if err != nil {
				yield(Record{}, err)
				return
			}
			for _, r := range recs {
				if !yield(r, nil) {
					return
				}
			}
			if len(recs) < pageSize {
				return
			}
			from = recs[len(recs)-1].Position + 1
		}
	}
}

// SubscribePages is Subscribe over a store that reads its log a page at a
// time and signals growth: wake returns a channel closed after the next
// commit (or an error once the store is closed). Each page is read after
// noting the signal, so no record is skipped or repeated across the switch
// from stored to new records.
func SubscribePages(ctx context.Context, from uint64, pageSize int, page PageReader, wake func() (<-chan struct{}, error)) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		for {
			w, err := wake()
			if err != nil {
				yield(Record{}, err)
				return
			}
			recs, err := page(ctx, from)
			if err != nil {
				if ctx.Err() != nil {
					err = ctx.Err()
				}
				yield(Record{}, err)
				return
			}
			for _, r := range recs {
				if !yield(r, nil) {
					return
				}
				from = r.Position + 1
			}
			if len(recs) == pageSize {
				continue
			}
			select {
			case <-ctx.Done():
				yield(Record{}, ctx.Err())
				return
			case <-w:
			}
		}
	}
}
