package engine

// The engine's view of its store: the latency of every read and write,
// whatever the store, and the disk guard's free space (see telemetry.go).

import (
	"context"
	"errors"
	"time"

	"github.com/tailorhq/tailor/storage"
)

// Store operations and results (attributes tailor.store.operation and
// tailor.store.result of tailor.store.operation.duration).
const (
	opGet = iota
	opWrite
	numOps
)

const (
	resultOK = iota
	resultNotFound
	resultConflict
	resultError
	numResults
)

var (
	opNames     = [numOps]string{"get", "write"}
	resultNames = [numResults]string{"ok", "not_found", "conflict", "error"}
)

// meteredStore times the engine's reads and writes of its store.
type meteredStore struct {
	storage.Store
	m *instruments
}

func (s *meteredStore) Get(ctx context.Context, key, dst []byte) ([]byte, storage.Version, error) {
	start := time.Now()
	b, v, err := s.Store.Get(ctx, key, dst)
	s.timed(ctx, opGet, start, err)
	return b, v, err
}

// Latest keeps the inner store's storage.Cached read, timed as a get: the
// identity protocol's decisions must not read a cached copy.
func (s *meteredStore) Latest(ctx context.Context, key, dst []byte) ([]byte, storage.Version, error) {
	start := time.Now()
	b, v, err := storage.Latest(ctx, s.Store, key, dst)
	s.timed(ctx, opGet, start, err)
	return b, v, err
}

func (s *meteredStore) Write(ctx context.Context, op storage.Op) (storage.Version, error) {
	start := time.Now()
	v, err := s.Store.Write(ctx, op)
	s.timed(ctx, opWrite, start, err)
	return v, err
}

// timed records an operation (opGet, opWrite) that started at start and
// ended with err.
func (s *meteredStore) timed(ctx context.Context, op int, start time.Time, err error) {
	r := resultOK
	switch {
	case err == nil:
	case errors.Is(err, storage.ErrNotFound):
		r = resultNotFound
	case errors.Is(err, storage.ErrConflict):
		r = resultConflict
	default:
		r = resultError
	}
	s.m.storeTime.Record(ctx, time.Since(start).Seconds(), s.m.store[op][r]...)
}

// Size reports the inner store's size when it has one.
func (s *meteredStore) Size() (lsm, vlog int64) {
	if sz, ok := s.Store.(storage.Sizer); ok {
		return sz.Size()
	}
	return 0, 0
}

// view returns the free space the guard sees — the last figure it read,
// refreshed when stale, less what was written since — or false when it
// cannot tell (statfs failed).
func (g *diskGuard) view() (uint64, bool) {
	_ = g.check(0) // refreshes the figure when it is stale
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil {
		return 0, false
	}
	return g.free - min(g.free, g.written), true
}
