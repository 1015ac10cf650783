package engine_test

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/tailorhq/tailor/engine"
	"github.com/tailorhq/tailor/rules"
)

func decisionIDs(ev *engine.Evaluation) map[string]int {
	m := map[string]int{}
	for _, d := range ev.Decisions {
		m[ev.Rules.Experiences[d.Experience].ID] = d.Variant
	}
	return m
}

// TestEvaluate: traits given to Evaluate count for that evaluation only,
// nothing is written, and an unknown profile is a new visitor.
func TestEvaluate(t *testing.T) {
	exp := &exposureLog{}
	e := open(t, explainRules, exp.option)
	ctx := context.Background()
	de := page("/")
	de.Context.Location = &engine.Location{CountryCode: "DE"}
	e.identify(t, "p1", identifyEv("", map[string]any{"plan": "free"}), de)
	before, nExp := e.dump(t), len(exp.all())

	plain, err := e.Evaluate(ctx, "p1", nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.Get(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	ids := decisionIDs(plain)
	if len(ids) != len(got.Experiences) || plain.New || plain.ProfileID != "p1" {
		t.Fatalf("Evaluate %+v, Get %+v", plain, got.Experiences)
	}
	for _, s := range got.Experiences {
		if v, ok := ids[s.ExperienceID]; !ok || v != s.VariantIndex {
			t.Errorf("%s: Evaluate %d %v, Get %d", s.ExperienceID, v, ok, s.VariantIndex)
		}
	}
	for i, d := range plain.Decisions {
		// Identify exposed every variant it returned.
		if !plain.Exposed[i] {
			t.Errorf("%s not marked exposed", plain.Rules.Experiences[d.Experience].ID)
		}
	}

	// pro-only needs plan pro (and DE, which p1 is in): given for this
	// evaluation only.
	if _, ok := ids["pro-only"]; ok {
		t.Error("pro-only for a free plan")
	}
	withTraits, err := e.Evaluate(ctx, "p1", map[string]any{"plan": "pro", "seats": 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := decisionIDs(withTraits)["pro-only"]; !ok {
		t.Errorf("pro-only not decided with plan pro: %v", decisionIDs(withTraits))
	}
	removed, err := e.Evaluate(ctx, "p1", map[string]any{"plan": nil})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := decisionIDs(removed)["pro-only"]; ok {
		t.Error("pro-only without a plan")
	}
	if got, _ := e.Get(ctx, "p1"); got.Profile.Traits["plan"] != "free" {
		t.Errorf("Evaluate stored its traits: %v", got.Profile.Traits)
	}

	fresh, err := e.Evaluate(ctx, "new-visitor", map[string]any{"plan": "pro"})
	if err != nil || !fresh.New || fresh.ProfileID != "new-visitor" {
		t.Fatalf("new visitor: %+v %v", fresh, err)
	}
	if e.dump(t) != before || len(exp.all()) != nExp {
		t.Error("Evaluate wrote or emitted exposures")
	}
	if _, err := e.Get(ctx, "new-visitor"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("new visitor stored: %v", err)
	}

	for _, tc := range []struct {
		traits map[string]any
		field  string
	}{
		{map[string]any{"x": math.NaN()}, "traits"},
		{map[string]any{"deep": nest(engine.MaxTraitsDepth + 1)}, "traits.deep"},
	} {
		_, err := e.Evaluate(ctx, "p1", tc.traits)
		var in *engine.InputError
		if !errors.As(err, &in) || in.Field[:len(tc.field)] != tc.field {
			t.Errorf("%v: %v", tc.traits, err)
		}
	}
	if _, err := e.Evaluate(ctx, "", nil); !errors.Is(err, engine.ErrInvalidInput) {
		t.Errorf("empty id: %v", err)
	}
}

func nest(n int) map[string]any {
	m := map[string]any{"leaf": true}
	for range n - 1 {
		m = map[string]any{"x": m}
	}
	return m
}

// TestExpose: an exposure is stored and emitted once per profile,
// experience and variant; a sticky variant becomes the assignment.
func TestExpose(t *testing.T) {
	exp := &exposureLog{}
	e := open(t, explainRules, exp.option)
	ctx := context.Background()
	made := e.clock.Now()
	if err := e.Expose(ctx, "fresh", "sticky", 1); err != nil {
		t.Fatal(err)
	}
	if err := e.Expose(ctx, "fresh", "sticky", 1); err != nil {
		t.Fatal(err)
	}
	got := exp.all()
	if len(got) != 1 || got[0] != (engine.Exposure{ProfileID: "fresh", ExperienceID: "sticky", VariantIndex: 1, Time: made.UnixMilli()}) {
		t.Errorf("exposures %+v", got)
	}
	x, err := e.Explain(ctx, "fresh", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(x.Assignments) != 1 || x.Assignments[0].Variant != 1 || !x.Assignments[0].At.Equal(made) || !x.Assignments[0].Current {
		t.Errorf("assignments %+v", x.Assignments)
	}
	ev, err := e.Evaluate(ctx, "fresh", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range ev.Decisions {
		if ev.Rules.Experiences[d.Experience].ID == "sticky" && (d.Variant != 1 || d.Reason != engine.ReasonSticky || !ev.Exposed[i]) {
			t.Errorf("after Expose: %+v exposed %v", d, ev.Exposed[i])
		}
	}
	// A non-sticky experience: exposed, no assignment.
	if err := e.Expose(ctx, "fresh", "no-traffic", 0); err != nil {
		t.Fatal(err)
	}
	if n := len(exp.all()); n != 2 {
		t.Errorf("%d exposures", n)
	}
	// A QA user's variant is forced: nothing happens.
	e.identify(t, "qa-p", identifyEv("qa-ann", nil))
	before, n := e.dump(t), len(exp.all())
	if err := e.Expose(ctx, "qa-p", "qa", 1); err != nil {
		t.Fatal(err)
	}
	if e.dump(t) != before || len(exp.all()) != n {
		t.Error("QA user exposed")
	}
	for _, tc := range []struct {
		exp   string
		v     int
		field string
	}{{"nope", 0, "experienceId"}, {"sticky", 2, "variantIndex"}, {"sticky", -1, "variantIndex"}} {
		var in *engine.InputError
		if err := e.Expose(ctx, "fresh", tc.exp, tc.v); !errors.As(err, &in) || in.Field != tc.field {
			t.Errorf("Expose(%s, %d): %v", tc.exp, tc.v, err)
		}
	}
}

func TestOnRulesChange(t *testing.T) {
	e := open(t, explainRules, nil)
	var got []*rules.Set
	cancel := e.OnRulesChange(func(s *rules.Set) { got = append(got, s) })
	s1 := mustRules(t, decideRules)
	e.SetRules(s1)
	e.SetRules(nil)
	cancel()
	cancel()
	e.SetRules(s1)
	if len(got) != 2 || got[0] != s1 || len(got[1].Experiences) != 0 {
		t.Errorf("notified %v", got)
	}
}
