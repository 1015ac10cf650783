package report

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

// spaceRun is a run whose ratio climbs to 1.9× under load and falls to
// 1.4× after 60 s and 1.2× after 120 s of idle.
func spaceRun() *Space {
	const live = 1 << 30
	s := &Space{IntervalSeconds: 30, IdleSeconds: 150, LoadSeconds: 600}
	for _, p := range []struct {
		t     float64
		ratio float64
		idle  bool
	}{{0, 1.1, false}, {300, 1.9, false}, {600, 1.7, false}, {630, 1.6, true}, {660, 1.4, true}, {720, 1.2, true}, {750, 1.2, true}} {
		s.Samples = append(s.Samples, SpaceSample{Seconds: p.t, Idle: p.idle, LiveBytes: live, DirBytes: int64(p.ratio * live), VlogBytes: int64(p.ratio*live) - 50<<20})
	}
	s.Summarize()
	return s
}

func TestSpaceSummary(t *testing.T) {
	s := spaceRun()
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-6 }
	if !near(s.MaxLoadRatio, 1.9) || s.MaxLoadAt != 300 || !near(s.EndRatio, 1.2) || s.IdleTo15Seconds != 60 {
		t.Fatalf("summary: max %v at %v, end %v, ≤1.5 after %v", s.MaxLoadRatio, s.MaxLoadAt, s.EndRatio, s.IdleTo15Seconds)
	}
	for _, tc := range []struct {
		maxLoad, idle, within float64
		want                  bool
	}{
		{2, 1.5, 120, true},
		{1.8, 1.5, 120, false}, // 1.9× under load
		{2, 1.5, 30, false},    // 1.6× after 30 s
		{2, 1.3, 120, true},    // 1.2× after 120 s
		{2, 1.1, 150, false},   // never
	} {
		if got := s.Meets(tc.maxLoad, tc.idle, tc.within); got != tc.want {
			t.Errorf("Meets(%v, %v, %v) = %v, want %v", tc.maxLoad, tc.idle, tc.within, got, tc.want)
		}
	}
	if (&Space{}).Meets(2, 1.5, 120) {
		t.Error("a run without samples meets the target")
	}
	var b strings.Builder
	s.writeText(&b, 1000)
	for _, want := range []string{"7 samples every 30s", "max 1.90× live", "at 300s", "after 150s idle: 1.20× live", "≤ 1.5× after 60s idle"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("space text lacks %q:\n%s", want, b.String())
		}
	}
}

func TestWriteSpaceSVG(t *testing.T) {
	for _, r := range []*Report{{Mode: "identify-disk", Space: spaceRun()}, {Mode: "identify-disk"}} {
		var buf bytes.Buffer
		if err := r.WriteSpaceSVG(&buf); err != nil {
			t.Fatal(err)
		}
		lines := countElements(t, buf.Bytes(), "polyline")
		if want := map[bool]int{true: 4, false: 0}[r.Space != nil]; lines != want {
			t.Fatalf("SVG has %d polylines, want %d (three series and the ratio)", lines, want)
		}
	}
}
