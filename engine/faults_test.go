package engine_test

import (
	"context"
	"sync"

	"github.com/tailorhq/tailor/storage"
)

// faultStore wraps a Store and lets a test intercept writes: beforeApply
// runs before every Apply and, when it returns an error, the write is not
// passed on. Reads always go through. Safe for concurrent use.
type faultStore struct {
	storage.Store

	mu          sync.Mutex
	beforeApply func(ops []storage.Op) error
}

func (f *faultStore) setBeforeApply(fn func(ops []storage.Op) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.beforeApply = fn
}

func (f *faultStore) Apply(ctx context.Context, ops []storage.Op) error {
	f.mu.Lock()
	fn := f.beforeApply
	f.mu.Unlock()
	if fn != nil {
		if err := fn(ops); err != nil {
			return err
		}
	}
	return f.Store.Apply(ctx, ops)
}

// parkWrites makes every write of profile id wait until release is
// called; parked is closed when the first such write arrives (the call
// then holds the profile's lock).
func (f *faultStore) parkWrites(id string) (parked <-chan struct{}, release func()) {
	p, gate := make(chan struct{}), make(chan struct{})
	var once sync.Once
	f.setBeforeApply(func(ops []storage.Op) error {
		if writes(ops, id) {
			once.Do(func() { close(p) })
			<-gate
		}
		return nil
	})
	return p, func() { close(gate) }
}
