package hist

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// oracle is the exact quantile of sorted values under Quantile's rank rule.
func oracle(sorted []int64, q float64) int64 {
	rank := int(math.Ceil(q * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

func TestQuantileAgainstSortedOracle(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	gens := []struct {
		name string
		n    int
		next func() int64
	}{
		{"small exact", 1000, func() int64 { return r.Int64N(256) }},
		{"uniform micros", 20000, func() int64 { return r.Int64N(1_000_000) }},
		{"lognormal", 50000, func() int64 { return int64(math.Exp(r.NormFloat64()*1.5 + 10)) }},
		{"heavy tail", 20000, func() int64 {
			if r.IntN(1000) == 0 {
				return r.Int64N(1 << 40)
			}
			return 100 + r.Int64N(5000)
		}},
		{"one value", 1, func() int64 { return 123456789 }},
		{"huge", 100, func() int64 { return math.MaxInt64 - r.Int64N(1<<50) }},
	}
	qs := []float64{0, 0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 1}
	for _, g := range gens {
		t.Run(g.name, func(t *testing.T) {
			var h Histogram
			vals := make([]int64, g.n)
			for i := range vals {
				vals[i] = g.next()
				h.Record(vals[i])
			}
			slices.Sort(vals)
			if h.Count() != uint64(g.n) {
				t.Fatalf("Count = %d, want %d", h.Count(), g.n)
			}
			if h.Min() != vals[0] || h.Max() != vals[len(vals)-1] {
				t.Fatalf("Min/Max = %d/%d, want %d/%d", h.Min(), h.Max(), vals[0], vals[len(vals)-1])
			}
			for _, q := range qs {
				got, want := h.Quantile(q), oracle(vals, q)
				tol := want / sub
				if got < want || got-want > tol {
					t.Errorf("Quantile(%v) = %d, want %d (+%d)", q, got, want, tol)
				}
			}
			var sum float64
			for _, v := range vals {
				sum += float64(v)
			}
			if m := sum / float64(len(vals)); math.Abs(h.Mean()-m) > 1e-9*math.Abs(m)+1e-9 {
				t.Errorf("Mean = %v, want %v", h.Mean(), m)
			}
		})
	}
}

func TestBoundsCoverEveryValue(t *testing.T) {
	vals := []int64{0, 1, 255, 256, 257, 511, 512, 1023, 1024, 1 << 20, 1<<20 + 12345, math.MaxInt64}
	for _, v := range vals {
		i := index(v)
		if i < 0 || i >= buckets {
			t.Fatalf("index(%d) = %d out of range", v, i)
		}
		lo, hi := bounds(i)
		if v < lo || v > hi {
			t.Errorf("value %d in bucket %d [%d, %d]", v, i, lo, hi)
		}
		if v >= 2*sub && float64(hi-lo+1) > float64(lo)/sub+1 {
			t.Errorf("bucket %d [%d, %d] wider than 1/%d of its value", i, lo, hi, sub)
		}
	}
	// Consecutive buckets tile the line with no gap or overlap.
	for i := 1; i < buckets; i++ {
		_, phi := bounds(i - 1)
		lo, _ := bounds(i)
		if lo != phi+1 {
			t.Fatalf("bucket %d starts at %d, previous ends at %d", i, lo, phi)
		}
	}
}

func TestMergeEqualsRecordingTogether(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var a, b, all Histogram
	for i := 0; i < 10000; i++ {
		v := r.Int64N(1 << 30)
		all.Record(v)
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	var m Histogram
	m.Merge(&a)
	m.Merge(&b)
	m.Merge(&Histogram{})
	if m != all {
		t.Fatal("merged histogram differs from one recorded in a single pass")
	}
	var total uint64
	for _, bk := range m.Buckets() {
		total += bk.Count
	}
	if total != all.Count() {
		t.Fatalf("Buckets sum to %d, want %d", total, all.Count())
	}
}

func TestEmptyAndNegative(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Mean() != 0 || h.Max() != 0 || len(h.Buckets()) != 0 {
		t.Fatal("empty histogram should report zeros")
	}
	h.Record(-5)
	if h.Min() != 0 || h.Quantile(1) != 0 {
		t.Fatalf("negative value should count as 0, got min %d", h.Min())
	}
}
