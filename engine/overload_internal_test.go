package engine

import (
	"fmt"
	"testing"
	"time"
)

// TestRateLimiterForgets drives the limiter with many one-off ids over
// time: its memory must stay bounded by the ids active within one burst
// window (plus the sweep threshold), not grow with every id ever seen.
func TestRateLimiterForgets(t *testing.T) {
	r := newRateLimiter(100, 5) // window: 5 × 10ms
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	const rounds, perRound = 8, 20_000
	for round := range rounds {
		for i := range perRound {
			if !r.allow(fmt.Sprintf("r%d-%d", round, i), now) {
				t.Fatalf("first call of a new id refused")
			}
		}
		now += int64(time.Second)
	}
	bound := perRound + len(r.shards)*minSweep
	if n := r.size(); n > bound {
		t.Errorf("limiter remembers %d ids after %d rounds of %d, want at most %d", n, rounds, perRound, bound)
	}
}

// TestRateLimiterGCRA pins the algorithm: burst calls at once, then one
// per interval, never more than rate × time + burst.
func TestRateLimiterGCRA(t *testing.T) {
	r := newRateLimiter(4, 2) // one call per 250ms, bursts of 2
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	tests := []struct {
		at   time.Duration
		want bool
	}{
		{0, true}, {0, true}, {0, false}, {100 * time.Millisecond, false},
		{250 * time.Millisecond, true}, {250 * time.Millisecond, false},
		{500 * time.Millisecond, true}, {2 * time.Second, true}, {2 * time.Second, true},
		{2 * time.Second, false},
	}
	for i, tt := range tests {
		if got := r.allow("k", start+int64(tt.at)); got != tt.want {
			t.Errorf("call %d at %v: allow = %v, want %v", i, tt.at, got, tt.want)
		}
	}
}

// BenchmarkAdmission measures what overload protection adds to every
// Identify on a profile id: admit and release with both limits on, from
// parallel goroutines over 1,024 ids.
func BenchmarkAdmission(b *testing.B) {
	o := &Options{MaxWaiting: 64, ProfileRate: 1e9}
	if err := validateOverload(o); err != nil {
		b.Fatal(err)
	}
	a := newAdmission(o)
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = fmt.Sprintf("%064x", i)
	}
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			id := ids[i%len(ids)]
			i++
			if err := a.admit(id, now); err != nil {
				b.Fatal(err)
			}
			a.release(id)
		}
	})
}
