package badger

// WaitSeeded waits until the seeding of s's version filter has ended.
func WaitSeeded(s *Store) { <-s.seeding.done }
