package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tailorhq/tailor/storage"
)

// Disk-full protection. Badger writes its value log, memtable WAL and
// tables through memory-mapped files that it grows sparsely; when the
// filesystem is full, the write to a fresh page does not fail with ENOSPC:
// the kernel kills the process with SIGBUS. (Reproduced on a full tmpfs:
// "fatal error: fault [signal SIGBUS]" in valueLog.write.) So the engine
// must refuse writes before the disk is full. The default store is
// wrapped in a guard that checks the free space of its directory's
// filesystem and fails Write with ErrDiskFull, writing nothing, when it
// drops below Options.MinFreeBytes. Reads keep working; writes resume by
// themselves once space is freed.

// DefaultMinFreeBytes is the free space below which the default store
// refuses writes: room for a memtable flush (16 MiB), a compaction's
// output and the value-log growth between two checks.
const DefaultMinFreeBytes = 64 << 20

// ErrDiskFull is returned by writes when the store's filesystem has less
// free space than Options.MinFreeBytes. Nothing was written; reads still
// work.
var ErrDiskFull = errors.New("tailor: disk full")

// diskCheckInterval bounds how stale the guard's view of free space is.
const diskCheckInterval = 50 * time.Millisecond

// diskGuard is a Store that refuses Write while the filesystem holding dir
// is below min free bytes. It is safe for concurrent use.
type diskGuard struct {
	storage.Store
	dir    string
	min    uint64
	now    func() time.Time             // clock for the check interval
	statfs func(string) (uint64, error) // free bytes of dir's filesystem

	mu      sync.Mutex
	checked time.Time
	free    uint64
	written uint64 // bytes applied since the last check
	err     error  // statfs failure of the last check
}

func newDiskGuard(s storage.Store, dir string, min int64) *diskGuard {
	return &diskGuard{Store: s, dir: dir, min: uint64(min), now: time.Now, statfs: freeBytes}
}

// Size reports the inner store's size when it has one.
func (g *diskGuard) Size() (lsm, vlog int64) {
	if s, ok := g.Store.(storage.Sizer); ok {
		return s.Size()
	}
	return 0, 0
}

// Write writes op unless free space is below the minimum.
func (g *diskGuard) Write(ctx context.Context, op storage.Op) (storage.Version, error) {
	if err := g.check(uint64(len(op.Key) + len(op.Value))); err != nil {
		return 0, err
	}
	return g.Store.Write(ctx, op)
}

// check refreshes the free-space figure when it is older than the check
// interval or when the bytes written since could have eaten a quarter of
// the margin, and reports whether n more bytes may be written.
func (g *diskGuard) check(n uint64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if now.Sub(g.checked) >= diskCheckInterval || g.written+n >= g.min/4 {
		g.free, g.err = g.statfs(g.dir)
		g.checked, g.written = now, 0
	}
	if g.err != nil {
		// Cannot tell: let the store try; it reports its own errors.
		g.written += n
		return nil
	}
	if g.free < g.min+g.written+n {
		return fmt.Errorf("%w: %d bytes free in %s, writes need at least %d (Options.MinFreeBytes)",
			ErrDiskFull, g.free, g.dir, g.min)
	}
	g.written += n
	return nil
}
