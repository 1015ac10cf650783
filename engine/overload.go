package engine

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
)

// Overload protection. A hot profile (a bot, a retry loop, a page firing a
// burst of events for one visitor) must not queue unbounded work behind
// its profile lock: every waiting call holds a goroutine, a request body
// and, behind an HTTP server, a connection. Two independent limits, both
// off by default, turn such calls into ErrOverload (HTTP 429) at once:
//
//   - Options.MaxWaiting bounds how many Identify calls on one profile id
//     may wait for its lock while another holds it. It reacts to
//     contention only: a profile hammered no faster than the engine serves
//     it is never refused. It counts per id, not per lock stripe, so a
//     profile that happens to share a stripe with a hot one is never
//     refused; it waits behind at most MaxWaiting+1 of the hot calls.
//   - Options.ProfileRate (with ProfileBurst) is a per-profile-id rate
//     limit (generic cell rate algorithm, one int64 per active id).
//
// Both are checked before any lock is taken or anything is read, so a
// refused call costs a few atomic operations and writes nothing.

// admission holds the overload limits of an Engine.
type admission struct {
	maxWaiting int32
	waiting    [64]waitShard // calls in flight per profile id
	rate       *rateLimiter  // nil when ProfileRate is 0
}

// waitShard counts the admitted calls per profile id of one shard; ids
// with no call in flight are absent, so its size is bounded by the calls
// in flight.
type waitShard struct {
	mu sync.Mutex
	n  map[string]int32
}

func (a *admission) shard(id string) *waitShard {
	return &a.waiting[xxhash.Sum64String(id)%uint64(len(a.waiting))]
}

// validateOverload checks and defaults the overload options of o.
func validateOverload(o *Options) error {
	switch {
	case o.MaxWaiting < 0:
		return fmt.Errorf("tailor: Options.MaxWaiting %d is negative", o.MaxWaiting)
	case o.MaxWaiting > math.MaxInt32/2:
		return fmt.Errorf("tailor: Options.MaxWaiting %d is too large", o.MaxWaiting)
	case o.ProfileRate < 0 || math.IsNaN(o.ProfileRate) || math.IsInf(o.ProfileRate, 0):
		return fmt.Errorf("tailor: Options.ProfileRate %v is not a finite non-negative number", o.ProfileRate)
	case o.ProfileBurst < 0:
		return fmt.Errorf("tailor: Options.ProfileBurst %d is negative", o.ProfileBurst)
	case o.ProfileBurst > 0 && o.ProfileRate == 0:
		return fmt.Errorf("tailor: Options.ProfileBurst %d is set but ProfileRate is 0", o.ProfileBurst)
	}
	if o.ProfileRate > 0 && o.ProfileBurst == 0 {
		o.ProfileBurst = max(1, int(math.Ceil(o.ProfileRate)))
	}
	return nil
}

func newAdmission(o *Options) *admission {
	a := &admission{maxWaiting: int32(o.MaxWaiting)}
	for i := range a.waiting {
		a.waiting[i].n = make(map[string]int32)
	}
	if o.ProfileRate > 0 {
		a.rate = newRateLimiter(o.ProfileRate, o.ProfileBurst)
	}
	return a
}

// admit decides whether a call on profile id may proceed at time now. On
// success the caller must call release(id) once its locked work is done.
func (a *admission) admit(id string, now time.Time) error {
	if a.rate != nil && !a.rate.allow(id, now.UnixNano()) {
		return fmt.Errorf("%w: profile %s exceeds %v calls per second", ErrOverload, truncate(id), a.rate.perSecond)
	}
	if a.maxWaiting == 0 {
		return nil
	}
	w := a.shard(id)
	w.mu.Lock()
	defer w.mu.Unlock()
	// One call may hold the lock; maxWaiting more may queue behind it.
	n := w.n[id]
	if n > a.maxWaiting {
		return fmt.Errorf("%w: %d calls already waiting for profile %s", ErrOverload, n-1, truncate(id))
	}
	w.n[id] = n + 1
	return nil
}

// admitAll admits a call on every id or on none: when one is refused, the
// ids admitted before it are released (their rate-limit tokens stay
// spent). IdentifyBatch uses it so that overload never stops a batch
// halfway, after some of its profiles were written.
func (a *admission) admitAll(ids []string, now time.Time) error {
	for i, id := range ids {
		if err := a.admit(id, now); err != nil {
			for _, done := range ids[:i] {
				a.release(done)
			}
			return err
		}
	}
	return nil
}

// release ends a call admitted by admit.
func (a *admission) release(id string) {
	if a.maxWaiting == 0 {
		return
	}
	w := a.shard(id)
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := w.n[id]; n > 1 {
		w.n[id] = n - 1
	} else {
		delete(w.n, id)
	}
}

// inFlight returns the admitted calls on id not yet released.
func (a *admission) inFlight(id string) int32 {
	w := a.shard(id)
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n[id]
}

// rateLimiter is a per-key GCRA limiter: a key may make burst calls at once
// and then one every interval. It keeps one theoretical arrival time per
// key seen within the last burst×interval and forgets older ones, so its
// memory is bounded by the number of keys active in that window.
type rateLimiter struct {
	perSecond float64
	interval  int64 // nanoseconds between calls at the sustained rate
	tolerance int64 // how far ahead of now a key's arrival time may run
	shards    [64]rateShard
}

type rateShard struct {
	mu      sync.Mutex
	tat     map[string]int64 // theoretical arrival time per key, Unix ns
	sweepAt int              // size from which the next insert sweeps
}

const minSweep = 1024

func newRateLimiter(perSecond float64, burst int) *rateLimiter {
	interval := int64(float64(time.Second) / perSecond)
	if interval < 1 {
		interval = 1
	}
	r := &rateLimiter{perSecond: perSecond, interval: interval, tolerance: int64(burst-1) * interval}
	for i := range r.shards {
		r.shards[i].tat = make(map[string]int64)
		r.shards[i].sweepAt = minSweep
	}
	return r
}

// allow reports whether key may make a call at now (Unix ns), counting it
// if so.
func (r *rateLimiter) allow(key string, now int64) bool {
	s := &r.shards[xxhash.Sum64String(key)%uint64(len(r.shards))]
	s.mu.Lock()
	defer s.mu.Unlock()
	tat, ok := s.tat[key]
	if !ok || tat < now {
		tat = now
	}
	if tat-now > r.tolerance {
		return false
	}
	if !ok && len(s.tat) >= s.sweepAt {
		// Keys whose arrival time has passed are as good as absent.
		for k, v := range s.tat {
			if v <= now {
				delete(s.tat, k)
			}
		}
		s.sweepAt = max(minSweep, 2*len(s.tat))
	}
	s.tat[key] = tat + r.interval
	return true
}

// size returns the number of keys the limiter remembers (for tests).
func (r *rateLimiter) size() int {
	n := 0
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		n += len(s.tat)
		s.mu.Unlock()
	}
	return n
}
