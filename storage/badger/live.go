package badger

import (
	"context"
	"errors"

	"github.com/dgraph-io/badger/v4"

	"github.com/tailorhq/tailor/storage"
)

// Live reports how many live keys the store holds (those of its queues
// included) and their live data: the sum of their key and value lengths,
// what a store without garbage or overhead would hold. Compare it with
// [Store.Size] to see how much of the disk is garbage.
//
// It iterates over the keys of one snapshot without reading the value
// log: a value kept there is counted by the length its pointer records,
// which Badger knows to within a few bytes (the varint header it stores
// with the value). On a million keys it reads the LSM tree only (tens of
// MB), not the gigabytes of values, so it can be called every few seconds
// under load. It is safe for concurrent use; it stops with ctx's error
// when ctx is done.
func (s *Store) Live(ctx context.Context) (keys, bytes int64, err error) {
	if !s.gate.Enter() {
		return 0, 0, storage.ErrClosed
	}
	defer s.gate.Leave()
	keys, bytes, err = s.live(ctx.Done())
	if err != nil {
		return 0, 0, ctx.Err()
	}
	return keys, bytes, nil
}

// errStopped is live's error when done is closed before the count ends.
var errStopped = errors.New("badger: live count stopped")

// live counts the live keys and bytes of one snapshot, as Live says, and
// stops with errStopped when done is closed. The caller keeps the
// database open meanwhile.
func (s *Store) live(done <-chan struct{}) (keys, bytes int64, err error) {
	readTs, release := s.clock.snapshot()
	defer release()
	txn := s.db.NewTransactionAt(readTs, false)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		if keys++; keys%1024 == 0 {
			select {
			case <-done:
				return 0, 0, errStopped
			default:
			}
		}
		item := it.Item()
		bytes += item.KeySize() + item.ValueSize()
	}
	return keys, bytes, nil
}
