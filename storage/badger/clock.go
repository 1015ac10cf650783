package badger

import (
	"math"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
)

// clock hands out the commit timestamps of a Badger opened in managed
// mode, and tells Badger which old versions it may drop.
//
// Commits are serialized (the committer, or commitMu), and each takes the
// next timestamp, so a write's version is its transaction's timestamp —
// known before the commit, where Badger's own clock would have to be
// read back. Reads see everything committed: they read at the last
// committed timestamp.
//
// Badger drops an overwritten version in a compaction only when it is at
// or below the discard timestamp, which in managed mode the store sets:
// after every commit, to the last commit — unless a Scan or Backup reads
// an older snapshot, which must keep its versions until it is done.
type clock struct {
	db *badger.DB

	last atomic.Uint64 // last committed timestamp; written under mu

	mu        sync.Mutex
	snapshots map[uint64]int // read timestamps of Scans and Backups in flight
}

func (c *clock) init(db *badger.DB) {
	c.db = db
	c.last.Store(db.MaxVersion())
	c.snapshots = make(map[uint64]int)
	db.SetDiscardTs(c.last.Load())
}

// now returns the timestamp reads are made at: the last commit.
func (c *clock) now() uint64 { return c.last.Load() }

// next returns the timestamp of the next commit.
func (c *clock) next() uint64 { return c.last.Load() + 1 }

// committed records that the commit at ts is done (applied, or failed:
// either way ts is used up) and lets Badger drop what it overwrote.
func (c *clock) committed(ts uint64) {
	c.advanceTo(ts)
}

// advanceTo moves the clock past ts (after a Restore loaded versions up
// to ts).
func (c *clock) advanceTo(ts uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last.Store(max(c.last.Load(), ts))
	c.db.SetDiscardTs(c.discardLocked())
}

// snapshot returns a read timestamp whose versions Badger keeps until
// release is called.
func (c *clock) snapshot() (readTs uint64, release func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ts := c.last.Load()
	c.snapshots[ts]++
	c.db.SetDiscardTs(c.discardLocked())
	return ts, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.snapshots[ts]--; c.snapshots[ts] == 0 {
			delete(c.snapshots, ts)
		}
		c.db.SetDiscardTs(c.discardLocked())
	}
}

// discardLocked is the discard timestamp: the last commit, or the oldest
// snapshot in flight.
func (c *clock) discardLocked() uint64 {
	d := uint64(math.MaxUint64)
	for ts := range c.snapshots {
		d = min(d, ts)
	}
	return min(d, c.last.Load())
}
