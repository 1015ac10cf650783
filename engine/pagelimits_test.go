package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tailorhq/tailor/engine"
	"github.com/tailorhq/tailor/rules"
)

// TestPageDataBounded is the regression test of a page event with 120
// query keys of 8 KB each (961 KB) stored whole as the page and landing
// page: every free-text field stored from a request is bounded, and a
// request over a bound is refused with the field named, nothing written.
func TestPageDataBounded(t *testing.T) {
	big := strings.Repeat("x", engine.MaxURLBytes+1)
	withPage := func(p engine.Page) engine.Event {
		return engine.Event{Type: engine.EventPage, Context: engine.EventContext{Page: &p}}
	}
	query := func(keys, valueBytes int) map[string]string {
		q := make(map[string]string, keys)
		for i := range keys {
			q[fmt.Sprintf("k%03d", i)] = strings.Repeat("v", valueBytes)
		}
		return q
	}
	withProps := func(props map[string]any) engine.Event {
		return engine.Event{Type: engine.EventPage, Properties: props}
	}
	campaign := func(c engine.Campaign) engine.Event {
		return engine.Event{Type: engine.EventPage, Context: engine.EventContext{Campaign: &c}}
	}
	half := strings.Repeat("c", engine.MaxCampaignBytes/2+1)
	tests := []struct {
		name  string
		ev    engine.Event
		field string
	}{
		{"120 query keys of 8 KB", withPage(engine.Page{Path: "/", Query: query(120, 8000)}), "events[0].context.page.query"},
		{"query over its total", withPage(engine.Page{Path: "/", Query: query(3, engine.MaxQueryBytes/3)}), "events[0].context.page.query"},
		{"query value", withPage(engine.Page{Query: map[string]string{"k": big}}), "events[0].context.page.query.k"},
		{"query key", withPage(engine.Page{Query: map[string]string{strings.Repeat("k", engine.MaxNameBytes+1): "v"}}), "events[0].context.page.query"},
		{"url", withPage(engine.Page{URL: "https://x.test/" + big}), "events[0].context.page.url"},
		{"path", withPage(engine.Page{Path: "/" + big}), "events[0].context.page.path"},
		{"referrer", withPage(engine.Page{Referrer: big}), "events[0].context.page.referrer"},
		{"search", withPage(engine.Page{Search: "?" + big}), "events[0].context.page.search"},
		{"title", withPage(engine.Page{Title: big}), "events[0].context.page.title"},
		{"properties.url", withProps(map[string]any{"url": "https://x.test/" + big}), "events[0].properties.url"},
		{"properties.path", withProps(map[string]any{"path": "/" + big}), "events[0].properties.path"},
		{"properties.referrer", withProps(map[string]any{"referrer": big}), "events[0].properties.referrer"},
		{"properties.title", withProps(map[string]any{"title": big}), "events[0].properties.title"},
		{"campaign field", campaign(engine.Campaign{Name: big}), "events[0].context.campaign.name"},
		{"campaign over its total", campaign(engine.Campaign{Source: half, Medium: half}), "events[0].context.campaign"},
		{"user agent", engine.Event{Type: engine.EventPage, Context: engine.EventContext{UserAgent: big}}, "events[0].context.userAgent"},
		{"locale", engine.Event{Type: engine.EventPage, Context: engine.EventContext{Locale: big}}, "events[0].context.locale"},
		{"screen name", engine.Event{Type: engine.EventScreen, Name: big}, "events[0].name"},
	}
	e := open(t, planRules, nil)
	ctx := context.Background()
	e.identify(t, "p", page("/seed"))
	before := e.dump(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, id := range []string{"p", "new-profile"} {
				_, err := e.Identify(ctx, id, engine.Request{Events: []engine.Event{page("/ok"), tt.ev}})
				var ie *engine.InputError
				if !errors.As(err, &ie) {
					t.Fatalf("Identify(%s): %v, want an *InputError", id, err)
				}
				if !strings.HasPrefix(ie.Field, strings.Replace(tt.field, "events[0]", "events[1]", 1)) {
					t.Errorf("field %q, want %q", ie.Field, tt.field)
				}
			}
		})
	}
	if after := e.dump(t); after != before {
		t.Errorf("refused requests wrote to the store")
	}
	// At the limits, the page is stored.
	ok := withPage(engine.Page{URL: "https://x.test/" + strings.Repeat("u", engine.MaxURLBytes-15),
		Path: "/" + strings.Repeat("p", engine.MaxURLBytes-1), Query: query(2, engine.MaxQueryBytes/2-4)})
	if _, err := e.Identify(ctx, "p", engine.Request{Events: []engine.Event{ok}}); err != nil {
		t.Errorf("a page at the limits: %v", err)
	}
}

// TestHistoriesBoundedInBytes checks that the page view history keeps
// its names within MaxHistoryBytes however long the paths: the least
// recently viewed are forgotten, as for MaxHistories.
func TestHistoriesBoundedInBytes(t *testing.T) {
	e := open(t, `audiences:
  - id: first
    when: viewedPage("/p000/*")
  - id: last
    when: viewedPage("/p199/*")
`, nil)
	long := strings.Repeat("x", engine.MaxURLBytes-64)
	var r *engine.Response
	for i := range 200 { // 200 paths of 8 KB: 1.6 MB of names
		e.clock.Advance(1)
		r = e.identify(t, "p", page(fmt.Sprintf("/p%03d/%s", i, long)))
	}
	if hasAudience(r.Profile, "first") || !hasAudience(r.Profile, "last") {
		t.Errorf("audiences %v: the oldest view should be forgotten, the newest kept", r.Profile.Audiences)
	}
	b, _, err := e.store.Get(context.Background(), []byte("p/p"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// The views' names, the page and the landing page (8 KB urls and
	// paths), and the daily counts.
	if limit := engine.MaxHistoryBytes + 4*engine.MaxURLBytes + 8192; len(b) > limit {
		t.Errorf("profile record is %d bytes after 200 long paths, want at most %d", len(b), limit)
	}
}

// TestInputLimitsWithinCostModel holds the engine's limits to what the
// rules cost model assumes of the values rules read.
func TestInputLimitsWithinCostModel(t *testing.T) {
	for _, l := range []struct {
		name       string
		limit, max int
	}{
		{"MaxTraitsBytes", engine.MaxTraitsBytes, rules.MaxInputLen},
		{"MaxURLBytes", engine.MaxURLBytes, rules.MaxInputLen},
		{"MaxQueryBytes", engine.MaxQueryBytes, rules.MaxInputLen},
		{"MaxCampaignBytes", engine.MaxCampaignBytes, rules.MaxInputLen},
		{"MaxNameBytes", engine.MaxNameBytes, rules.MaxInputLen},
		{"MaxIDBytes", engine.MaxIDBytes, rules.MaxInputLen},
		{"MaxHistories", engine.MaxHistories, rules.MaxHistoryNames},
		{"MaxHistoryBytes", engine.MaxHistoryBytes, rules.MaxHistoryBytes},
	} {
		if l.limit > l.max {
			t.Errorf("engine.%s = %d, over the %d the rules cost model assumes", l.name, l.limit, l.max)
		}
	}
}
