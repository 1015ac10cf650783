package engine

import (
	"context"
	"testing"
	"time"

	"github.com/tailorhq/tailor/rules"
)

// TestEvaluateAllocs pins the allocations of evaluate on a warm engine
// (pooled scratch) for a profile in two audiences and two experiences:
// the Response and its Profile (1), the experiences, changes and audience
// slices (3), the traits copy and the sticky-variants map (2 each: a map
// and its first group) and the landing-page query (1). Rule evaluation and
// allocation add none.
func TestEvaluateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	set, err := rules.Parse("cache.yaml", []byte(cacheRules))
	if err != nil {
		t.Fatal(err)
	}
	e, err := Open("", &Options{InMemory: true, Rules: set})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	rec := newRecord("p", 0)
	rec.Traits = map[string]any{"plan": "pro", "prefs": map[string]any{"color": "red"}}
	rec.Sticky = map[string]Assignment{"sticky": {Variant: 1}}
	now := time.Date(2026, 6, 13, 10, 0, 0, 0, time.UTC)
	resp := e.evaluate(context.Background(), rec, set, now, false).resp
	if len(resp.Experiences) != 2 || len(resp.Profile.Audiences) != 2 {
		t.Fatalf("experiences %+v audiences %v: the fixture should select 2 and match 2", resp.Experiences, resp.Profile.Audiences)
	}
	const budget = 9
	got := testing.AllocsPerRun(100, func() { e.evaluate(context.Background(), rec, set, now, false) })
	t.Logf("evaluate allocates %v times (budget %d)", got, budget)
	if got > budget {
		t.Errorf("evaluate allocates %v times, budget %d", got, budget)
	}
}
