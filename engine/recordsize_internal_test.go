package engine

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/rules"
)

// fullHistory returns a history with a count on each of the HistoryDays
// days before now, each too large for a short varint.
func fullHistory(now time.Time) *rules.History {
	h := new(rules.History)
	for d := range rules.HistoryDays {
		h.AddN(now.Add(-time.Duration(d)*24*time.Hour).UnixMilli(), 1<<30)
	}
	return h
}

// fullHistories returns MaxHistories names filling MaxHistoryBytes, each
// with a full history.
func fullHistories(prefix string, now time.Time) map[string]*rules.History {
	m := make(map[string]*rules.History, MaxHistories)
	name := strings.Repeat("n", MaxHistoryBytes/MaxHistories-len(prefix)-4)
	for i := range MaxHistories {
		m[fmt.Sprintf("%s%04d%s", prefix, i, name)] = fullHistory(now)
	}
	return m
}

// largestPage is a page with every field, and its query, at the limits.
func largestPage() Page {
	f := strings.Repeat("u", MaxURLBytes)
	q := map[string]string{}
	for i := range 4 {
		q[fmt.Sprintf("k%d", i)] = strings.Repeat("v", MaxQueryBytes/4-2)
	}
	return Page{URL: f, Path: f, Referrer: f, Search: f, Title: f, Query: q}
}

// TestLargestRecordFits builds a profile with every field, history and
// list at the limits the engine enforces and checks that it encodes
// within MaxRecordBytes: the record-size check refuses nothing a profile
// within the other limits can hold.
func TestLargestRecordFits(t *testing.T) {
	now := time.Date(2026, 6, 13, 10, 0, 0, 0, time.UTC)
	id := func(i int) string { return fmt.Sprintf("%0*d", MaxIDBytes, i) }
	name := strings.Repeat("l", MaxNameBytes)
	r := newRecord(id(0), now.UnixMilli())
	r.UserID = id(1)
	for i := range MaxMergedIDs {
		r.Merged = append(r.Merged, id(2+i))
	}
	r.Traits = map[string]any{"t": strings.Repeat("t", MaxTraitsBytes-10)}
	r.Location = Location{City: name, PostalCode: name, Region: name, RegionCode: name, Country: name,
		CountryCode: "US", Continent: name, Timezone: name, Coordinates: &Coordinates{Latitude: 1, Longitude: 2}}
	r.UserAgent, r.Locale = name, name
	r.Device = Device{Type: "desktop", OS: name, Browser: name}
	r.Page = largestPage()
	r.Session.LandingPage = largestPage()
	c := strings.Repeat("c", MaxCampaignBytes/5)
	r.Campaign = Campaign{Name: c, Source: c, Medium: c, Term: c, Content: c}
	r.Events = fullHistories("e", now)
	r.Views = fullHistories("/v", now)
	// A rule set of 200 sticky experiences, every variant exposed.
	r.Sticky, r.Exposed = map[string]Assignment{}, map[string][]int{}
	for i := range 200 {
		x := fmt.Sprintf("experience-%04d-%s", i, strings.Repeat("x", 48))
		r.Sticky[x] = Assignment{Variant: 3, Bucket: 1 << 20}
		r.Exposed[x] = []int{0, 1, 2, 3}
	}
	enc, err := encodeRecord(nil, r)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("largest record: %d bytes (MaxRecordBytes %d)", len(enc), MaxRecordBytes)
	if len(enc) > MaxRecordBytes {
		t.Errorf("a record within every limit encodes to %d bytes, over MaxRecordBytes %d", len(enc), MaxRecordBytes)
	}
	if err := checkRecordSize(len(enc)); err != nil {
		t.Error(err)
	}
	if err := checkRecordSize(MaxRecordBytes + 1); err == nil {
		t.Error("a record over MaxRecordBytes passed")
	} else if ie, ok := err.(*InputError); !ok || ie.Field != "profile" {
		t.Errorf("error %v does not name the profile", err)
	}
}

// TestMergeKeepsHistoriesBounded merges two profiles whose histories are
// both full: the survivor keeps the names seen most recently, within
// MaxHistories and MaxHistoryBytes.
func TestMergeKeepsHistoriesBounded(t *testing.T) {
	now := time.Date(2026, 6, 13, 10, 0, 0, 0, time.UTC)
	k, a := newRecord("k", now.UnixMilli()), newRecord("a", now.UnixMilli())
	k.Views, a.Views = fullHistories("/old", now.Add(-time.Hour)), fullHistories("/new", now)
	mergeInto(k, a)
	if len(k.Views) > MaxHistories || historyBytes(k.Views) > MaxHistoryBytes {
		t.Fatalf("merged views: %d names, %d bytes", len(k.Views), historyBytes(k.Views))
	}
	for name := range k.Views {
		if !strings.HasPrefix(name, "/new") {
			t.Fatalf("kept %q, seen before every /new name", name[:8])
		}
	}
}
