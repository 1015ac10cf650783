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
	var d xxhash.Digest
	d.Reset()
	var buf [24]byte
	b := append(buf[:0], 0)
	_, _ = d.WriteString(tag)
	_, _ = d.Write(b)
	_, _ = d.WriteString(id)
	_, _ = d.Write(b)
	b = strconv.AppendInt(b[:0], int64(bucket), 10)
	b = append(b, 0)
	_, _ = d.Write(b)
	_, _ = d.WriteString(stableID)
	return float64(d.Sum64()>>11) / (1 << 53)
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
