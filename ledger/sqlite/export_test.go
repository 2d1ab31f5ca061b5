package sqlite

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
