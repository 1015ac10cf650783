package engine

import (
	"github.com/tailorhq/tailor/storage"
	"github.com/tailorhq/tailor/storage/badger"
)

// openDefaultStore opens the default store: Badger in dir, or in memory.
func openDefaultStore(dir string, o *Options) (storage.Store, error) {
	bo := badger.Options{Dir: dir, InMemory: o.InMemory, SyncWrites: o.SyncWrites, Logger: o.Logger,
		MeterProvider: o.MeterProvider}
	if o.InMemory {
		bo.Dir = ""
	}
	s, err := badger.Open(bo)
	if err != nil {
		return nil, err
	}
	if o.InMemory || o.MinFreeBytes < 0 {
		return s, nil
	}
	return newDiskGuard(s, dir, o.MinFreeBytes), nil
}
