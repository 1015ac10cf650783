package badger

import "github.com/cespare/xxhash/v2"

// DefaultVersionFilterSize is the default of Options.VersionFilterSize:
// 2 Mi slots of 16 bytes. With a million keys written uniformly, about
// two conditional writes in three skip the lookup.
const DefaultVersionFilterSize = 32 << 20

// filterTTL marks a slot whose last write carried a TTL: the key may
// expire without a write, so the slot proves nothing.
const filterTTL = 1 << 63

// versionFilter spares most conditional writes the LSM lookup that checks
// their condition. Each key hashes to a slot holding the commit timestamp
// and the key's 64-bit hash of the latest write, since the store opened,
// of any key hashing there. A write of key K on condition of version v
// holds when K's slot holds K's hash and exactly v: K was written at v,
// and no key of the slot — K included — was written since. Any other slot
// value (a later write of another key of the slot, nothing since open, a
// TTL) proves nothing, and the condition is checked in the tree as
// before. It is read and written only by the serialized commit path, so
// it needs no lock; its memory holds no pointers, so the garbage
// collector skips it.
type versionFilter struct {
	slots []filterSlot
	mask  uint64
}

type filterSlot struct {
	ts   uint64 // commit timestamp, with filterTTL when the write had a TTL
	hash uint64 // xxhash of the key
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
	return &versionFilter{slots: make([]filterSlot, n), mask: n - 1}
}

// holds reports that key is certainly still at version v.
func (f *versionFilter) holds(key []byte, v uint64) bool {
	if f == nil || v == 0 {
		return false
	}
	h := xxhash.Sum64(key)
	return f.slots[h&f.mask] == filterSlot{ts: v, hash: h}
}

// wrote records a committed write of key at ts.
func (f *versionFilter) wrote(key []byte, ts uint64, ttl bool) {
	if f == nil {
		return
	}
	if ttl {
		ts |= filterTTL
	}
	h := xxhash.Sum64(key)
	f.slots[h&f.mask] = filterSlot{ts: ts, hash: h}
}

// reset forgets every write (Restore brings back older versions).
func (f *versionFilter) reset() {
	if f != nil {
		clear(f.slots)
	}
}
