package engine_test

import (
	"context"
	"sync"

	"github.com/tailorhq/tailor/storage"
)

// faultStore wraps a Store and lets a test intercept writes: beforeWrite
// runs before every Write and, when it returns an error, the write is not
// passed on. Reads always go through. Safe for concurrent use.
type faultStore struct {
	storage.Store

	mu          sync.Mutex
	beforeWrite func(op storage.Op) error
}

func (f *faultStore) setBeforeWrite(fn func(op storage.Op) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.beforeWrite = fn
}

func (f *faultStore) Write(ctx context.Context, op storage.Op) (storage.Version, error) {
	f.mu.Lock()
	fn := f.beforeWrite
	f.mu.Unlock()
	if fn != nil {
		if err := fn(op); err != nil {
			return 0, err
		}
	}
	return f.Store.Write(ctx, op)
}

// parkWrites makes every write of profile id wait until release is
// called; parked is closed when the first such write arrives (the call
// then holds the profile's lock).
func (f *faultStore) parkWrites(id string) (parked <-chan struct{}, release func()) {
	p, gate := make(chan struct{}), make(chan struct{})
	var once sync.Once
	f.setBeforeWrite(func(op storage.Op) error {
		if writes(op, id) {
			once.Do(func() { close(p) })
			<-gate
		}
		return nil
	})
	return p, func() { close(gate) }
}
