package engine

import (
	"slices"
	"strings"

	"github.com/tailorhq/tailor/storage"
)

// The profile cache keeps the encoded records Identify wrote last, with
// their versions, so that the next call on a busy profile skips the store
// read (it still decodes). It is split like the profile locks: the entries
// of stripe s hold profiles whose key "p/<id>" hashes to s, and are read
// and written only by a call holding stripe s's lock, so the cache needs
// no lock of its own.
//
// A cached record is only ever used as the record a call then writes on
// condition of the cached version, so a copy made stale by another
// process sharing the store can never overwrite the newer write: the
// write conflicts and the call reads the store. (The identity protocol
// reads other profiles from the store; see ownerLocked.) Only a
// successful write puts a record in; Restore clears the cache.
//
// The cache holds bytes, not decoded profiles: a decoded profile is a few
// hundred small objects that every garbage collection cycle would have to
// mark, which cost more than the cache saved under uniform traffic over
// many profiles (bench/README.md); bytes are not scanned.

// DefaultCacheBytes is the memory for encoded profiles an engine keeps
// when Options.CacheBytes is 0: about 50,000 profiles of 1.3 KB.
const DefaultCacheBytes = 64 << 20

// cacheStripe is the cache of one lock stripe: entries up to the stripe's
// share of the bytes, replaced least recently used first.
type cacheStripe struct {
	entries []cacheEntry
	bytes   int // the capacity of the entries' arrays
	clock   uint64
}

type cacheEntry struct {
	hash uint64 // of "p/"+id, compared first: ids of one length differ only past a pointer
	id   string
	ver  storage.Version
	enc  []byte // the record as stored; its array is reused when the profile is written again
	used uint64
}

// cacheGet returns the cached encoding and version of profile id, or nil.
// The caller holds the stripe of "p/"+id (l lists it) and must not keep
// the slice past its next cache call.
func (e *Engine) cacheGet(l *lockSet, id string) ([]byte, storage.Version) {
	c, h := e.cacheStripe(l, id)
	if c == nil {
		return nil, 0
	}
	for i := range c.entries {
		if en := &c.entries[i]; en.hash == h && en.ver != 0 && en.id == id {
			c.clock++
			en.used = c.clock
			e.tel.cacheLookup(true)
			return en.enc, en.ver
		}
	}
	e.tel.cacheLookup(false)
	return nil, 0
}

// cachePut caches enc, the encoding of profile id just written at version
// v, evicting the entries used least recently while the stripe is over
// its share; the new record is copied into the array of the last entry
// evicted, so a full cache allocates no array per put. The caller holds
// the stripe of "p/"+id.
func (e *Engine) cachePut(l *lockSet, id string, v storage.Version, enc []byte) {
	c, h := e.cacheStripe(l, id)
	if c == nil || len(enc) > e.cachePerStripe {
		return
	}
	slot := -1
	for i := range c.entries {
		if en := &c.entries[i]; en.hash == h && en.ver != 0 && en.id == id {
			slot = i
			break
		}
	}
	if slot < 0 {
		// The last entry evicted takes the new record, in its array.
		for c.bytes+len(enc) > e.cachePerStripe {
			if slot >= 0 {
				c.entries[slot].enc = nil
			}
			slot = c.evict()
		}
		if slot < 0 {
			slot = slices.IndexFunc(c.entries, func(en cacheEntry) bool { return en.ver == 0 })
		}
		if slot < 0 {
			c.entries = append(c.entries, cacheEntry{})
			slot = len(c.entries) - 1
		}
	}
	en := &c.entries[slot]
	c.clock++
	if en.id != id {
		// A record's id is a substring of its whole decoded record;
		// keeping it would keep the record.
		id = strings.Clone(id)
	}
	if en.ver != 0 {
		c.bytes -= cap(en.enc) // replaced; a free entry's array is not counted
	}
	buf := en.enc[:0]
	if cap(buf) < len(enc) {
		// An eighth of room, so that the next, slightly larger, record
		// of another profile fits too; not append's doubling, which the
		// budget would count.
		buf = make([]byte, 0, len(enc)+len(enc)/8)
	}
	*en = cacheEntry{hash: h, id: id, ver: v, enc: append(buf, enc...), used: c.clock}
	c.bytes += cap(en.enc)
	for c.bytes > e.cachePerStripe { // an array larger than the record
		c.entries[c.evict()].enc = nil
	}
}

// cacheDrop forgets profile id. The caller holds its stripe.
func (e *Engine) cacheDrop(l *lockSet, id string) {
	if c, h := e.cacheStripe(l, id); c != nil {
		for i := range c.entries {
			if en := &c.entries[i]; en.hash == h && en.ver != 0 && en.id == id {
				c.bytes -= cap(en.enc)
				*en = cacheEntry{}
			}
		}
	}
}

// evict frees the entry used least recently and returns its index. Its
// array stays, uncounted, for the caller to reuse or drop: the budget
// counts the arrays of the entries held (their capacity).
func (c *cacheStripe) evict() int {
	victim := -1
	for i := range c.entries {
		if en := &c.entries[i]; en.ver != 0 && (victim < 0 || en.used < c.entries[victim].used) {
			victim = i
		}
	}
	en := &c.entries[victim]
	c.bytes -= cap(en.enc)
	*en = cacheEntry{enc: en.enc[:0]}
	return victim
}

// cacheStripe returns the cache stripe of profile id and the hash of its
// key, or nil when the cache is off or the caller does not hold that
// stripe's lock.
func (e *Engine) cacheStripe(l *lockSet, id string) (*cacheStripe, uint64) {
	if e.cachePerStripe == 0 {
		return nil, 0
	}
	h := profileKeyHash(id)
	s := int(h % stripes)
	if !l.holds(s) {
		return nil, 0
	}
	return &e.cache[s], h
}

// cacheClear empties the cache. The caller holds e.mu exclusively, so no
// call holds a stripe.
func (e *Engine) cacheClear() {
	for i := range e.cache {
		e.cache[i] = cacheStripe{}
	}
}
