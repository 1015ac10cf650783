package engine

import (
	"strconv"

	"github.com/cespare/xxhash/v2"
)

// Purpose tags of the allocation draws. Changing a tag, the separator or the
// order of parts reshuffles every live visitor: golden vectors in
// testdata/draws.json pin them.
const (
	tagTraffic      = "traffic"
	tagDistribution = "distribution"
	tagNamespace    = "namespace"
)

// draw returns a deterministic, uniform number in [0, 1) for one purpose of
// one experience (or namespace), bucket version and stable id: the top 53
// bits of xxhash64 over tag, 0x00, id, 0x00, decimal bucket, 0x00, stableID.
// The separators make ("ab","c") and ("a","bc") hash differently.
func draw(tag, id string, bucket int, stableID string) float64 {
	// One-shot hashing of the joined parts is much faster than streaming
	// them into a Digest; parts too long for the stack buffer (ids are
	// bounded, experience ids are not) go to the heap.
	var buf [256]byte
	b := buf[:0]
	if n := len(tag) + len(id) + len(stableID) + 24; n > len(buf) {
		b = make([]byte, 0, n)
	}
	b = append(b, tag...)
	b = append(b, 0)
	b = append(b, id...)
	b = append(b, 0)
	b = strconv.AppendInt(b, int64(bucket), 10)
	b = append(b, 0)
	b = append(b, stableID...)
	return float64(xxhash.Sum64(b)>>11) / (1 << 53)
}

// pickVariant returns the index of the distribution range holding x:
// variant i covers [sum(dist[:i]), sum(dist[:i+1])). Rounding can leave the
// last range short of 1, so anything past the end goes to the last variant
// with a non-zero share.
func pickVariant(dist []float64, x float64) int {
	acc := 0.0
	last := 0
	for i, p := range dist {
		if p > 0 {
			last = i
		}
		acc += p
		if x < acc && p > 0 {
			return i
		}
	}
	return last
}
