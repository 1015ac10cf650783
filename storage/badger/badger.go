package badger

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"go.opentelemetry.io/otel/metric"

	"github.com/tailorhq/tailor/storage"
	"github.com/tailorhq/tailor/storage/internal/gate"
)

// Defaults of Options, chosen for tailor's workload: about a million
// profiles of 0.5–2 KB each, read and rewritten whole. Badger's own
// defaults spend their memory on 5 memtables of 64 MiB, a 256 MiB block
// cache and four compactors' table builders; these keep the store's
// anonymous memory near 130 MB with a million profiles, a quarter of it
// the version filter (see the package documentation, # Memory).
const (
	// DefaultValueThreshold keeps profiles (≥ 0.5 KB) in the value log and
	// only keys with value pointers in the LSM tree, which stays small
	// (33 MB for a million keys) and cheap to compact. Measured here with
	// a million profiles against values inline (ValueThreshold 1 MiB): the
	// load ran 2–4× and 200,000 read-and-rewrite updates 1.3–2.8× faster,
	// anonymous memory was 40 MB instead of 610 MB, and grouped Write
	// without fsync sustained about twice the rate (BenchmarkWrite). The
	// price is value-log garbage, reclaimed by the background GC, and one
	// more fsync per commit with SyncWrites (value log and memtable WAL).
	DefaultValueThreshold = 256
	// DefaultMemTableSize bounds each memtable (Badger: 64 MiB). With
	// values in the value log a memtable entry is ~100 bytes, so 16 MiB
	// still holds ~150,000 writes; it also bounds a single transaction to
	// 15% of it (2.4 MiB), far above any group commit.
	DefaultMemTableSize = 16 << 20
	// DefaultNumMemtables is the number of memtables kept in memory
	// (Badger: 5): one being written, one being flushed.
	DefaultNumMemtables = 2
	// DefaultBlockCacheSize is the LSM block cache (Badger: 256 MiB):
	// none. The store writes its tables uncompressed and unencrypted, so
	// Badger reads their blocks straight from the memory-mapped files,
	// and a cache would only add its own bookkeeping (Badger's docs
	// recommend one for compressed or encrypted tables): measured on a
	// million profiles, the 64 MiB cache the store used to set cost ~20
	// allocations per Identify in its admission policy alone.
	DefaultBlockCacheSize = 0
	// DefaultNumCompactors is the number of compaction goroutines (Badger:
	// 4), each with its table builder buffers; 2 is Badger's minimum.
	DefaultNumCompactors = 2
	// DefaultValueLogFileSize is the size of one value-log file (Badger:
	// 1 GiB). GC rewrites a whole file at a time, so smaller files are
	// reclaimed sooner and with less work.
	DefaultValueLogFileSize = 128 << 20
	// DefaultNumLevelZeroTables compacts every flushed memtable into the
	// tree at once (Badger: 5). Value-log GC only sees a value as garbage
	// once a compaction has dropped its version (see # Space on disk in
	// the package documentation): with five level-0 tables of about
	// 150,000 writes each, that took longer than the writes needed to
	// double the value log of a million profiles, and GC under load
	// rewrote nothing.
	DefaultNumLevelZeroTables = 1

	// maxInMemoryValueThreshold is Badger's largest ValueThreshold (1 MiB).
	// In memory every value must fit under the threshold, so the store
	// uses the largest one the memtable size allows.
	maxInMemoryValueThreshold = 1 << 20
	// maxKeySize is Badger's limit on key length.
	maxKeySize = 65000
	// restoreMaxPending is the number of pending write batches Load keeps.
	restoreMaxPending = 256
)

// Options configures OpenBadger. The zero value of every field but Dir
// selects the documented default; the zero value as a whole is invalid only
// because a store needs Dir or InMemory.
type Options struct {
	// Dir is the directory of the database, created if missing. Required
	// unless InMemory.
	Dir string
	// InMemory keeps everything in memory; Dir must then be empty. Nothing
	// survives Close, ValueThreshold is ignored (values live in the LSM
	// tree, each at most 1 MiB or 15% of MemTableSize, whichever is less)
	// and no value-log GC runs.
	InMemory bool
	// SyncWrites fsyncs every commit before Write returns. Group commit
	// makes one fsync cover all the Write calls waiting at that moment.
	SyncWrites bool
	// Logger receives Badger's log: errors and warnings at their level,
	// Badger's chatty INFO at slog.LevelDebug and its DEBUG at
	// LevelBadgerDebug. Nil discards Badger's log.
	Logger *slog.Logger

	// ValueThreshold is the size from which a value is stored in the value
	// log instead of inline in the LSM tree (whose tables the store does
	// not compress). Zero selects DefaultValueThreshold; at most 1 MiB and
	// 15% of MemTableSize.
	ValueThreshold int64
	// MemTableSize is the size of one memtable in bytes. Zero selects
	// DefaultMemTableSize; at least 1 MiB.
	MemTableSize int64
	// NumMemtables is the number of memtables kept in memory before writes
	// stall. Zero selects DefaultNumMemtables.
	NumMemtables int
	// BlockCacheSize is the LSM block cache in bytes; zero (the default,
	// DefaultBlockCacheSize) means none.
	BlockCacheSize int64
	// IndexCacheSize bounds the memory for SST indexes and bloom filters.
	// Zero keeps them all in memory (Badger's default, a few MB for a
	// million keys with values in the value log).
	IndexCacheSize int64
	// NumCompactors is the number of compaction goroutines. Zero selects
	// DefaultNumCompactors; at least 2.
	NumCompactors int
	// ValueLogFileSize is the size of one value-log file. Zero selects
	// DefaultValueLogFileSize; between 1 MiB and 2 GiB.
	ValueLogFileSize int64
	// NumLevelZeroTables is how many level-0 tables (flushed memtables)
	// Badger lets accumulate before it compacts them into the tree. Zero
	// selects DefaultNumLevelZeroTables; at least 1.
	NumLevelZeroTables int

	// Value-log garbage collection (gc.go; the package documentation,
	// # Space on disk, says how it works).
	//
	// GCInterval is how often the background GC wakes when no write step
	// wakes it. Zero selects DefaultGCInterval; negative disables
	// background GC.
	GCInterval time.Duration
	// GCDiscardRatio is the garbage fraction from which GC rewrites a
	// value-log file under load. Zero selects DefaultGCDiscardRatio; must
	// be in (0, 1).
	GCDiscardRatio float64
	// GCWriteStep is how many bytes written to the value log wake the GC
	// for a round. Zero selects a quarter of ValueLogFileSize (at least
	// 1 MiB); negative leaves rounds to the GCInterval ticker (and any
	// write then puts off the idle pass).
	GCWriteStep int64
	// GCIdleAfter is how long the writes must stay below one GCWriteStep
	// before the store runs its idle pass: flush the memtables, compact
	// the LSM tree into one level, then rewrite every value-log file with
	// at least GCIdleDiscardRatio garbage. Zero selects
	// DefaultGCIdleAfter; negative disables the idle pass.
	GCIdleAfter time.Duration
	// GCIdleDiscardRatio is the garbage fraction from which the idle pass
	// rewrites a file. Zero selects DefaultGCIdleDiscardRatio; must be in
	// (0, 1).
	GCIdleDiscardRatio float64

	// VersionFilterSize is the memory, in bytes, of the filter that lets
	// most conditional writes skip the LSM lookup checking their
	// condition (see filter.go). Zero selects DefaultVersionFilterSize;
	// negative turns the filter off. Untouched parts of it take no
	// physical memory.
	VersionFilterSize int64

	// ClaimAfter is how long a queue message handed out by Next may stay
	// unacknowledged before Next hands it out again, taking its consumer
	// to have died. Zero selects DefaultClaimAfter.
	ClaimAfter time.Duration

	// DisableGroupCommit commits every Write in its own transaction (one
	// fsync each with SyncWrites). For comparison benchmarks.
	DisableGroupCommit bool

	// MeterProvider receives the store's own metrics: group-commit batch
	// sizes, value-log GC rounds, files rewritten and bytes reclaimed, and
	// the live data estimated after every GC round (tailor.store.*, see
	// the README). Nil means none, at no cost; the global provider of
	// package otel is never used. engine.Open passes its own
	// Options.MeterProvider to the default store.
	MeterProvider metric.MeterProvider

	// tune, set by tests only, adjusts Badger's options last.
	tune func(*badger.Options)
}

// withDefaults returns a copy of o with defaults filled in, or an error
// naming the field at fault.
func (o Options) withDefaults() (Options, error) {
	switch {
	case o.InMemory && o.Dir != "":
		return o, errors.New("badger: Options.Dir must be empty when InMemory is set")
	case !o.InMemory && o.Dir == "":
		return o, errors.New("badger: Options.Dir is empty (set Dir, or InMemory)")
	}
	if o.ValueThreshold == 0 {
		o.ValueThreshold = DefaultValueThreshold
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = DefaultMemTableSize
	}
	if o.NumMemtables == 0 {
		o.NumMemtables = DefaultNumMemtables
	}
	if o.NumCompactors == 0 {
		o.NumCompactors = DefaultNumCompactors
	}
	if o.ValueLogFileSize == 0 {
		o.ValueLogFileSize = DefaultValueLogFileSize
	}
	if o.NumLevelZeroTables == 0 {
		o.NumLevelZeroTables = DefaultNumLevelZeroTables
	}
	if o.GCInterval == 0 {
		o.GCInterval = DefaultGCInterval
	}
	if o.GCDiscardRatio == 0 {
		o.GCDiscardRatio = DefaultGCDiscardRatio
	}
	if o.GCWriteStep == 0 {
		o.GCWriteStep = defaultGCWriteStep(o.ValueLogFileSize)
	}
	if o.GCIdleAfter == 0 {
		o.GCIdleAfter = DefaultGCIdleAfter
	}
	if o.GCIdleDiscardRatio == 0 {
		o.GCIdleDiscardRatio = DefaultGCIdleDiscardRatio
	}
	if o.ClaimAfter == 0 {
		o.ClaimAfter = DefaultClaimAfter
	}
	if o.VersionFilterSize == 0 {
		o.VersionFilterSize = DefaultVersionFilterSize
	}
	switch {
	case o.ValueThreshold < 0 || o.ValueThreshold > maxInMemoryValueThreshold:
		return o, fmt.Errorf("badger: Options.ValueThreshold %d out of range [1, %d]", o.ValueThreshold, maxInMemoryValueThreshold)
	case o.MemTableSize < 1<<20:
		return o, fmt.Errorf("badger: Options.MemTableSize %d below 1 MiB", o.MemTableSize)
	case !o.InMemory && o.ValueThreshold > maxBatchSize(o.MemTableSize):
		return o, fmt.Errorf("badger: Options.ValueThreshold %d above 15%% of MemTableSize (%d)", o.ValueThreshold, o.MemTableSize)
	case o.NumMemtables < 1:
		return o, fmt.Errorf("badger: Options.NumMemtables %d below 1", o.NumMemtables)
	case o.BlockCacheSize < 0:
		return o, fmt.Errorf("badger: Options.BlockCacheSize %d is negative", o.BlockCacheSize)
	case o.IndexCacheSize < 0:
		return o, fmt.Errorf("badger: Options.IndexCacheSize %d is negative", o.IndexCacheSize)
	case o.NumCompactors < 2:
		return o, fmt.Errorf("badger: Options.NumCompactors %d below 2", o.NumCompactors)
	case o.ValueLogFileSize < 1<<20 || o.ValueLogFileSize >= 2<<30:
		return o, fmt.Errorf("badger: Options.ValueLogFileSize %d out of range [1 MiB, 2 GiB)", o.ValueLogFileSize)
	case o.NumLevelZeroTables < 1:
		return o, fmt.Errorf("badger: Options.NumLevelZeroTables %d below 1", o.NumLevelZeroTables)
	case o.GCDiscardRatio <= 0 || o.GCDiscardRatio >= 1:
		return o, fmt.Errorf("badger: Options.GCDiscardRatio %v out of range (0, 1)", o.GCDiscardRatio)
	case o.GCIdleDiscardRatio <= 0 || o.GCIdleDiscardRatio >= 1:
		return o, fmt.Errorf("badger: Options.GCIdleDiscardRatio %v out of range (0, 1)", o.GCIdleDiscardRatio)
	case o.ClaimAfter < 0:
		return o, fmt.Errorf("badger: Options.ClaimAfter %v is negative", o.ClaimAfter)
	}
	return o, nil
}

// badgerOptions translates o (with defaults filled in) to Badger's options.
func (o Options) badgerOptions() badger.Options {
	bo := badger.DefaultOptions(o.Dir).
		WithInMemory(o.InMemory).
		WithSyncWrites(o.SyncWrites).
		WithLogger(nil).
		WithValueThreshold(o.ValueThreshold).
		WithMemTableSize(o.MemTableSize).
		WithNumMemtables(o.NumMemtables).
		WithBlockCacheSize(o.BlockCacheSize).
		WithIndexCacheSize(o.IndexCacheSize).
		WithNumCompactors(o.NumCompactors).
		WithValueLogFileSize(o.ValueLogFileSize).
		WithNumLevelZeroTables(o.NumLevelZeroTables).
		WithNumLevelZeroTablesStall(max(o.NumLevelZeroTables+10, 15)).
		// The engine serializes writers per key and group commit merges
		// many callers' writes into one transaction: Badger's conflict
		// detection would only cost time.
		WithDetectConflicts(false).
		// Metrics register process-wide expvars; tailor reports its own.
		WithMetricsEnabled(false).
		// Value pointers and short keys compress poorly; skip the CPU.
		WithCompression(options.None)
	if o.InMemory {
		bo = bo.WithValueThreshold(min(maxInMemoryValueThreshold, maxBatchSize(o.MemTableSize)))
	}
	if o.Logger != nil {
		bo = bo.WithLogger(badgerLogger{o.Logger})
	}
	if o.tune != nil {
		o.tune(&bo)
	}
	return bo
}

// maxBatchSize is the largest transaction Badger accepts with memtables of
// the given size.
func maxBatchSize(memTableSize int64) int64 { return memTableSize * 15 / 100 }

// Store is a [storage.Store] backed by Badger (github.com/dgraph-io/badger/v4).
// It is safe for concurrent use. Open it with Open and Close it when done.
type Store struct {
	db   *badger.DB
	opts Options

	// gate admits calls until Close, which waits for them, so no call
	// ever reaches a closed database or client.
	gate gate.Gate

	commits chan *commitReq // to the committer; nil without group commit
	// commitMu serializes commits (the committer's, or those of callers
	// without group commit): conditions are checked by the store, so one
	// writer at a time. The GC's idle pass holds it to flush (gc.go).
	commitMu sync.Mutex
	stop     chan struct{}  // closed by Close to stop the goroutines
	done     sync.WaitGroup // the committer and the GC loop

	queuesMu sync.Mutex
	queues   map[string]*queue

	// The store runs Badger in managed mode: it chooses the commit
	// timestamps itself (clock.go), so a write's version is known
	// without reading it back.
	clock clock
	// filter spares most conditional writes a lookup (filter.go); nil
	// when Options.VersionFilterSize is negative. The seeder fills it
	// after Open (seed.go), handing its batches to the committer on
	// seeds (nil without group commit).
	filter  *versionFilter
	seeds   chan *seedBatch
	seeding seeding

	closeOnce sync.Once
	closeErr  error

	gcRounds atomic.Int64 // GC wake-ups of gcLoop, for tests
	gcIdles  atomic.Int64 // idle passes run, for tests
	// gcCount counts value-log bytes and wakes the GC (gc.go); nil
	// without background GC. gcMu keeps GC and Restore apart.
	gcCount *gcCounter
	gcMu    sync.Mutex

	tel *telemetry // metrics (telemetry.go); nil without Options.MeterProvider
}

var (
	_ storage.Store = (*Store)(nil)
	_ storage.Sizer = (*Store)(nil)
)

// Open opens (creating if needed) a Badger store as opts describe. opts is
// copied; the caller may reuse it.
func Open(opts Options) (*Store, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if !o.InMemory {
		if err := removeEmptyLogs(o.Dir, o.Logger); err != nil {
			return nil, err
		}
	}
	db, err := badger.OpenManaged(o.badgerOptions())
	if err != nil {
		if o.InMemory {
			return nil, fmt.Errorf("badger: open in memory: %w", err)
		}
		return nil, fmt.Errorf("badger: open in %s: %w", o.Dir, err)
	}
	s := &Store{db: db, opts: o, stop: make(chan struct{}), queues: make(map[string]*queue), tel: newTelemetry(&o)}
	s.clock.init(db)
	s.filter = newVersionFilter(o.VersionFilterSize)
	if !o.DisableGroupCommit {
		s.commits = make(chan *commitReq)
	}
	s.startSeeding() // before the committer reads s.seeds
	if s.commits != nil {
		s.done.Add(1)
		go s.committer()
	}
	if !o.InMemory && o.GCInterval > 0 {
		s.gcCount = newGCCounter(o.GCWriteStep)
		s.done.Add(1)
		go s.gcLoop()
	}
	return s, nil
}

// removeEmptyLogs deletes the zero-length memtable (.mem) and value-log
// (.vlog) files in dir. Badger creates such a file, then sizes and maps
// it; a crash in between leaves it empty, and Badger 4.9.6 then refuses to
// open the directory ("while opening memtables err: while opening fid: N
// err: Create a new file", Badger issue 2207; the same for a value-log
// file). An empty file holds no entry, not even its header, so removing
// it loses nothing and Badger creates it anew.
func removeEmptyLogs(dir string, log *slog.Logger) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // a new store
	}
	if err != nil {
		return fmt.Errorf("badger: open badger in %s: %w", dir, err)
	}
	for _, e := range entries {
		if ext := filepath.Ext(e.Name()); e.IsDir() || (ext != ".mem" && ext != ".vlog") {
			continue
		}
		info, err := e.Info()
		if err != nil || info.Size() != 0 {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("badger: open badger in %s: remove empty %s left by a crash: %w", dir, e.Name(), err)
		}
		if log != nil {
			log.Warn("badger: removed an empty file left by a crash", "file", path)
		}
	}
	return nil
}

// Get appends the value at key to dst[:0] and returns it with its version
// (Badger's commit timestamp of the write), or ErrNotFound. The result is
// a copy owned by the caller.
func (s *Store) Get(ctx context.Context, key, dst []byte) ([]byte, storage.Version, error) {
	if !s.gate.Enter() {
		return nil, 0, storage.ErrClosed
	}
	defer s.gate.Leave()
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	readTs := s.filter.readTs(key) // the key's latest version, most often
	if readTs == 0 {
		readTs = s.clock.now()
	}
	txn := s.db.NewTransactionAt(readTs, false)
	defer txn.Discard()
	item, err := txn.Get(key)
	if err != nil {
		if errors.Is(err, badger.ErrKeyNotFound) || errors.Is(err, badger.ErrEmptyKey) {
			return nil, 0, storage.ErrNotFound
		}
		return nil, 0, fmt.Errorf("badger: get: %w", err)
	}
	dst, err = item.ValueCopy(dst[:0])
	if err != nil {
		return nil, 0, fmt.Errorf("badger: get value: %w", err)
	}
	return dst, storage.Version(item.Version()), nil
}

// Write applies op and returns the key's new version. With group commit
// (the default) it waits for the committer, which puts the op in one
// transaction with the ops of concurrent callers and checks its condition
// there; ctx is honoured until the committer takes the op, not after. The
// op's slices are not retained after Write returns.
func (s *Store) Write(ctx context.Context, op storage.Op) (storage.Version, error) {
	if !s.gate.Enter() {
		return 0, storage.ErrClosed
	}
	defer s.gate.Leave()
	if err := checkOp(&op); err != nil {
		return 0, err
	}
	return s.write(ctx, &op)
}

// write is Write for a caller that registered with enter and checked op.
func (s *Store) write(ctx context.Context, op *storage.Op) (storage.Version, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	r := commitReqPool.Get().(*commitReq)
	defer func() {
		*r = commitReq{done: r.done}
		commitReqPool.Put(r)
	}()
	r.op = *op
	if s.commits == nil {
		s.commitMu.Lock()
		s.commitGroup([]*commitReq{r})
		s.commitMu.Unlock()
	} else {
		select {
		case s.commits <- r:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	<-r.done
	return r.version, r.err
}

// checkOp rejects what the contract or Badger would reject, naming the
// field at fault, so that one caller's bad op never reaches a shared
// transaction.
func checkOp(op *storage.Op) error {
	if err := storage.CheckOp(op, maxKeySize); err != nil {
		return err
	}
	if p, ok := reservedPrefix(op.Key, reservedPrefixes); ok {
		return fmt.Errorf("badger: Op.Key prefix %q is reserved", p)
	}
	return nil
}

// reservedPrefixes are key prefixes Write refuses: Badger's own keys, and
// the store's own keys (internalPrefixes).
var reservedPrefixes = append([]string{"!badger!"}, internalPrefixes...)

// internalPrefixes are the prefixes of the keys the store writes for
// itself, which Scan skips: its queues (queue.go) and the GC's flush
// sentinel (gc.go).
var internalPrefixes = []string{queuePrefix, flushPrefix}

// reservedPrefix returns the prefix of prefixes that key starts with.
func reservedPrefix(key []byte, prefixes []string) (string, bool) {
	for _, p := range prefixes {
		if len(key) >= len(p) && string(key[:len(p)]) == p { // no copy of key
			return p, true
		}
	}
	return "", false
}

// Scan calls fn for every live key with the given prefix, in key order,
// with its value and version. key and value point into Badger's memory and
// are valid only during the call to fn: values are not prefetched, so
// nothing is copied. Scan reads one consistent snapshot, and never reports
// the keys of the store's queues; fn may call other methods of the store,
// except Close (which would wait for the Scan).
func (s *Store) Scan(ctx context.Context, prefix []byte, fn func(key, value []byte, v storage.Version) error) error {
	return s.scan(ctx, prefix, true, fn)
}

// scan is Scan; with skipReserved false it also reports reserved keys.
func (s *Store) scan(ctx context.Context, prefix []byte, skipReserved bool, fn func(key, value []byte, v storage.Version) error) error {
	if !s.gate.Enter() {
		return storage.ErrClosed
	}
	defer s.gate.Leave()
	if err := ctx.Err(); err != nil {
		return err
	}
	readTs, release := s.clock.snapshot()
	defer release()
	txn := s.db.NewTransactionAt(readTs, false)
	defer txn.Discard()
	// No prefetch: it copies every value into a fresh buffer, and the
	// callback contract lets us hand out Badger's slice instead
	// (BenchmarkScan with PrefetchSize 16: twice the allocations, no
	// faster).
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	n := 0
	for it.Seek(prefix); it.Valid(); it.Next() {
		if n++; n%64 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		item := it.Item()
		key := item.Key()
		if skipReserved {
			if _, internal := reservedPrefix(key, internalPrefixes); internal {
				continue
			}
		}
		var fnErr error
		err := item.Value(func(v []byte) error {
			fnErr = fn(key, v, storage.Version(item.Version()))
			return fnErr
		})
		if fnErr != nil {
			return fnErr
		}
		if err != nil {
			return fmt.Errorf("badger: scan %q: %w", key, err)
		}
	}
	return nil
}

// Backup writes a full snapshot of the store to w in Badger's backup
// format (DB.Backup). It stops with ctx's error when ctx is done.
func (s *Store) Backup(ctx context.Context, w io.Writer) error {
	if !s.gate.Enter() {
		return storage.ErrClosed
	}
	defer s.gate.Leave()
	if err := ctx.Err(); err != nil {
		return err
	}
	readTs, release := s.clock.snapshot()
	defer release()
	stream := s.db.NewStreamAt(readTs)
	stream.LogPrefix = "tailor backup"
	if _, err := stream.Backup(ctxWriter{ctx, w}, 0); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		return fmt.Errorf("badger: backup: %w", err)
	}
	return nil
}

// Restore replaces the contents of the store with a snapshot written by
// Backup: it drops every key (DB.DropAll), then loads the snapshot
// (DB.Load), which keeps the snapshot's versions and moves the store's
// clock past them, so later writes win. No other call may run
// concurrently. It stops with ctx's error when ctx is done, leaving the
// store holding part of the snapshot.
func (s *Store) Restore(ctx context.Context, r io.Reader) error {
	if !s.gate.Enter() {
		return storage.ErrClosed
	}
	defer s.gate.Leave()
	if err := ctx.Err(); err != nil {
		return err
	}
	// Load keeps the snapshot's versions, so a key written more recently
	// here would win over the snapshot: start from an empty store.
	s.gcMu.Lock() // no GC step while the contents are replaced
	defer s.gcMu.Unlock()
	s.stopSeeding() // its snapshot is of the contents about to go
	if err := s.db.DropAll(); err != nil {
		return fmt.Errorf("badger: restore: clear the store: %w", err)
	}
	err := s.db.Load(ctxReader{ctx, r}, restoreMaxPending)
	s.clock.advanceTo(s.db.MaxVersion()) // later writes win over the snapshot's
	s.filter.reset()
	s.queuesMu.Lock()
	for _, q := range s.queues {
		q.reset() // their messages are the snapshot's now
	}
	s.queuesMu.Unlock()
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		return fmt.Errorf("badger: restore: %w", err)
	}
	return nil
}

// Size reports the disk space (allocated blocks, on Unix) of the LSM tree
// (SST files) and of the value log; zeros in memory. It walks the
// directory, so it is current but not free: call it for reports, not per
// request. (Badger's own DB.Size is refreshed only once a minute.)
func (s *Store) Size() (lsm, vlog int64) {
	if s.opts.InMemory {
		return 0, 0
	}
	_ = filepath.WalkDir(s.opts.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		switch filepath.Ext(path) {
		case ".sst":
			lsm += diskUsage(info)
		case ".vlog":
			vlog += diskUsage(info)
		}
		return nil
	})
	return lsm, vlog
}

// Close waits for the calls in flight (every Write already acknowledged or
// waiting is committed), stops the committer and the value-log GC, and
// closes Badger, which flushes its memtable. Calls after Close return
// ErrClosed; a second Close returns nil.
func (s *Store) Close() error {
	first := false
	s.closeOnce.Do(func() {
		first = true
		s.gate.Close()
		s.tel.close()
		close(s.stop)
		<-s.seeding.done
		s.done.Wait()
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("badger: close badger: %w", err)
		}
	})
	if !first {
		return nil
	}
	return s.closeErr
}

// gcRound rewrites value-log files until Badger finds none with at least
// ratio garbage, or Close is called, and returns how many it rewrote.
func (s *Store) gcRound(ratio float64) int {
	n := 0
	for {
		select {
		case <-s.stop:
			return n
		default:
		}
		err := s.db.RunValueLogGC(ratio)
		if err != nil {
			if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) && s.opts.Logger != nil {
				s.opts.Logger.Warn("badger: value-log GC failed", "err", err)
			}
			return n
		}
		n++
	}
}

// ctxWriter fails writes once ctx is done, to stop a Backup.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// ctxReader fails reads once ctx is done, to stop a Restore.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Options returns the options the store was opened with, defaults filled
// in.
func (s *Store) Options() Options { return s.opts }
