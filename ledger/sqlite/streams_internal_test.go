package sqlite

import (
	"maps"
	"slices"
	"testing"
	"time"
)

// After a flush the writer keeps its own account only of streams whose
// latest batch is not yet published: the others' next revisions come from
// the published heads or the index, so the account stays as small as the
// tail, however many streams the heads cache has dropped.
func TestFlushedKeepsOnlyUnpublishedStreams(t *testing.T) {
	tail := streamTail{next: map[string]streamNext{}}
	now := time.Now()
	tail.committed(map[string]uint64{"a": 3, "b": 1}, 4, now)
	tail.committed(map[string]uint64{"b": 2, "c": 1}, 6, now)
	tail.committed(map[string]uint64{"d": 1}, 7, now)
	if tail.since != now {
		t.Fatalf("since = %v, want the first commit's time", tail.since)
	}

	tail.flushed(7, 6) // the batch ending at 7 is still on its way to the disk
	if got := slices.Sorted(maps.Keys(tail.next)); !slices.Equal(got, []string{"d"}) {
		t.Errorf("kept %v after a flush with the log published to 6 of 7, want [d]", got)
	}
	if tail.indexed != 7 || !tail.since.IsZero() {
		t.Errorf("watermark %d, since %v; want 7 and zero (no tail)", tail.indexed, tail.since)
	}
	if n := tail.next["d"]; n.revision != 1 {
		t.Errorf("d's next revision = %d, want 1", n.revision)
	}

	tail.committed(map[string]uint64{"a": 4}, 8, now.Add(time.Second))
	tail.flushed(8, 8)
	if len(tail.next) != 0 {
		t.Errorf("kept %v with everything published, want nothing", tail.next)
	}
}
