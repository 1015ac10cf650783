package engine_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/tailorhq/tailor/engine"
	"github.com/tailorhq/tailor/engine/device"
	"github.com/tailorhq/tailor/rules"
)

const decideRules = `
audiences:
  - id: pro
    when: traits.plan == "pro"
experiences:
  - id: paused
    distribution: [0, 1]
    status: paused
  - id: scheduled
    distribution: [0, 1]
    start: 2030-01-01T00:00:00Z
  - id: ended
    distribution: [0, 1]
    end: 2020-01-01T00:00:00Z
  - id: pro-only
    audience: pro
    distribution: [0, 1]
  - id: sticky
    audience: pro
    distribution: [1, 0, 0]
    sticky: true
    bucketVersion: 2
  - id: no-traffic
    traffic: 0
    distribution: [0, 1]
  - id: everyone
    distribution: [0, 0, 1]
`

// TestAllocate pins each rule of allocation (step 7 of "What Identify
// does" in the package documentation) through the public allocation API.
func TestAllocate(t *testing.T) {
	set := mustRules(t, decideRules)
	idx := func(id string) int {
		for i := range set.Experiences {
			if set.Experiences[i].ID == id {
				return i
			}
		}
		t.Fatalf("no experience %q", id)
		return -1
	}
	now := time.Date(2026, 6, 13, 10, 0, 0, 0, time.UTC)
	pro, nobody := []bool{true}, []bool{false}
	tests := []struct {
		name    string
		matched []bool
		sticky  map[string]engine.Assignment
		want    []engine.Decision
	}{
		{"audience matched", pro, nil, []engine.Decision{
			{Experience: idx("pro-only"), Variant: 1, Reason: engine.ReasonDrawn},
			{Experience: idx("sticky"), Variant: 0, Reason: engine.ReasonDrawn},
			{Experience: idx("everyone"), Variant: 2, Reason: engine.ReasonDrawn},
		}},
		{"audience not matched", nobody, nil, []engine.Decision{
			{Experience: idx("everyone"), Variant: 2, Reason: engine.ReasonDrawn},
		}},
		{"stored assignment wins over audience and distribution", nobody,
			map[string]engine.Assignment{"sticky": {Variant: 2, Bucket: 2}}, []engine.Decision{
				{Experience: idx("sticky"), Variant: 2, Stored: true, Reason: engine.ReasonSticky},
				{Experience: idx("everyone"), Variant: 2, Reason: engine.ReasonDrawn},
			}},
		{"assignment of an older bucket is ignored", pro,
			map[string]engine.Assignment{"sticky": {Variant: 2, Bucket: 1}}, []engine.Decision{
				{Experience: idx("pro-only"), Variant: 1, Reason: engine.ReasonDrawn},
				{Experience: idx("sticky"), Variant: 0, Reason: engine.ReasonDrawn},
				{Experience: idx("everyone"), Variant: 2, Reason: engine.ReasonDrawn},
			}},
		{"out-of-range assignments are ignored", pro,
			map[string]engine.Assignment{"sticky": {Variant: 3, Bucket: 2}, "pro-only": {Variant: -1}}, []engine.Decision{
				{Experience: idx("pro-only"), Variant: 1, Reason: engine.ReasonDrawn},
				{Experience: idx("sticky"), Variant: 0, Reason: engine.ReasonDrawn},
				{Experience: idx("everyone"), Variant: 2, Reason: engine.ReasonDrawn},
			}},
		{"assignments of non-sticky experiences are ignored", nobody,
			map[string]engine.Assignment{"pro-only": {Variant: 1}}, []engine.Decision{
				{Experience: idx("everyone"), Variant: 2, Reason: engine.ReasonDrawn},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []engine.Decision{{Experience: 99}}
			got := engine.Allocate(set, tt.matched, engine.Visitor{StableID: "v1", Sticky: tt.sticky}, now, prefix)
			if !reflect.DeepEqual(got[1:], tt.want) || got[0].Experience != 99 {
				t.Errorf("Allocate = %+v, want [{Experience:99}] + %+v", got, tt.want)
			}
		})
	}
}

// TestAllocateSplitAndNamespace checks that a 50/50 split is deterministic
// per visitor and splits visitors, and that the experiences of one
// namespace exclude each other.
func TestAllocateSplitAndNamespace(t *testing.T) {
	set := mustRules(t, `
experiences:
  - id: split
    distribution: [0.5, 0.5]
  - id: left
    distribution: [1]
    namespace: {id: ns, range: [0, 0.3]}
  - id: right
    distribution: [1]
    namespace: {id: ns, range: [0.3, 1]}
`)
	now := time.Now()
	var variants [2]int
	for i := range 2000 {
		v := engine.Visitor{StableID: fmt.Sprintf("visitor-%d", i)}
		got := engine.Allocate(set, nil, v, now, nil)
		again := engine.Allocate(set, nil, v, now, nil)
		if !reflect.DeepEqual(got, again) {
			t.Fatalf("%s: %+v then %+v", v.StableID, got, again)
		}
		if len(got) != 2 || got[0].Experience != 0 {
			t.Fatalf("%s: %+v, want the split and exactly one namespace experience", v.StableID, got)
		}
		variants[got[0].Variant]++
	}
	if variants[0] < 900 || variants[1] < 900 {
		t.Errorf("50/50 split gave %v over 2000 visitors", variants)
	}
}

// TestDecideMatchesIdentify checks that Decide over the rule environment
// of a profile selects what Identify selects: both run one allocation.
func TestDecideMatchesIdentify(t *testing.T) {
	e := open(t, benchRulesYAML(30, 20), nil)
	set := e.Rules()
	var d engine.Decider
	devices := device.New()
	selectedTotal, matchedTotal := 0, 0
	for i := range 40 {
		resp := e.identify(t, fmt.Sprintf("p-%d", i), benchEvents(i, e.clock.Now())...)
		p := resp.Profile
		ctx := benchEvents(i, e.clock.Now())[0].Context
		env := &rules.Env{
			Device:       devices.Detect(ctx.UserAgent),
			Locale:       ctx.Locale,
			UserID:       fmt.Sprintf("user-%d", i),
			Traits:       p.Traits,
			Location:     p.Location,
			Session:      p.Session,
			Page:         *ctx.Page,
			Jurisdiction: p.Jurisdiction,
			Random:       p.Random,
			Now:          e.clock.Now(),
		}
		sticky := map[string]engine.Assignment{}
		for id, v := range p.StickyVariants {
			sticky[id] = engine.Assignment{Variant: v} // bench rules use bucket version 0
		}
		decs, err := d.Decide(set, env, engine.Visitor{StableID: p.StableID, Sticky: sticky}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, dc := range decs {
			got = append(got, fmt.Sprintf("%s=%d", set.Experiences[dc.Experience].ID, dc.Variant))
		}
		var want []string
		for _, x := range resp.Experiences {
			want = append(want, fmt.Sprintf("%s=%d", x.ExperienceID, x.VariantIndex))
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("profile %d: Decide %v, Identify %v", i, got, want)
		}
		var audiences []string
		for j, ok := range d.Matched() {
			if ok {
				audiences = append(audiences, set.Audiences[j].ID)
			}
		}
		if fmt.Sprint(audiences) != fmt.Sprint(p.Audiences) {
			t.Errorf("profile %d: Decide audiences %v, Identify %v", i, audiences, p.Audiences)
		}
		selectedTotal += len(decs)
		matchedTotal += len(audiences)
	}
	if selectedTotal < 100 || matchedTotal < 100 {
		t.Errorf("only %d experiences selected and %d audiences matched over 40 profiles: the test compares too little",
			selectedTotal, matchedTotal)
	}
}

// TestDecideRuleError checks that an audience failing at run time does
// not match, is reported, and does not stop the decisions.
func TestDecideRuleError(t *testing.T) {
	set := mustRules(t, `
audiences:
  - id: bad
    when: traits.n > 3
experiences:
  - id: for-bad
    audience: bad
    distribution: [0, 1]
  - id: everyone
    distribution: [0, 1]
`)
	var d engine.Decider
	env := &rules.Env{Traits: map[string]any{"n": "not a number"}}
	decs, err := d.Decide(set, env, engine.Visitor{StableID: "v"}, nil)
	if err == nil {
		t.Fatal("Decide returned no error for a failing rule")
	}
	if len(decs) != 1 || decs[0].Experience != 1 || d.Matched()[0] {
		t.Errorf("decisions %+v, matched %v; want only everyone", decs, d.Matched())
	}
}

// TestAllocationBudgets pins the allocations of the warm evaluation path
// (HOUSE_STYLE "Hot paths"): issue 6 targets 1 and 3.
func TestAllocationBudgets(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	peer := mustRules(t, peerRules)
	bench := benchRules()
	peerEnv := &rules.Env{Traits: map[string]any{"plan": "pro"}, Location: rules.Location{CountryCode: "US"}, Now: time.Now()}
	matched := make([]bool, len(bench.Audiences))
	for i := range matched {
		matched[i] = i%2 == 0
	}
	sticky := map[string]engine.Assignment{"exp-0": {Variant: 1}}
	var d engine.Decider
	dst := make([]engine.Decision, 0, 32)
	tests := []struct {
		name string
		max  float64
		fn   func()
	}{
		{"peer scenario Decide", 0, func() {
			dst, _ = d.Decide(peer, peerEnv, engine.Visitor{StableID: "visitor-1"}, dst[:0])
		}},
		{"Allocate 20 experiences", 0, func() {
			dst = engine.Allocate(bench, matched, engine.Visitor{StableID: "visitor-1", Sticky: sticky}, peerEnv.Now, dst[:0])
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn() // warm up pools and scratch
			if got := testing.AllocsPerRun(200, tt.fn); got > tt.max {
				t.Errorf("%v allocs per run, budget %v", got, tt.max)
			}
		})
	}
}

// Evaluating without the store, as a feature-flag SDK does: the caller
// keeps the visitor's attributes and passes them in a rules.Env.
func ExampleDecider_Decide() {
	set, err := rules.Parse("rules.yaml", []byte(`
audiences:
  - id: na-pro
    when: location.countryCode in ["US", "CA"] && traits.plan == "pro"
experiences:
  - id: checkout-test
    audience: na-pro
    distribution: [0.5, 0.5]
`))
	if err != nil {
		panic(err)
	}
	var d engine.Decider // one per goroutine; reuse it
	env := &rules.Env{
		Traits:   map[string]any{"plan": "pro"},
		Location: rules.Location{CountryCode: "CA"},
	}
	decisions := make([]engine.Decision, 0, len(set.Experiences))
	decisions, err = d.Decide(set, env, engine.Visitor{StableID: "user-42"}, decisions[:0])
	if err != nil {
		panic(err)
	}
	for _, dc := range decisions {
		fmt.Println(set.Experiences[dc.Experience].ID, "variant", dc.Variant)
	}
	fmt.Println("in na-pro:", d.Matched()[0])
	// Output:
	// checkout-test variant 1
	// in na-pro: true
}
