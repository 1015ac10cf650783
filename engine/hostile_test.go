package engine_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/engine"
	"github.com/tailorhq/tailor/rules"
)

// nested returns a value nested depth maps deep.
func nested(depth int) map[string]any {
	v := map[string]any{"leaf": 1.0}
	for range depth - 1 {
		v = map[string]any{"k": v}
	}
	return v
}

// TestHostileInput sends what an attacker or a broken client would: each
// request must fail with an *InputError naming a field, write nothing,
// and leave the engine serving.
func TestHostileInput(t *testing.T) {
	bad := "bad\xff\xfeutf8"
	many := make([]engine.Event, 10_000)
	for i := range many {
		many[i] = page("/")
	}
	tooManyIdentify := make([]engine.Event, engine.MaxIdentifyEvents+1)
	for i := range tooManyIdentify {
		tooManyIdentify[i] = identifyEv("", nil)
	}
	withTime := func(ts string) engine.Event { ev := page("/"); ev.Timestamp = ts; return ev }
	withPage := func(p engine.Page) engine.Event {
		return engine.Event{Type: engine.EventPage, Context: engine.EventContext{Page: &p}}
	}
	nan, inf := math.NaN(), math.Inf(1)
	tests := []struct {
		name  string
		id    string
		evs   []engine.Event
		field string // prefix of InputError.Field
	}{
		{"no events", "p", nil, "events"},
		{"10,000 events", "p", many, "events"},
		{"too many identify events", "p", tooManyIdentify, "events"},
		{"traits nested 9 deep", "p", []engine.Event{identifyEv("", nested(engine.MaxTraitsDepth+1))}, "events[0].traits"},
		{"traits nested 10,000 deep", "p", []engine.Event{identifyEv("", nested(10_000))}, "events[0].traits"},
		{"properties nested 100 deep", "p", []engine.Event{{Type: "track", Event: "x", Properties: nested(100)}}, "events[0].properties"},
		{"huge trait key", "p", []engine.Event{identifyEv("", map[string]any{strings.Repeat("k", 64<<10): 1.0})}, "events[0].traits"},
		{"traits over 32 KiB", "p", []engine.Event{identifyEv("", map[string]any{"k": strings.Repeat("v", 40<<10)})}, "events[0].traits"},
		{"invalid UTF-8 trait value", "p", []engine.Event{identifyEv("", map[string]any{"k": bad})}, "events[0].traits"},
		{"invalid UTF-8 trait key", "p", []engine.Event{identifyEv("", map[string]any{bad: 1.0})}, "events[0].traits"},
		{"invalid UTF-8 user id", "p", []engine.Event{identifyEv(bad, nil)}, "events[0].userId"},
		{"invalid UTF-8 page path", "p", []engine.Event{withPage(engine.Page{Path: bad})}, "events[0].context.page.path"},
		{"invalid UTF-8 event name", "p", []engine.Event{track(bad)}, "events[0].event"},
		{"NaN trait", "p", []engine.Event{identifyEv("", map[string]any{"k": nan})}, "events[0].traits"},
		{"Inf trait in an array", "p", []engine.Event{identifyEv("", map[string]any{"k": []any{1.0, inf}})}, "events[0].traits"},
		{"NaN property", "p", []engine.Event{{Type: "track", Event: "x", Properties: map[string]any{"v": nan}}}, "events[0].properties"},
		{"Inf view duration", "p", []engine.Event{{Type: "component", ComponentID: "c", ViewDurationMs: inf}}, "events[0].viewDurationMs"},
		{"NaN latitude", "p", []engine.Event{{Type: "page", Context: engine.EventContext{Location: &engine.Location{
			Coordinates: &engine.Coordinates{Latitude: nan}}}}}, "events[0].context.location"},
		{"timestamp in 1970", "p", []engine.Event{withTime("1970-01-01T00:00:00Z")}, "events[0].timestamp"},
		{"timestamp in year 1", "p", []engine.Event{withTime("0001-01-01T00:00:00Z")}, "events[0].timestamp"},
		{"timestamp in 9999", "p", []engine.Event{withTime("9999-12-31T23:59:59Z")}, "events[0].timestamp"},
		{"timestamp next year", "p", []engine.Event{withTime(time.Now().AddDate(1, 0, 0).Format(time.RFC3339))}, "events[0].timestamp"},
		{"timestamp not a time", "p", []engine.Event{withTime("yesterday")}, "events[0].timestamp"},
		{"sentAt with an absurd year", "p", []engine.Event{{Type: "page", SentAt: "99999-01-01T00:00:00Z"}}, "events[0].sentAt"},
		{"unknown event type", "p", []engine.Event{{Type: "<script>"}}, "events[0].type"},
		{"profile id with a slash", "a/b", []engine.Event{page("/")}, "profileId"},
		{"profile id with dot-dot", "../../etc/passwd", []engine.Event{page("/")}, "profileId"},
		{"profile id with a backslash", `a\b`, []engine.Event{page("/")}, "profileId"},
		{"profile id with NUL", "a\x00b", []engine.Event{page("/")}, "profileId"},
		{"profile id with a newline", "a\nb", []engine.Event{page("/")}, "profileId"},
		{"profile id with DEL", "a\x7fb", []engine.Event{page("/")}, "profileId"},
		{"profile id of invalid UTF-8", bad, []engine.Event{page("/")}, "profileId"},
		{"profile id of 10 KB", strings.Repeat("a", 10_000), []engine.Event{page("/")}, "profileId"},
		{"user id with control characters", "p", []engine.Event{identifyEv("u\x1b[31m", nil)}, "events[0].userId"},
	}
	e := open(t, planRules, nil)
	ctx := context.Background()
	seed := e.identify(t, "seed", identifyEv("user-1", map[string]any{"plan": "pro"})).Profile
	before := e.dump(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.Identify(ctx, tt.id, engine.Request{Events: tt.evs})
			var ie *engine.InputError
			if !errors.As(err, &ie) || !errors.Is(err, engine.ErrInvalidInput) {
				t.Fatalf("Identify: %v, want an *InputError", err)
			}
			if !strings.HasPrefix(ie.Field, tt.field) {
				t.Errorf("field %q, want %q…", ie.Field, tt.field)
			}
			if len(err.Error()) > 1024 {
				t.Errorf("error message of %d bytes echoes the input", len(err.Error()))
			}
			if tt.id != "p" {
				if _, err := e.Get(ctx, tt.id); !errors.Is(err, engine.ErrInvalidInput) {
					t.Errorf("Get(hostile id): %v, want ErrInvalidInput", err)
				}
				if err := e.Delete(ctx, tt.id); !errors.Is(err, engine.ErrInvalidInput) {
					t.Errorf("Delete(hostile id): %v, want ErrInvalidInput", err)
				}
			}
		})
	}
	if after := e.dump(t); after != before {
		t.Errorf("hostile requests wrote:\n%s\nwas\n%s", after, before)
	}
	// Still serving, with the seeded profile intact.
	r := e.identify(t, "seed", page("/after"))
	if r.Profile.Traits["plan"] != seed.Traits["plan"] || !hasAudience(r.Profile, "pro") {
		t.Errorf("seeded profile changed: %+v", r.Profile)
	}
}

// TestHostileRules loads rules that divide by zero, recurse or try to
// exhaust memory or CPU: loading rejects what can be caught statically
// with the rule id and position; what fails at run time makes that
// audience not match, and Identify still answers.
func TestHostileRules(t *testing.T) {
	rejected := []struct{ name, when, want string }{
		{"integer division by zero", `1 % 0 == 0`, "divide by zero"},
		{"self reference", `inAudience("a")`, "cycle"},
		{"absurd window", `eventCount("x", "99999999999d") > 0`, "window"},
		{"not boolean", `1 / 0`, "bool"},
		// Rules that used to load and then run for seconds per request (or
		// fail on expr's memory budget): refused for their cost.
		{"huge range", `len(1..1000000000) > 0`, "over the budget"},
		{"nested loops", `all(1..100000, all(1..100000, # > 0))`, "over the budget"},
		{"huge string", `repeat("x", 1000000000) != ""`, "over the budget"},
	}
	for _, tt := range rejected {
		t.Run("rejected/"+tt.name, func(t *testing.T) {
			_, err := rules.Parse("hostile.yaml", []byte("audiences:\n  - id: a\n    when: '"+tt.when+"'\n"))
			if err == nil {
				t.Fatal("Parse accepted the rule")
			}
			if msg := err.Error(); !strings.Contains(msg, `"a"`) || !strings.Contains(msg, "hostile.yaml:3:") || !strings.Contains(msg, tt.want) {
				t.Errorf("error %q lacks the rule id, position or %q", msg, tt.want)
			}
		})
	}

	atRunTime := []struct{ name, when string }{
		{"float division by zero", `traits.n / traits.zero > 1 && false`},
		{"integer division by zero at run time", `int(traits.n) % int(traits.zero) == 0`},
		{"bad window", `hasEvent("x", traits.plan)`},
		{"missing nested trait", `traits.no.such.path == 1`},
	}
	for _, tt := range atRunTime {
		t.Run("run time/"+tt.name, func(t *testing.T) {
			src := "audiences:\n  - id: hostile\n    when: '" + tt.when + "'\n  - id: fine\n    when: 'true'\n"
			e := open(t, src, nil)
			r, err := e.Identify(context.Background(), "p", engine.Request{Events: []engine.Event{
				identifyEv("", map[string]any{"n": 1.0, "zero": 0.0})}})
			if err != nil {
				t.Fatalf("Identify: %v", err)
			}
			if hasAudience(r.Profile, "hostile") || !hasAudience(r.Profile, "fine") {
				t.Errorf("audiences %v, want only fine", r.Profile.Audiences)
			}
		})
	}
}
