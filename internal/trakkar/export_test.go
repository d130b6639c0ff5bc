package trakkar

// Dropped counts events dropped because memory and spool were full or the
// spool failed; only the tests read it.
func (s *Shipper) Dropped() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}
