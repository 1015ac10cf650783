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

// ErrConflict is returned by Write when the op's condition does not hold:
// the key is not at the version the op expects (or exists when the op
// expects it absent). Nothing was written. Read the key again, recompute,
// and retry.
var ErrConflict = errors.New("storage: conflict")

// ErrUnsupported is wrapped by the errors of methods a store does not
// implement (Redis: Backup and Restore); the message says what to use
// instead.
var ErrUnsupported = errors.New("storage: not supported by this store")

// Version identifies one written state of a key. A store gives every write
// of a key a version that key has never had before, so a reader that saw
// version v can tell, by writing on condition of v, whether anything was
// written since — even if the key was deleted and written again in
// between. Versions are not comparable across keys, and nothing but
// equality is promised; zero is never a version.
type Version uint64

// Op is one write: a Set of Value at Key (expiring after TTL when TTL > 0;
// TTL 0 removes an earlier expiry), or, when Delete is true, a Delete of
// Key (Value and TTL are then ignored; deleting a missing key is not an
// error). Key must not be empty.
//
// IfVersion and IfAbsent make the write conditional: with IfVersion set
// (non-zero) it applies only if Key currently holds that version, with
// IfAbsent only if Key does not exist; otherwise Write returns ErrConflict
// and writes nothing. Setting both is invalid. Without either the write is
// unconditional.
type Op struct {
	Key       []byte
	Value     []byte
	TTL       time.Duration
	Delete    bool
	IfVersion Version
	IfAbsent  bool
}

// Store is the key → value store tailor keeps its profiles in: every key
// holds one value at one version, and every write is atomic on its key and
// may be conditional on the key's version (optimistic concurrency). There
// is no transaction over several keys, so that the contract can be kept by
// a store that shards keys over machines (Redis Cluster); the engine
// builds its multi-key operations from single-key conditional steps.
//
// Implementations are safe for concurrent use, also by several processes
// where the store is shared (conditions are checked by the store, not by
// the caller). Byte slices passed in are not retained after the call
// returns; slices handed to callbacks are valid only during the callback.
// Every method returns ErrClosed after Close.
type Store interface {
	// Get appends the value stored at key to dst[:0] and returns it with
	// its version, or returns ErrNotFound. The returned slice belongs to
	// the caller and never aliases the store's memory.
	Get(ctx context.Context, key, dst []byte) ([]byte, Version, error)
	// Write applies op atomically and returns the key's new version (zero
	// after a Delete), or ErrConflict when op's condition does not hold.
	// Once Write returns nil the write is durable to the degree the
	// store's options promise. If ctx is done before the op is handed to
	// the store, Write returns ctx's error and writes nothing; a Write
	// interrupted after that may or may not have been applied (read the
	// key to tell).
	Write(ctx context.Context, op Op) (Version, error)
	// Scan calls fn for every live key starting with prefix, with its
	// value and version, and stops at the first error fn returns (which
	// Scan returns). The order is the store's (Badger: key order; Redis:
	// unspecified) and each key is visited once. Scan is not a snapshot
	// unless the store says so: a key written during the scan may be
	// seen with either value. key and value are valid only during the
	// call to fn.
	Scan(ctx context.Context, prefix []byte, fn func(key, value []byte, v Version) error) error
	// Queue returns the store's durable queue of that name (see Queue),
	// shared by every process that opens the same store. Names are
	// non-empty, at most 64 bytes of [a-z0-9-].
	Queue(name string) (Queue, error)
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

// Cached is implemented by stores whose Get may be answered from a
// client-side cache that learns of writes by other processes (other
// instances of the store) a short time after they happen — never later
// than its own writes: a Get that starts after this instance's Write
// returned, or after its conditional Write failed with ErrConflict, sees
// that newer version. Latest reads what is stored when the store answers,
// bypassing the cache. A caller that decides, from a value it read, to
// write another key (whose condition cannot protect the decision) reads
// with Latest; Redis implements it. Stores without a cache need not.
type Cached interface {
	Latest(ctx context.Context, key, dst []byte) ([]byte, Version, error)
}

// Latest reads key from s without any cache: s.Latest when s is Cached,
// else s.Get.
func Latest(ctx context.Context, s Store, key, dst []byte) ([]byte, Version, error) {
	if c, ok := s.(Cached); ok {
		return c.Latest(ctx, key, dst)
	}
	return s.Get(ctx, key, dst)
}

// Sizer is implemented by stores that can report their size on disk: lsm
// for the index (Badger's SST files) and vlog for the value log. In-memory
// stores report zeros. It is optional; callers type-assert a Store to it.
type Sizer interface {
	Size() (lsm, vlog int64)
}
