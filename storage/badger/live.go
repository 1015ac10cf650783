package badger

import (
	"context"

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
	if !s.enter() {
		return 0, 0, storage.ErrClosed
	}
	defer s.inflight.Done()
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	readTs, release := s.clock.snapshot()
	defer release()
	txn := s.db.NewTransactionAt(readTs, false)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		if keys++; keys%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return 0, 0, err
			}
		}
		item := it.Item()
		bytes += item.KeySize() + item.ValueSize()
	}
	return keys, bytes, nil
}
