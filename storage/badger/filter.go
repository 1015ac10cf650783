package badger

import (
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
)

// DefaultVersionFilterSize is the default of Options.VersionFilterSize:
// 2 Mi slots of 16 bytes. With a million keys written uniformly, about
// two conditional writes in three skip the lookup.
const DefaultVersionFilterSize = 32 << 20

// filterTTL marks a slot whose last write carried a TTL: the key may
// expire without a write, so the slot proves nothing about its condition.
const filterTTL = 1 << 63

// versionFilter spares most conditional writes the LSM lookup that checks
// their condition, and most reads the search of the levels below the one
// that holds their key's latest version. Each key hashes to a slot
// holding the commit timestamp and the key's 64-bit hash of the latest
// write, since the store opened, of any key hashing there.
//
// Conditions: a write of key K on condition of version v holds when K's
// slot holds K's hash and exactly v: K was written at v, and no key of
// the slot — K included — was written since. Any other slot value (a
// later write of another key of the slot, nothing since open, a TTL)
// proves nothing, and the condition is checked in the tree as before.
//
// Reads: a slot's timestamp, when set, is at least the latest version of
// every key of the slot (written since open, it is later than any version
// written before), so a read at it sees the key's latest version; and
// Badger stops searching when it finds a version equal to the read
// timestamp, which it does whenever K was the slot's last writer (or was
// written in the same transaction). Without that a Get searches every
// memtable and level, since an older version found first may not be the
// latest.
//
// Seeding: a store opened on existing data starts the filter knowing
// nothing, so until every key had been written once more, conditions were
// checked in the tree and reads searched every level. Open therefore
// seeds it in the background (seed.go) from a snapshot taken before the
// first write: each key's latest version, kept in its slot when later
// than the slot's. A seeded slot proves conditions at once — its key was
// at that version at the snapshot, and any write since is later and
// replaces it — but it bounds the versions of the slot's keys only once
// every key has been seeded, so reads use no slot until seeding is
// complete.
//
// Only the serialized commit path writes the filter (the seeder hands its
// batches to it); it is written after the clock has moved past the
// commit (clock.committed), so a read at a slot's timestamp never reads
// past the last commit. Reads load the timestamp atomically and need
// nothing else. Its memory holds no pointers, so the garbage collector
// skips it.
type versionFilter struct {
	slots []filterSlot
	mask  uint64
	// complete is false while the filter is being seeded: its slots
	// prove conditions but do not yet bound versions for reads.
	complete atomic.Bool
}

type filterSlot struct {
	ts   atomic.Uint64 // commit timestamp, with filterTTL when the write had a TTL
	hash uint64        // xxhash of the key; commit path only
}

// newVersionFilter returns a filter of about size bytes (a power of two
// of slots), or nil for size <= 0.
func newVersionFilter(size int64) *versionFilter {
	if size <= 0 {
		return nil
	}
	n := uint64(1)
	for n*2*16 <= uint64(size) {
		n *= 2
	}
	f := &versionFilter{slots: make([]filterSlot, n), mask: n - 1}
	f.complete.Store(true)
	return f
}

// holds reports that key is certainly still at version v. Commit path
// only.
func (f *versionFilter) holds(key []byte, v uint64) bool {
	if f == nil || v == 0 {
		return false
	}
	h := xxhash.Sum64(key)
	sl := &f.slots[h&f.mask]
	return sl.hash == h && sl.ts.Load() == v
}

// readTs returns a timestamp at which a read of key sees its latest
// version and is likely to find exactly that version first, or 0 when
// the filter knows nothing of the key's slot (read at the last commit
// instead).
func (f *versionFilter) readTs(key []byte) uint64 {
	if f == nil || !f.complete.Load() {
		return 0
	}
	return f.slots[xxhash.Sum64(key)&f.mask].ts.Load() &^ filterTTL
}

// wrote records a committed write of key at ts. Commit path only, after
// the clock has recorded ts. Badger reports pipelined transactions
// applied from goroutines of their own, so they may be recorded out of
// order: a write older than the slot's holds nothing the slot must
// record (the slot's own timestamp already covers it for reads, and its
// key's next conditional write is checked in the tree), and is skipped,
// so that a slot's timestamp never goes back.
func (f *versionFilter) wrote(key []byte, ts uint64, ttl bool) {
	if f == nil {
		return
	}
	h := xxhash.Sum64(key)
	sl := &f.slots[h&f.mask]
	if ts < sl.ts.Load()&^filterTTL {
		return
	}
	if ttl {
		ts |= filterTTL
	}
	sl.hash = h
	sl.ts.Store(ts)
}

// seed records the entries of a seeding batch: each key's version at the
// snapshot, by hash, with filterTTL when it proves nothing (a deletion, a
// write with a TTL). A slot keeps the latest timestamp it is given, so
// whatever was written since the snapshot wins. Commit path only.
func (f *versionFilter) seed(entries []seedEntry) {
	for _, e := range entries {
		sl := &f.slots[e.hash&f.mask]
		if e.ts&^filterTTL > sl.ts.Load()&^filterTTL {
			sl.hash = e.hash
			sl.ts.Store(e.ts)
		}
	}
}

// reset forgets every write (Restore brings back older versions): the
// filter then describes the writes since, and needs no seeding. No other
// call may run meanwhile, the seeder included.
func (f *versionFilter) reset() {
	if f != nil {
		clear(f.slots)
		f.complete.Store(true)
	}
}
