package rules

import (
	"reflect"
	"testing"
	"time"
)

const dayMs = 86_400_000

func TestDay(t *testing.T) {
	cases := []struct {
		ms   int64
		want int32
	}{
		{0, 0},
		{dayMs - 1, 0},
		{dayMs, 1},
		{-1, -1},
		{-dayMs, -1},
		{-dayMs - 1, -2},
		{time.Date(2026, 3, 15, 23, 59, 0, 0, time.UTC).UnixMilli(), int32(time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC).Unix() / 86400)},
	}
	for _, tc := range cases {
		if got := Day(tc.ms); got != tc.want {
			t.Errorf("Day(%d) = %d, want %d", tc.ms, got, tc.want)
		}
	}
}

func TestHistoryAdd(t *testing.T) {
	h := &History{}
	base := int64(100 * dayMs)
	// Out of order, two on one day.
	for _, ms := range []int64{base + 5*dayMs, base, base + 5*dayMs + 10, base + 2*dayMs} {
		h.Add(ms)
	}
	want := History{Count: 4, First: base, Last: base + 5*dayMs + 10,
		Days: []DayCount{{Day: 100, N: 1}, {Day: 102, N: 1}, {Day: 105, N: 2}}}
	if !reflect.DeepEqual(*h, want) {
		t.Fatalf("got %+v, want %+v", *h, want)
	}
	// A day HistoryDays after the first pushes it out of Days, not out of
	// Count.
	h.Add(base + HistoryDays*dayMs)
	if h.Count != 5 || h.Days[0].Day != 102 || len(h.Days) != 3 {
		t.Errorf("after trim: %+v", *h)
	}
	// Negative (pre-1970) times set Last too.
	n := &History{}
	n.Add(-5 * dayMs)
	if n.First != -5*dayMs || n.Last != -5*dayMs || n.Days[0].Day != -5 {
		t.Errorf("negative time: %+v", *n)
	}
}

func TestHistoryMerge(t *testing.T) {
	a, b := &History{}, &History{}
	a.Add(10 * dayMs)
	a.Add(12 * dayMs)
	b.Add(12*dayMs + 1)
	b.Add(11 * dayMs)
	b.Add(20 * dayMs)
	a.Merge(b)
	want := History{Count: 5, First: 10 * dayMs, Last: 20 * dayMs,
		Days: []DayCount{{Day: 10, N: 1}, {Day: 11, N: 1}, {Day: 12, N: 2}, {Day: 20, N: 1}}}
	if !reflect.DeepEqual(*a, want) {
		t.Fatalf("got %+v, want %+v", *a, want)
	}
	a.Merge(nil)
	a.Merge(&History{})
	if a.Count != 5 {
		t.Errorf("merging nothing changed the count: %+v", *a)
	}
	empty := &History{}
	neg := &History{}
	neg.Add(-3 * dayMs)
	empty.Merge(neg)
	if empty.First != -3*dayMs || empty.Last != -3*dayMs || empty.Count != 1 {
		t.Errorf("merge into empty: %+v", *empty)
	}
	// Merging pushes old days out.
	old := &History{}
	old.Add(1 * dayMs)
	recent := &History{}
	recent.Add((1 + HistoryDays) * dayMs)
	old.Merge(recent)
	if len(old.Days) != 1 || old.Days[0].Day != 1+HistoryDays || old.Count != 2 {
		t.Errorf("merge trim: %+v", *old)
	}
}

func TestHistoryCountSince(t *testing.T) {
	h := &History{}
	for _, d := range []int64{200, 200, 205, 210, 240} {
		h.Add(d*dayMs + 3_600_000)
	}
	cases := []struct {
		since int64
		want  int64
	}{
		{0, 5},                     // before First: everything
		{200 * dayMs, 5},           // on First's day, before First
		{200*dayMs + 7_200_000, 5}, // later on First's day: whole days
		{201 * dayMs, 3},
		{210 * dayMs, 2},
		{240*dayMs + 3_600_000, 1}, // at Last
		{240*dayMs + 7_200_000, 0}, // after Last, same day: Last is exact
		{241 * dayMs, 0},
	}
	for _, tc := range cases {
		if got := h.CountSince(tc.since); got != tc.want {
			t.Errorf("CountSince(day %.2f) = %d, want %d", float64(tc.since)/dayMs, got, tc.want)
		}
	}
	var nilH *History
	if nilH.CountSince(0) != 0 {
		t.Error("nil history counts")
	}
}
