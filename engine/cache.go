package engine

// The decoded-profile cache keeps the records Identify wrote last, so the
// next call on a busy profile skips the store read and the decode. It is
// split like the profile locks: the entries of stripe s hold profiles whose
// key "p/<id>" hashes to s, and are read and written only by a call holding
// stripe s's lock, so the cache needs no lock of its own.
//
// It is write-through and exclusive: a call that loads a profile takes its
// entry out of the cache, and only a successful store write puts the
// written record back. A call that fails, is a preflight, or ends in a
// merge or delete therefore leaves nothing stale behind. Restore clears
// the cache. With a ProfileTTL the store expires profiles on its own, so
// the cache is off (an entry could outlive its stored profile).

// DefaultCacheProfiles is the number of decoded profiles an engine keeps
// when Options.CacheProfiles is 0: two per lock stripe, about 100 MiB of
// heap at ~13 KiB per decoded profile. It holds the head of real
// (Zipf-like) traffic; 65,536 profiles cost ~850 MiB of heap and, under
// uniform traffic over a million profiles, more GC time than they saved
// (bench/README.md, targets 5 and 6).
const DefaultCacheProfiles = 2 * stripes

// cacheStripe is the cache of one lock stripe: a few entries with
// least-recently-used replacement.
type cacheStripe struct {
	entries []cacheEntry
	clock   uint64
}

type cacheEntry struct {
	id   string
	rec  *record // nil: free slot
	used uint64
}

// cacheTake removes and returns the cached record of profile id, or nil.
// The caller holds the stripe of "p/"+id (l lists it).
func (e *Engine) cacheTake(l *lockSet, id string) *record {
	c := e.cacheStripe(l, id)
	if c == nil {
		return nil
	}
	for i := range c.entries {
		if en := &c.entries[i]; en.rec != nil && en.id == id {
			rec := en.rec
			*en = cacheEntry{}
			e.tel.cacheLookup(true)
			return rec
		}
	}
	e.tel.cacheLookup(false)
	return nil
}

// cachePut caches rec, just written to the store, replacing the entry
// used least recently when the stripe is full. The caller holds the stripe
// of "p/"+rec.ID, and must not use rec after the call.
func (e *Engine) cachePut(l *lockSet, rec *record) {
	c := e.cacheStripe(l, rec.ID)
	if c == nil {
		return
	}
	if c.entries == nil {
		c.entries = make([]cacheEntry, e.cachePerStripe)
	}
	victim := 0
	for i := range c.entries {
		en := &c.entries[i]
		if en.rec == nil || en.id == rec.ID {
			victim = i
			break
		}
		if en.used < c.entries[victim].used {
			victim = i
		}
	}
	ownTraits(rec)
	c.clock++
	rec.stored = true
	c.entries[victim] = cacheEntry{id: rec.ID, rec: rec, used: c.clock}
}

// cacheStripe returns the cache stripe of profile id, or nil when the
// cache is off or the caller does not hold that stripe's lock.
func (e *Engine) cacheStripe(l *lockSet, id string) *cacheStripe {
	if e.cachePerStripe == 0 {
		return nil
	}
	s := stripeOf(prefixProfile + id)
	if !l.holds(s) {
		return nil
	}
	return &e.cache[s]
}

// cacheClear empties the cache. The caller holds e.mu exclusively, so no
// call holds a stripe.
func (e *Engine) cacheClear() {
	for i := range e.cache {
		e.cache[i] = cacheStripe{}
	}
}

// ownTraits makes rec's trait values its own before rec is cached: nested
// maps and slices may be shared with the request that set them and with
// responses (whose callers own and may change them), so they are copied;
// values of other Go types are turned into what the store would give back
// (as JSON would decode them), so a cached record reads exactly like a
// stored one. Strings, numbers, booleans and nil are immutable and kept.
func ownTraits(rec *record) {
	for k, v := range rec.Traits {
		switch v.(type) {
		case nil, string, float64, bool:
		default:
			rec.Traits[k] = ownValue(v)
		}
	}
}

func ownValue(v any) any {
	switch x := v.(type) {
	case nil, string, float64, bool:
		return x
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, y := range x {
			m[k] = ownValue(y)
		}
		return m
	case []any:
		a := make([]any, len(x))
		for i, y := range x {
			a[i] = ownValue(y)
		}
		return a
	}
	// The encoder succeeded on this value moments ago, so this does too.
	g, _ := jsonGeneric(v)
	return g
}
