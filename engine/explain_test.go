package engine_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tailorhq/tailor/engine"
	"github.com/tailorhq/tailor/rules"
)

const explainRules = `
audiences:
  - id: pro
    when: traits.plan == "pro"
  - id: pro-de
    when: inAudience("pro") && location.countryCode == "DE"
  - id: buyers
    when: eventCount("purchase", "30d") >= 2 && traits.age >= 18
experiences:
  - id: paused
    status: paused
    distribution: [0, 1]
  - id: scheduled
    start: 2030-01-01T00:00:00Z
    distribution: [0, 1]
  - id: ended
    end: 2020-01-01T00:00:00Z
    distribution: [0, 1]
  - id: for-buyers
    audience: buyers
    distribution: [0, 1]
  - id: ns-out
    namespace: {id: ns, range: [0, 0]}
    distribution: [0, 1]
  - id: no-traffic
    traffic: 0
    distribution: [0, 1]
  - id: sticky
    sticky: true
    bucketVersion: 2
    traffic: 0.99
    namespace: {id: ns, range: [0, 1]}
    distribution: [0.5, 0.5]
  - id: pro-only
    audience: pro-de
    distribution: [0.2, 0.3, 0.5]
    components:
      - type: InlineVariable
        key: color
        baseline: blue
        variants: [green, red]
  - id: qa
    status: paused
    distribution: [1, 0]
    qaUsers:
      - {userId: qa-ann, variant: 1}
`

// exposureLog records the exposures an engine emits.
type exposureLog struct {
	mu   sync.Mutex
	list []engine.Exposure
}

func (l *exposureLog) option(o *engine.Options) {
	o.OnExposure = func(x engine.Exposure) { l.mu.Lock(); l.list = append(l.list, x); l.mu.Unlock() }
}

func (l *exposureLog) all() []engine.Exposure {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.list)
}

func explainExp(t *testing.T, x *engine.Explanation, id string) engine.ExperienceExplanation {
	t.Helper()
	for _, xe := range x.Experiences {
		if xe.ID == id {
			return xe
		}
	}
	t.Fatalf("no experience %q in the explanation", id)
	return engine.ExperienceExplanation{}
}

// TestExplainReasons explains one profile against rules that exercise
// every reason, and checks each with the values behind it.
func TestExplainReasons(t *testing.T) {
	exp := &exposureLog{}
	e := open(t, explainRules, exp.option)
	ctx := context.Background()
	made := e.clock.Now()
	e.identify(t, "p1", identifyEv("", map[string]any{"plan": "free", "age": 17.0}), track("purchase"))
	e.clock.Advance(time.Hour)

	before := e.dump(t)
	nExposed := len(exp.all())
	x, err := e.Explain(ctx, "p1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.dump(t) != before || len(exp.all()) != nExposed {
		t.Fatal("Explain wrote to the store or emitted exposures")
	}
	if x.ProfileID != "p1" || x.StableID != "p1" || !x.Time.Equal(e.clock.Now()) {
		t.Errorf("header %+v", x)
	}

	// Audiences: every one, with the first failing clause and its reads.
	if len(x.Audiences) != 3 {
		t.Fatalf("%d audiences", len(x.Audiences))
	}
	pro := x.Audiences[0]
	if pro.ID != "pro" || pro.Matched || pro.FailedClause == nil || pro.FailedClause.Expr != `traits.plan == "pro"` ||
		!reflect.DeepEqual(pro.FailedClause.Reads, []rules.Read{{Expr: "traits.plan", Value: "free"}}) {
		t.Errorf("pro: %+v %+v", pro, pro.FailedClause)
	}
	if c := x.Audiences[1].FailedClause; c == nil || c.Expr != `inAudience("pro")` {
		t.Errorf("pro-de: %+v", c)
	}
	buyers := x.Audiences[2]
	if c := buyers.FailedClause; c == nil || c.Expr != `eventCount("purchase", "30d") >= 2` ||
		!reflect.DeepEqual(c.Reads, []rules.Read{{Expr: `eventCount("purchase", "30d")`, Value: int64(1)}}) {
		t.Errorf("buyers: %+v", c)
	}

	want := map[string]engine.Reason{
		"paused": engine.ReasonNotRunning, "scheduled": engine.ReasonNotStarted, "ended": engine.ReasonEnded,
		"for-buyers": engine.ReasonAudience, "ns-out": engine.ReasonNamespace, "no-traffic": engine.ReasonTraffic,
		"sticky": engine.ReasonSticky, "pro-only": engine.ReasonAudience, "qa": engine.ReasonNotRunning,
	}
	for id, r := range want {
		xe := explainExp(t, x, id)
		if xe.Reason != r || xe.In != r.In() || xe.Why == "" {
			t.Errorf("%s: reason %v (%q), want %v", id, xe.Reason, xe.Why, r)
		}
	}
	ns := explainExp(t, x, "ns-out")
	if ns.NamespaceDraw == nil || *ns.NamespaceDraw < 0 || *ns.NamespaceDraw >= 1 || ns.TrafficDraw != nil {
		t.Errorf("ns-out draws: %+v", ns)
	}
	nt := explainExp(t, x, "no-traffic")
	if nt.TrafficDraw == nil || *nt.TrafficDraw < 0 || nt.DistributionDraw != nil {
		t.Errorf("no-traffic draws: %+v", nt)
	}

	// The sticky experience was drawn by the Identify, and stored with
	// its time and bucket version.
	st := explainExp(t, x, "sticky")
	if st.Assignment == nil || st.Assignment.BucketVersion != 2 || !st.Assignment.At.Equal(made) || !st.Assignment.Current ||
		st.Variant != st.Assignment.Variant || !slices.Equal(st.Exposed, []int{st.Variant}) {
		t.Errorf("sticky: %+v %+v", st, st.Assignment)
	}
	if len(x.Assignments) != 1 || x.Assignments[0] != *st.Assignment || x.Assignments[0].ExperienceID != "sticky" {
		t.Errorf("assignments %+v", x.Assignments)
	}

	// A new bucket version: the old assignment is history, not current,
	// and the variant is drawn again, with every draw shown.
	e.SetRules(mustRules(t, mustReplace(t, explainRules, "bucketVersion: 2", "bucketVersion: 3")))
	x, err = e.Explain(ctx, "p1", nil)
	if err != nil {
		t.Fatal(err)
	}
	st = explainExp(t, x, "sticky")
	if st.Reason != engine.ReasonDrawn || st.Assignment != nil || st.NamespaceDraw == nil || st.TrafficDraw == nil ||
		st.DistributionDraw == nil || !reflect.DeepEqual(st.Distribution, []float64{0.5, 0.5}) {
		t.Errorf("redrawn: %+v", st)
	}
	if v := 0; *st.DistributionDraw >= 0.5 {
		v = 1
		if st.Variant != v {
			t.Errorf("draw %v gives variant %d", *st.DistributionDraw, st.Variant)
		}
	} else if st.Variant != v {
		t.Errorf("draw %v gives variant %d", *st.DistributionDraw, st.Variant)
	}
	if len(x.Assignments) != 1 || x.Assignments[0].Current || x.Assignments[0].BucketVersion != 2 {
		t.Errorf("history %+v", x.Assignments)
	}

	if _, err := e.Explain(ctx, "nobody", nil); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("unknown profile: %v", err)
	}
	if _, err := e.Explain(ctx, "", nil); !errors.Is(err, engine.ErrInvalidInput) {
		t.Errorf("empty id: %v", err)
	}
}

// TestExplainAgreesWithGet explains many generated profiles against the
// benchmark rules (100 audiences of mixed shapes, 20 experiences with
// traffic, namespaces and stickiness): audiences matched, experiences in
// and their variants must be what Get returns, and every draw shown must
// lead to the decision.
func TestExplainAgreesWithGet(t *testing.T) {
	e := open(t, benchRulesYAML(100, 20), nil)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(3, 4))
	n := 300
	if testing.Short() {
		n = 60
	}
	set := e.Rules()
	for i := range n {
		id := fmt.Sprintf("v-%d-%d", i, r.IntN(1e9))
		evs := benchEvents(i, e.clock.Now())
		if i%3 == 0 {
			evs = append(evs, track("purchase"), track("purchase"))
		}
		e.identify(t, id, evs...)
		got, err := e.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		x, err := e.Explain(ctx, id, nil)
		if err != nil {
			t.Fatal(err)
		}
		var matched []string
		for _, a := range x.Audiences {
			if a.Matched {
				matched = append(matched, a.ID)
			} else if a.FailedClause == nil && a.Error == "" {
				t.Fatalf("audience %s: not matched and no clause", a.ID)
			}
		}
		if !slices.Equal(matched, got.Profile.Audiences) {
			t.Fatalf("profile %s: Explain matches %v, Get %v", id, matched, got.Profile.Audiences)
		}
		var in []engine.SelectedExperience
		for j, xe := range x.Experiences {
			if xe.In {
				in = append(in, engine.SelectedExperience{ExperienceID: xe.ID, VariantIndex: xe.Variant})
			}
			checkDraws(t, &set.Experiences[j], xe)
		}
		if len(in) != len(got.Experiences) {
			t.Fatalf("profile %s: Explain has %d experiences, Get %d", id, len(in), len(got.Experiences))
		}
		for j, s := range got.Experiences {
			if in[j].ExperienceID != s.ExperienceID || in[j].VariantIndex != s.VariantIndex {
				t.Fatalf("profile %s: Explain %+v, Get %+v", id, in[j], s)
			}
		}
	}
}

// checkDraws checks that the draws of an explanation lead to its reason.
func checkDraws(t *testing.T, x *rules.Experience, xe engine.ExperienceExplanation) {
	t.Helper()
	if d := xe.NamespaceDraw; d != nil {
		inRange := *d >= x.Namespace.Range[0] && *d < x.Namespace.Range[1]
		if inRange == (xe.Reason == engine.ReasonNamespace) {
			t.Fatalf("%s: namespace draw %v, range %v, reason %v", x.ID, *d, x.Namespace.Range, xe.Reason)
		}
	}
	if d := xe.TrafficDraw; d != nil && (*d >= x.Traffic) != (xe.Reason == engine.ReasonTraffic) {
		t.Fatalf("%s: traffic draw %v, traffic %v, reason %v", x.ID, *d, x.Traffic, xe.Reason)
	}
	if d := xe.DistributionDraw; d != nil {
		acc, v := 0.0, -1
		for i, p := range x.Distribution {
			acc += p
			if *d < acc {
				v = i
				break
			}
		}
		if v != xe.Variant {
			t.Fatalf("%s: distribution draw %v of %v gives %d, explanation says %d", x.ID, *d, x.Distribution, v, xe.Variant)
		}
	}
	if (xe.Reason == engine.ReasonDrawn) != (xe.DistributionDraw != nil) {
		t.Fatalf("%s: reason %v, distribution draw %v", x.ID, xe.Reason, xe.DistributionDraw)
	}
}

// TestOverrides forces variants and audiences for one request: what is
// forced is returned, never stored as sticky, never exposed, and not
// locked by a component event of the same request.
func TestOverrides(t *testing.T) {
	exp := &exposureLog{}
	e := open(t, explainRules, exp.option)
	ctx := context.Background()
	e.identify(t, "p1", identifyEv("", map[string]any{"plan": "free"}))
	base := len(exp.all())
	stickyBefore, err := e.Explain(ctx, "p1", nil)
	if err != nil {
		t.Fatal(err)
	}
	sv := explainExp(t, stickyBefore, "sticky").Variant

	v1 := 1 - sv // the other variant
	ov := &engine.Overrides{
		Variants:  map[string]int{"paused": 1, "sticky": 1 - sv},
		Audiences: map[string]bool{"pro": true},
	}
	resp, err := e.Identify(ctx, "p1", engine.Request{Overrides: ov, Events: []engine.Event{
		{Type: engine.EventComponent, ComponentID: "c", ExperienceID: "sticky", VariantIndex: &v1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := selected(resp, "paused"); !ok || s.VariantIndex != 1 || s.Sticky {
		t.Errorf("forced paused: %+v %v", s, ok)
	}
	if s, ok := selected(resp, "sticky"); !ok || s.VariantIndex != 1-sv || s.Sticky {
		t.Errorf("forced sticky: %+v %v", s, ok)
	}
	// pro forced in: pro-de (inAudience("pro") && DE) still needs DE.
	if !hasAudience(resp.Profile, "pro") || hasAudience(resp.Profile, "pro-de") {
		t.Errorf("audiences %v", resp.Profile.Audiences)
	}
	if got := exp.all(); len(got) != base {
		t.Errorf("overrides emitted exposures: %+v", got[base:])
	}
	if resp.Profile.StickyVariants["sticky"] != sv {
		t.Errorf("the forced variant was stored: %v", resp.Profile.StickyVariants)
	}
	// Nothing of it stays.
	got, err := e.Get(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := selected(got, "paused"); ok || hasAudience(got.Profile, "pro") || got.Profile.StickyVariants["sticky"] != sv {
		t.Errorf("after the override: %+v %+v", got.Experiences, got.Profile)
	}

	// The same component event without an override locks the variant.
	if _, err := e.Identify(ctx, "p1", engine.Request{Events: []engine.Event{
		{Type: engine.EventComponent, ComponentID: "c", ExperienceID: "sticky", VariantIndex: &v1},
	}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.Get(ctx, "p1"); got.Profile.StickyVariants["sticky"] != v1 {
		t.Errorf("component event did not lock: %v", got.Profile.StickyVariants)
	}

	// Explain with the overrides shows them as forced.
	x, err := e.Explain(ctx, "p1", &engine.Overrides{Variants: map[string]int{"paused": 1}, Audiences: map[string]bool{"pro": true, "buyers": false}})
	if err != nil {
		t.Fatal(err)
	}
	if xe := explainExp(t, x, "paused"); xe.Reason != engine.ReasonOverride || !xe.In || xe.Variant != 1 {
		t.Errorf("paused: %+v", xe)
	}
	if a := x.Audiences[0]; !a.Forced || !a.Matched || a.FailedClause != nil {
		t.Errorf("pro: %+v", a)
	}
	if a := x.Audiences[1]; a.Forced || a.Matched || a.FailedClause == nil || a.FailedClause.Expr != `location.countryCode == "DE"` {
		t.Errorf("pro-de: %+v %+v", a, a.FailedClause)
	}
	if a := x.Audiences[2]; !a.Forced || a.Matched {
		t.Errorf("buyers: %+v", a)
	}

	// Bad overrides name the field and write nothing.
	before := e.dump(t)
	for _, tc := range []struct {
		ov    *engine.Overrides
		field string
	}{
		{&engine.Overrides{Variants: map[string]int{"nope": 0}}, `overrides.variants["nope"]`},
		{&engine.Overrides{Variants: map[string]int{"paused": 2}}, `overrides.variants["paused"]`},
		{&engine.Overrides{Variants: map[string]int{"paused": -1}}, `overrides.variants["paused"]`},
		{&engine.Overrides{Audiences: map[string]bool{"nope": true}}, `overrides.audiences["nope"]`},
	} {
		_, err := e.Identify(ctx, "p1", engine.Request{Overrides: tc.ov, Events: []engine.Event{page("/")}})
		var in *engine.InputError
		if !errors.As(err, &in) || in.Field != tc.field {
			t.Errorf("%+v: %v, want field %s", tc.ov, err, tc.field)
		}
		if _, err := e.Explain(ctx, "p1", tc.ov); !errors.As(err, &in) || in.Field != tc.field {
			t.Errorf("Explain %+v: %v", tc.ov, err)
		}
	}
	many := &engine.Overrides{Audiences: map[string]bool{}}
	for i := range engine.MaxOverrides + 1 {
		many.Audiences[fmt.Sprint("a", i)] = true
	}
	if _, err := e.Identify(ctx, "p1", engine.Request{Overrides: many, Events: []engine.Event{page("/")}}); !errors.Is(err, engine.ErrInvalidInput) {
		t.Errorf("too many overrides: %v", err)
	}
	if e.dump(t) != before {
		t.Error("a refused request wrote")
	}
}

// TestQAUsers: a QA user (by userId or profile id) always gets the listed
// variant, even of a paused experience; it is not stored, not exposed,
// and not locked by a component event.
func TestQAUsers(t *testing.T) {
	exp := &exposureLog{}
	e := open(t, explainRules+"      - {profileId: qa-device, variant: 1}\n", exp.option)
	ctx := context.Background()
	v0 := 0
	resp := e.identify(t, "p1", identifyEv("qa-ann", nil),
		engine.Event{Type: engine.EventComponent, ComponentID: "c", ExperienceID: "qa", VariantIndex: &v0})
	if s, ok := selected(resp, "qa"); !ok || s.VariantIndex != 1 || s.Sticky {
		t.Errorf("qa-ann: %+v %v", s, ok)
	}
	resp = e.identify(t, "qa-device", page("/"))
	if s, ok := selected(resp, "qa"); !ok || s.VariantIndex != 1 {
		t.Errorf("qa-device: %+v %v", s, ok)
	}
	resp = e.identify(t, "p2", identifyEv("bob", nil))
	if _, ok := selected(resp, "qa"); ok {
		t.Error("bob is in the paused experience")
	}
	for _, x := range exp.all() {
		if x.ExperienceID == "qa" {
			t.Errorf("QA exposure %+v", x)
		}
	}
	x, err := e.Explain(ctx, "p1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if xe := explainExp(t, x, "qa"); xe.Reason != engine.ReasonQAUser || xe.Variant != 1 || xe.Why != `QA user (userId "qa-ann") listed for variant 1` {
		t.Errorf("explained %+v", xe)
	}
	for _, a := range x.Assignments {
		if a.ExperienceID == "qa" {
			t.Errorf("QA variant stored: %+v", a)
		}
	}

	// Decide honours QA users and overrides too.
	set := e.Rules()
	var d engine.Decider
	decs, _ := d.Decide(set, &rules.Env{Now: e.clock.Now()}, engine.Visitor{StableID: "s", UserID: "qa-ann"}, nil)
	if i := slices.IndexFunc(decs, func(d engine.Decision) bool { return set.Experiences[d.Experience].ID == "qa" }); i < 0 ||
		decs[i].Reason != engine.ReasonQAUser || !decs[i].Reason.Forced() || decs[i].Variant != 1 {
		t.Errorf("Decide QA: %+v", decs)
	}
	decs, _ = d.Decide(set, &rules.Env{Now: e.clock.Now(), Location: rules.Location{CountryCode: "DE"}},
		engine.Visitor{StableID: "s", Overrides: &engine.Overrides{Audiences: map[string]bool{"pro": true}}}, nil)
	if !d.Matched()[0] || !d.Matched()[1] ||
		!slices.ContainsFunc(decs, func(d engine.Decision) bool { return set.Experiences[d.Experience].ID == "pro-only" }) {
		t.Errorf("Decide with pro forced: %v %+v", d.Matched(), decs)
	}
}

func TestReasonText(t *testing.T) {
	for _, r := range []engine.Reason{engine.ReasonNotRunning, engine.ReasonNotStarted, engine.ReasonEnded, engine.ReasonAudience,
		engine.ReasonNamespace, engine.ReasonTraffic, engine.ReasonOverride, engine.ReasonQAUser, engine.ReasonSticky, engine.ReasonDrawn} {
		b, err := r.MarshalText()
		if err != nil || len(b) == 0 || r.String() == "no reason" {
			t.Errorf("%d: %q %q %v", r, r.String(), b, err)
		}
		var back engine.Reason
		if err := back.UnmarshalText(b); err != nil || back != r {
			t.Errorf("%q decodes as %v, %v", b, back, err)
		}
	}
	var r engine.Reason
	if err := r.UnmarshalText([]byte("perhaps")); err == nil {
		t.Error("unknown reason decoded")
	}
	if engine.Reason(0).In() || !engine.ReasonDrawn.In() || engine.ReasonTraffic.In() || engine.ReasonSticky.Forced() {
		t.Error("In/Forced")
	}
}

// mustReplace replaces the first old in s with new; old must be there.
func mustReplace(t *testing.T, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("%q not found", old)
	}
	return strings.Replace(s, old, new, 1)
}
