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
	return storage.OpenBadger(bo)
}
