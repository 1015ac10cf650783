package engine

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// drawVector is one pinned allocation draw.
type drawVector struct {
	Tag      string  `json:"tag"`
	ID       string  `json:"id"`
	Bucket   int     `json:"bucket"`
	StableID string  `json:"stableId"`
	Draw     float64 `json:"draw"`
}

// TestDrawGolden pins the allocation hash: if this test fails, a change
// would reshuffle every live visitor. Never update the golden file to make
// it pass; bump bucket versions instead.
func TestDrawGolden(t *testing.T) {
	var vs []drawVector
	for _, tag := range []string{tagTraffic, tagDistribution, tagNamespace} {
		for _, id := range []string{"exp-hero-banner-test", "ab", "a", ""} {
			for _, bucket := range []int{0, 1, 42} {
				for _, sid := range []string{"prof-7a4b2c1e-8d3f-4e5a-9b1c-3d4e5f6a7b8c", "c", "bc", ""} {
					vs = append(vs, drawVector{Tag: tag, ID: id, Bucket: bucket, StableID: sid,
						Draw: draw(tag, id, bucket, sid)})
				}
			}
		}
	}
	path := filepath.Join("testdata", "draws.json")
	if *update {
		b, _ := json.MarshalIndent(vs, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var want []drawVector
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if len(want) != len(vs) {
		t.Fatalf("golden file has %d vectors, computed %d", len(want), len(vs))
	}
	for i, w := range want {
		if got := draw(w.Tag, w.ID, w.Bucket, w.StableID); got != w.Draw {
			t.Errorf("draw(%q, %q, %d, %q) = %v, golden %v", w.Tag, w.ID, w.Bucket, w.StableID, got, w.Draw)
		}
		_ = i
	}
}

func TestDrawSeparatesParts(t *testing.T) {
	if draw(tagTraffic, "ab", 1, "c") == draw(tagTraffic, "a", 1, "bc") {
		t.Error(`("ab","c") and ("a","bc") draw the same`)
	}
	if draw(tagTraffic, "x", 1, "1") == draw(tagTraffic, "x", 11, "") {
		t.Error("bucket and stable id run together")
	}
	if draw(tagTraffic, "x", 1, "s") == draw(tagDistribution, "x", 1, "s") {
		t.Error("purpose tags do not separate draws")
	}
}

// TestDrawUniform is a chi-square test over 100,000 stable ids in 100 bins:
// with 99 degrees of freedom the statistic exceeds 148 with probability
// below 0.1%. The ids are fixed, so the test is deterministic.
func TestDrawUniform(t *testing.T) {
	const n, bins = 100_000, 100
	for _, tag := range []string{tagTraffic, tagDistribution, tagNamespace} {
		var counts [bins]int
		for i := range n {
			x := draw(tag, "exp-uniform", 3, fmt.Sprintf("visitor-%d", i))
			if x < 0 || x >= 1 {
				t.Fatalf("draw %v outside [0,1)", x)
			}
			counts[int(x*bins)]++
		}
		expected := float64(n) / bins
		chi2 := 0.0
		for _, c := range counts {
			d := float64(c) - expected
			chi2 += d * d / expected
		}
		if chi2 > 148 {
			t.Errorf("%s: chi-square %.1f over %d bins: not uniform", tag, chi2, bins)
		}
	}
}

// TestDrawIndependent checks that the traffic and distribution draws of one
// visitor are uncorrelated (Pearson r near 0 over 100,000 visitors).
func TestDrawIndependent(t *testing.T) {
	const n = 100_000
	var sx, sy, sxx, syy, sxy float64
	for i := range n {
		id := fmt.Sprintf("visitor-%d", i)
		x, y := draw(tagTraffic, "e", 1, id), draw(tagDistribution, "e", 1, id)
		sx, sy, sxx, syy, sxy = sx+x, sy+y, sxx+x*x, syy+y*y, sxy+x*y
	}
	r := (n*sxy - sx*sy) / math.Sqrt((n*sxx-sx*sx)*(n*syy-sy*sy))
	if math.Abs(r) > 0.02 {
		t.Errorf("traffic and distribution draws correlate: r = %.4f", r)
	}
}

func TestPickVariant(t *testing.T) {
	tests := []struct {
		dist []float64
		x    float64
		want int
	}{
		{[]float64{0.5, 0.5}, 0, 0},
		{[]float64{0.5, 0.5}, 0.4999, 0},
		{[]float64{0.5, 0.5}, 0.5, 1},
		{[]float64{0.5, 0.5}, 0.9999999, 1},
		{[]float64{0, 1}, 0, 1},
		{[]float64{1, 0}, 0.99, 0},
		{[]float64{0.2, 0, 0.8}, 0.2, 2},
		{[]float64{0.1, 0.2, 0.3, 0.4}, 0.35, 2},
		// Rounding leaves the sum short of 1: the rest goes to the last
		// variant with a share.
		{[]float64{0.3333333, 0.3333333, 0.3333333}, 0.99999999, 2},
	}
	for _, tt := range tests {
		if got := pickVariant(tt.dist, tt.x); got != tt.want {
			t.Errorf("pickVariant(%v, %v) = %d, want %d", tt.dist, tt.x, got, tt.want)
		}
	}
}

func TestDrawAllocs(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() { draw(tagDistribution, "exp", 7, "stable") })
	if allocs != 0 {
		t.Errorf("draw allocates %v times", allocs)
	}
}

func BenchmarkDraw(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		draw(tagDistribution, "exp-hero-banner-test", 1, "prof-7a4b2c1e-8d3f-4e5a-9b1c-3d4e5f6a7b8c")
	}
}
