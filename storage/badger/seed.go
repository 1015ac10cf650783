package badger

import (
	"bytes"
	"sync"

	"github.com/cespare/xxhash/v2"
	"github.com/dgraph-io/badger/v4"
)

// seedBatchLen is the number of keys the seeder reads before it hands
// them to the filter's writer: large enough that the hand-over costs
// nothing per key, small enough that the committer applies a batch in
// well under a millisecond.
const seedBatchLen = 4096

// seedEntry is one key's latest version at the seeding snapshot: the
// key's hash and the version, with filterTTL when it proves nothing.
type seedEntry struct{ hash, ts uint64 }

// seedBatch is a batch of entries on its way to the filter's writer, and
// the signal that it has been applied.
type seedBatch struct {
	entries []seedEntry
	applied chan struct{} // buffered 1
}

// seeding is the seeder goroutine's state: Restore stops it (stop) and
// waits for it to end (done) before it resets the filter.
type seeding struct {
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

// startSeeding seeds the version filter from the store's contents in the
// background (filter.go, "Seeding"), from a snapshot at the last commit.
// Open calls it before any write, so every write is later than the
// snapshot.
func (s *Store) startSeeding() {
	s.seeding = seeding{stop: make(chan struct{}), done: make(chan struct{})}
	if s.filter == nil || s.opts.InMemory { // in memory, a store opens empty
		close(s.seeding.done)
		return
	}
	s.filter.complete.Store(false)
	txn := s.db.NewTransactionAt(s.clock.now(), false)
	if s.commits != nil {
		s.seeds = make(chan *seedBatch)
	}
	go s.seed(txn)
}

// seed reads the latest version of every key in txn's snapshot and hands
// them to the filter's writer in batches; once all are applied, the
// filter is complete.
func (s *Store) seed(txn *badger.Txn) {
	defer close(s.seeding.done)
	defer txn.Discard()
	// Keys only, every version: a deletion or an expired write is a
	// key's latest version too, which reads must not read below.
	it := txn.NewIterator(badger.IteratorOptions{AllVersions: true})
	defer it.Close()
	b := &seedBatch{entries: make([]seedEntry, 0, seedBatchLen), applied: make(chan struct{}, 1)}
	var last []byte
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		key := item.Key()
		if bytes.Equal(key, last) { // keys are never empty
			continue // an older version
		}
		last = append(last[:0], key...)
		e := seedEntry{hash: xxhash.Sum64(key), ts: item.Version()}
		if item.IsDeletedOrExpired() || item.ExpiresAt() != 0 {
			e.ts |= filterTTL
		}
		b.entries = append(b.entries, e)
		if len(b.entries) == seedBatchLen {
			if !s.applySeeds(b) {
				return
			}
			b.entries = b.entries[:0]
		}
	}
	if s.applySeeds(b) {
		s.filter.complete.Store(true)
	}
}

// applySeeds has the filter's writer apply b: the committer, or, without
// group commit, the seeder itself holding commitMu. It reports false,
// without applying b, once the store is closing or Restore stops the
// seeding.
func (s *Store) applySeeds(b *seedBatch) bool {
	select {
	case <-s.seeding.stop:
		return false
	case <-s.stop:
		return false
	default:
	}
	if s.seeds == nil {
		s.commitMu.Lock()
		s.filter.seed(b.entries)
		s.commitMu.Unlock()
		return true
	}
	select {
	case s.seeds <- b:
	case <-s.seeding.stop:
		return false
	case <-s.stop:
		return false
	}
	<-b.applied // the committer applies a batch as it receives it
	return true
}

// stopSeeding stops the seeder and waits for it to end.
func (s *Store) stopSeeding() {
	s.seeding.stopOnce.Do(func() { close(s.seeding.stop) })
	<-s.seeding.done
}
