package engine

import (
	"github.com/tailorhq/tailor/storage"
)

// openDefaultStore opens the default store: Badger in dir, or in memory.
func openDefaultStore(dir string, o *Options) (storage.Store, error) {
	bo := storage.BadgerOptions{Dir: dir, InMemory: o.InMemory, SyncWrites: o.SyncWrites, Logger: o.Logger}
	if o.InMemory {
		bo.Dir = ""
	}
	s, err := storage.OpenBadger(bo)
	if err != nil || o.InMemory || o.MinFreeBytes < 0 {
		return s, err
	}
	return newDiskGuard(s, dir, o.MinFreeBytes), nil
}
