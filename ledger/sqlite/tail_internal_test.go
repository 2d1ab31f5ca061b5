package sqlite

import (
	"bytes"
	"testing"
)

// The tail stays within its bounds in events and in bytes, whatever the
// events' sizes, and always answers with the events at the positions asked.
func TestRecentTailBounds(t *testing.T) {
	var tail recentTail
	var all [][]byte
	for batch, size := range []int{10, 300 << 10, 1 << 20, 100, 1 << 20, 5, 700 << 10} {
		n := 1 + batch*700
		if size >= 100<<10 {
			n = 12
		}
		events := make([][]byte, n)
		for i := range events {
			events[i] = bytes.Repeat([]byte{byte(len(all) + i)}, size)
		}
		tail.add(uint64(len(all)), events)
		all = append(all, events...)

		if len(tail.canonical) > 2*recentTailEvents || tail.bytes > 2*recentTailBytes {
			t.Fatalf("after batch %d: %d events of %d bytes held", batch, len(tail.canonical), tail.bytes)
		}
		if end := tail.start + uint64(len(tail.canonical)); end != uint64(len(all)) {
			t.Fatalf("after batch %d: the tail ends at %d, the log at %d", batch, end, len(all))
		}
		total := 0
		for _, c := range tail.canonical {
			total += len(c)
		}
		if total != tail.bytes {
			t.Fatalf("after batch %d: %d bytes counted, %d held", batch, tail.bytes, total)
		}
		for _, from := range []uint64{tail.start, tail.start + uint64(len(tail.canonical))/2, uint64(len(all))} {
			got, ok := tail.from(from, 1024)
			if len(tail.canonical) == 0 {
				continue
			}
			if !ok {
				t.Fatalf("after batch %d: the tail does not answer from %d (it holds %d..%d)", batch, from, tail.start, len(all))
			}
			for i, c := range got {
				if !bytes.Equal(c, all[from+uint64(i)]) {
					t.Fatalf("after batch %d: position %d holds another event", batch, from+uint64(i))
				}
			}
		}
		if tail.start > 0 {
			if _, ok := tail.from(tail.start-1, 1024); ok {
				t.Fatalf("after batch %d: the tail answers for %d, before its start %d", batch, tail.start-1, tail.start)
			}
		}
	}
	if tail.start == 0 {
		t.Fatal("the tail never dropped an event")
	}
}
