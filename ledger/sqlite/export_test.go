package sqlite

import "time"

// CrashForTest stops the store as a killed process would: no final
// checkpoint; the lock is released.
func (s *Store) CrashForTest() {
	s.sendMu.Lock()
	s.closed, s.reqsClosed = true, true
	close(s.reqs)
	s.sendMu.Unlock()
	if s.stopCP != nil {
		s.stopCP()
		<-s.cpDone
	}
	<-s.writerErr
	s.mu.Lock()
	close(s.notify)
	s.notify = nil
	s.mu.Unlock()
	s.closeDBs()
}

// SetStreamsFlushForTest sets when the writer indexes the streams' tail
// (after so many events, or so long after the oldest), until the test ends.
func SetStreamsFlushForTest(t cleaner, events uint64, after time.Duration) {
	setForTest(t, &streamsFlushEvents, events)
	setForTest(t, &streamsFlushAfter, after)
}

type cleaner interface{ Cleanup(func()) }

// setForTest sets *p to v until the test ends.
func setForTest[T any](t cleaner, p *T, v T) {
	old := *p
	*p = v
	t.Cleanup(func() { *p = old })
}

// BeforeSyncForTest runs f before each fsync of the WAL (in the syncer's
// goroutine). Set it while no append is under way: the syncer reads it
// only after a batch is handed to it.
func (s *Store) BeforeSyncForTest(f func()) { s.beforeSync = f }

// BreakSyncForTest makes every later fsync of the WAL fail, as a failing
// disk would.
func (s *Store) BreakSyncForTest() {
	s.beforeSync = nil
	s.walPath = s.path + "-no-such-wal"
}

// SetStreamsIndexChunkForTest sets how many events one transaction of the
// stream index covers (in a flush or a rebuild), until the test ends.
func SetStreamsIndexChunkForTest(t cleaner, events uint64) {
	setForTest(t, &streamsIndexChunk, events)
}
