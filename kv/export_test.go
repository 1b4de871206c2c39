package kv

// Waiting returns the number of transactions waiting for a turn on key.
func Waiting(s *Store, key string) int {
	s.turns.mu.Lock()
	defer s.turns.mu.Unlock()
	if q, ok := s.turns.keys[key]; ok {
		return len(q.waiting)
	}
	return 0
}
