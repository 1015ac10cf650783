// Package storage defines the small key-value interface tailor keeps its
// profiles in, a Badger implementation, and a conformance suite
// (storage/storagetest) that every implementation must pass.
package storage

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is returned by Get when the key does not exist.
var ErrNotFound = errors.New("storage: key not found")

// ErrClosed is returned by every method called after Close.
var ErrClosed = errors.New("storage: closed")

// Op is one write of a batch: a Set of Value at Key (expiring after TTL when
// TTL > 0), or a Delete of Key.
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
// only during the callback.
type Store interface {
	// Get appends the value stored at key to dst[:0] and returns it, or
	// returns ErrNotFound.
	Get(ctx context.Context, key, dst []byte) ([]byte, error)
	// Apply writes all ops atomically: after a crash either all or none
	// are visible.
	Apply(ctx context.Context, ops []Op) error
	// Scan calls fn for every live key starting with prefix, in key order,
	// and stops at the first error fn returns (which Scan returns).
	Scan(ctx context.Context, prefix []byte, fn func(key, value []byte) error) error
	// Backup writes a full, consistent snapshot of the store to w.
	Backup(ctx context.Context, w io.Writer) error
	// Restore loads a snapshot written by Backup into the store, replacing
	// any value at the same keys. No writes may run concurrently.
	Restore(ctx context.Context, r io.Reader) error
	// Close flushes and releases the store; it is safe to call twice.
	Close() error
}
