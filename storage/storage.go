package storage

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is returned by Get when the key does not exist (or has
// expired).
var ErrNotFound = errors.New("storage: key not found")

// ErrClosed is returned by every method called after Close.
var ErrClosed = errors.New("storage: closed")

// Op is one write of a batch: a Set of Value at Key (expiring after TTL when
// TTL > 0), or, when Delete is true, a Delete of Key (Value and TTL are then
// ignored). Key must not be empty.
type Op struct {
	Key    []byte
	Value  []byte
	TTL    time.Duration
	Delete bool
}

// Store is an ordered key-value store. The engine serializes writers per
// key itself, so a Store needs no conflict detection; it must make every
// Apply atomic and, once Apply returns nil, durable to the degree its
// options promise (for Badger: fsynced when SyncWrites is on). Stores may
// group concurrent Apply calls into one commit.
//
// Implementations are safe for concurrent use. Byte slices passed in are
// not retained after the call returns; slices handed to callbacks are valid
// only during the callback. Every method returns ErrClosed after Close.
type Store interface {
	// Get appends the value stored at key to dst[:0] and returns it, or
	// returns ErrNotFound. The returned slice belongs to the caller and
	// never aliases the store's memory.
	Get(ctx context.Context, key, dst []byte) ([]byte, error)
	// Apply writes all ops atomically: after a crash either all or none
	// are visible. If ctx is done before the batch is handed to the
	// store's writer, Apply returns ctx's error and writes nothing.
	Apply(ctx context.Context, ops []Op) error
	// Scan calls fn for every live key starting with prefix, in key order,
	// and stops at the first error fn returns (which Scan returns). key and
	// value are valid only during the call to fn.
	Scan(ctx context.Context, prefix []byte, fn func(key, value []byte) error) error
	// Backup writes a full, consistent snapshot of the store to w.
	Backup(ctx context.Context, w io.Writer) error
	// Restore replaces the whole contents of the store with a snapshot
	// written by Backup: afterwards the store holds exactly the snapshot's
	// keys. No other call may run concurrently.
	Restore(ctx context.Context, r io.Reader) error
	// Close flushes and releases the store, after waiting for calls in
	// flight; it is safe to call twice.
	Close() error
}

// Sizer is implemented by stores that can report their size on disk: lsm
// for the index (Badger's SST files) and vlog for the value log. In-memory
// stores report zeros. It is optional; callers type-assert a Store to it.
type Sizer interface {
	Size() (lsm, vlog int64)
}
