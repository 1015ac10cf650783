// Package hist is a small log-linear latency histogram in the manner of
// HdrHistogram: values below 256 are counted exactly, larger values fall in
// buckets 128 to an octave, so any recorded value is reported within
// 1/128 (0.8%) of its true value while the whole int64 range fits in a few
// thousand counters.
//
// A Histogram is not safe for concurrent use: give each goroutine its own
// and Merge them at the end.
package hist

import (
	"math"
	"math/bits"
)

const (
	subBits = 7
	sub     = 1 << subBits // linear sub-buckets per octave
	// buckets covers every non-negative int64: exact values [0, 2*sub) and
	// (63 - subBits) octaves of sub buckets above.
	buckets = 2*sub + (63-subBits)*sub
)

// Histogram counts int64 values (nanoseconds, in this tool). The zero value
// is empty and ready to use.
type Histogram struct {
	counts [buckets]uint64
	n      uint64
	sum    float64
	min    int64
	max    int64
}

// index returns the bucket of v (v >= 0).
func index(v int64) int {
	if v < 2*sub {
		return int(v)
	}
	exp := bits.Len64(uint64(v)) - (subBits + 1)
	return exp*sub + int(uint64(v)>>uint(exp))
}

// bounds returns the smallest and largest value that fall in bucket i.
func bounds(i int) (lo, hi int64) {
	if i < 2*sub {
		return int64(i), int64(i)
	}
	exp := i/sub - 1
	m := int64(i - exp*sub)
	lo = m << uint(exp)
	hi = lo + (int64(1) << uint(exp)) - 1
	return lo, hi
}

// Record adds one value; negative values count as 0.
func (h *Histogram) Record(v int64) {
	if v < 0 {
		v = 0
	}
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
	h.counts[index(v)]++
}

// Merge adds every value recorded in o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
	for i, c := range o.counts {
		h.counts[i] += c
	}
}

// Count returns the number of values recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Min returns the smallest value recorded (exact), 0 when empty.
func (h *Histogram) Min() int64 { return h.min }

// Max returns the largest value recorded (exact), 0 when empty.
func (h *Histogram) Max() int64 { return h.max }

// Mean returns the mean of the values recorded (exact up to float
// rounding), 0 when empty.
func (h *Histogram) Mean() float64 {
	if h.n == 0 {
		return 0
	}
	return h.sum / float64(h.n)
}

// Quantile returns the value at quantile q in [0, 1]: the value of rank
// ceil(q*n) (at least 1) in sorted order, reported as the upper end of its
// bucket clamped to [Min, Max], so within 1/128 of the true value. It
// returns 0 when empty.
func (h *Histogram) Quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	q = math.Max(0, math.Min(1, q))
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			_, hi := bounds(i)
			return min(max(hi, h.min), h.max)
		}
	}
	return h.max
}

// Bucket is one non-empty bucket: Count values in [Lo, Hi].
type Bucket struct {
	Lo, Hi int64
	Count  uint64
}

// Buckets returns the non-empty buckets in ascending order. The slice is
// newly allocated and belongs to the caller.
func (h *Histogram) Buckets() []Bucket {
	var out []Bucket
	for i, c := range h.counts {
		if c > 0 {
			lo, hi := bounds(i)
			out = append(out, Bucket{Lo: lo, Hi: hi, Count: c})
		}
	}
	return out
}
