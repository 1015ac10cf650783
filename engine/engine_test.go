package engine_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tailorhq/tailor/engine"
)

const planRules = `
audiences:
  - id: pro
    when: traits.plan == "pro"
  - id: buyers
    when: eventCount("purchase") >= 2
`

func TestIdentifyCreatesProfile(t *testing.T) {
	e := open(t, planRules, nil)
	resp := e.identify(t, "", page("/pricing"))
	p := resp.Profile
	if len(p.ID) != 64 {
		t.Errorf("new id %q is not 64 hex characters", p.ID)
	}
	if p.StableID != p.ID {
		t.Errorf("stableId %q, want the creation id %q", p.StableID, p.ID)
	}
	if p.Random < 0 || p.Random >= 1 {
		t.Errorf("random %v outside [0,1)", p.Random)
	}
	if p.Session.Count != 1 || p.Session.IsReturningVisitor {
		t.Errorf("session %+v, want the first session", p.Session)
	}
	if p.Session.LandingPage.Path != "/pricing" || p.Session.LandingPage.Query == nil {
		t.Errorf("landing page %+v", p.Session.LandingPage)
	}
	if p.Jurisdiction != engine.JurisdictionNone {
		t.Errorf("jurisdiction %q without location", p.Jurisdiction)
	}
	again := e.identify(t, p.ID, track("x"))
	if again.Profile.Random != p.Random || again.Profile.StableID != p.StableID {
		t.Error("random or stableId changed on the second call")
	}
	if _, err := e.Get(context.Background(), p.ID); err != nil {
		t.Fatalf("Get: %v", err)
	}
}

func TestUpsertUsesGivenID(t *testing.T) {
	e := open(t, planRules, nil)
	resp := e.identify(t, "my-id", page("/"))
	if resp.Profile.ID != "my-id" || resp.Profile.StableID != "my-id" {
		t.Errorf("profile %q stable %q, want my-id", resp.Profile.ID, resp.Profile.StableID)
	}
}

func TestTraitsMergeAndDelete(t *testing.T) {
	e := open(t, planRules, nil)
	id := e.identify(t, "", identifyEv("", map[string]any{"plan": "pro", "name": "Jane", "age": 41.0})).Profile.ID
	resp := e.identify(t, id, identifyEv("", map[string]any{"name": "Janet", "age": nil, "city": "Oslo"}))
	want := map[string]any{"plan": "pro", "name": "Janet", "city": "Oslo"}
	if fmt.Sprint(resp.Profile.Traits) != fmt.Sprint(want) {
		t.Errorf("traits %v, want %v", resp.Profile.Traits, want)
	}
	if !hasAudience(resp.Profile, "pro") {
		t.Errorf("audiences %v, want pro", resp.Profile.Audiences)
	}
}

func TestMerge(t *testing.T) {
	const stickyRules = planRules + `
experiences:
  - id: exp-a
    distribution: [0.5, 0.5]
    sticky: true
    components:
      - {type: InlineVariable, key: a, baseline: x, variants: [y]}
  - id: exp-b
    distribution: [0.5, 0.5]
    sticky: true
    components:
      - {type: InlineVariable, key: b, baseline: x, variants: [y]}
`
	t.Run("anonymous into known", func(t *testing.T) {
		e := open(t, stickyRules, nil)
		known := e.identify(t, "", identifyEv("user-1", map[string]any{"plan": "pro", "name": "Known"}), track("purchase"))
		kid := known.Profile.ID
		anon := e.identify(t, "", identifyEv("", map[string]any{"name": "Anon", "color": "red"}), track("purchase"))
		aid := anon.Profile.ID
		resp := e.identify(t, aid, identifyEv("user-1", nil))
		p := resp.Profile
		if p.ID != kid {
			t.Fatalf("survivor id %q, want the known profile %q", p.ID, kid)
		}
		if p.StableID != known.Profile.StableID {
			t.Errorf("stableId %q, want the survivor's %q", p.StableID, known.Profile.StableID)
		}
		if p.Traits["name"] != "Known" || p.Traits["color"] != "red" || p.Traits["plan"] != "pro" {
			t.Errorf("traits %v: known must win, anonymous fill gaps", p.Traits)
		}
		if !hasAudience(p, "buyers") {
			t.Errorf("purchase histories did not add up: audiences %v", p.Audiences)
		}
		if p.Session.Count != 2 {
			t.Errorf("session count %d, want 2 (1 + 1)", p.Session.Count)
		}
		for _, x := range []string{"exp-a", "exp-b"} {
			if p.StickyVariants[x] != known.Profile.StickyVariants[x] {
				t.Errorf("sticky %s = %d, want the known profile's %d", x, p.StickyVariants[x], known.Profile.StickyVariants[x])
			}
		}
		// The anonymous id is now an alias of the survivor.
		got, err := e.Get(context.Background(), aid)
		if err != nil || got.Profile.ID != kid {
			t.Fatalf("Get(anonymous id) = %v, %v; want the survivor", got, err)
		}
		again := e.identify(t, aid, track("x"))
		if again.Profile.ID != kid {
			t.Errorf("Identify(anonymous id) went to %q, want %q", again.Profile.ID, kid)
		}
	})

	t.Run("known never merges into known", func(t *testing.T) {
		e := open(t, stickyRules, nil)
		a := e.identify(t, "", identifyEv("user-a", map[string]any{"name": "A"}))
		b := e.identify(t, "", identifyEv("user-b", map[string]any{"name": "B"}))
		before := e.dump(t)
		resp := e.identify(t, a.Profile.ID, identifyEv("user-b", map[string]any{"seen": true}))
		if resp.Profile.ID != b.Profile.ID {
			t.Fatalf("continued on %q, want B's profile %q", resp.Profile.ID, b.Profile.ID)
		}
		if resp.Profile.Traits["name"] != "B" || resp.Profile.Traits["seen"] != true {
			t.Errorf("B's traits %v", resp.Profile.Traits)
		}
		ga, err := e.Get(context.Background(), a.Profile.ID)
		if err != nil || ga.Profile.ID != a.Profile.ID || ga.Profile.Traits["name"] != "A" || ga.Profile.Traits["seen"] != nil {
			t.Errorf("A's profile changed: %+v, %v", ga, err)
		}
		if before == e.dump(t) {
			t.Error("nothing was written for B")
		}
	})

	t.Run("known with a new user id gets a new profile", func(t *testing.T) {
		e := open(t, stickyRules, nil)
		a := e.identify(t, "", identifyEv("user-a", map[string]any{"name": "A"}))
		resp := e.identify(t, a.Profile.ID, identifyEv("user-c", map[string]any{"name": "C"}))
		if resp.Profile.ID == a.Profile.ID {
			t.Fatal("user-c was attached to user-a's profile")
		}
		if resp.Profile.Traits["name"] != "C" {
			t.Errorf("traits %v", resp.Profile.Traits)
		}
		// user-c now resolves to the new profile: another anonymous
		// visitor identifying as user-c merges into it.
		anon := e.identify(t, "", page("/"))
		m := e.identify(t, anon.Profile.ID, identifyEv("user-c", nil))
		if m.Profile.ID != resp.Profile.ID {
			t.Errorf("user-c resolved to %q, want %q", m.Profile.ID, resp.Profile.ID)
		}
		ga, _ := e.Get(context.Background(), a.Profile.ID)
		if ga.Profile.Traits["name"] != "A" {
			t.Errorf("A changed: %v", ga.Profile.Traits)
		}
	})

	t.Run("empty user id never merges", func(t *testing.T) {
		e := open(t, stickyRules, nil)
		a := e.identify(t, "", identifyEv("", map[string]any{"name": "A"}))
		b := e.identify(t, "", identifyEv("", map[string]any{"name": "B"}))
		resp := e.identify(t, b.Profile.ID, identifyEv("", map[string]any{"x": 1.0}))
		if resp.Profile.ID != b.Profile.ID || resp.Profile.Traits["name"] != "B" {
			t.Errorf("empty userId moved the request: %+v", resp.Profile)
		}
		ga, _ := e.Get(context.Background(), a.Profile.ID)
		if ga.Profile.Traits["name"] != "A" {
			t.Errorf("A changed: %v", ga.Profile.Traits)
		}
	})

	t.Run("same user id twice is idempotent", func(t *testing.T) {
		e := open(t, stickyRules, nil)
		a := e.identify(t, "", identifyEv("user-1", nil))
		again := e.identify(t, a.Profile.ID, identifyEv("user-1", map[string]any{"k": "v"}))
		if again.Profile.ID != a.Profile.ID {
			t.Errorf("re-identify moved to %q", again.Profile.ID)
		}
	})
}

func TestDeleteRemovesAliases(t *testing.T) {
	e := open(t, planRules, nil)
	ctx := context.Background()
	known := e.identify(t, "", identifyEv("user-1", nil))
	anon := e.identify(t, "", page("/"))
	e.identify(t, anon.Profile.ID, identifyEv("user-1", nil))
	if err := e.Delete(ctx, anon.Profile.ID); err != nil { // by alias
		t.Fatal(err)
	}
	for _, id := range []string{known.Profile.ID, anon.Profile.ID} {
		if _, err := e.Get(ctx, id); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("Get(%q) after Delete: %v, want ErrNotFound", id, err)
		}
	}
	if d := e.dump(t); d != "" {
		t.Errorf("store not empty after Delete:\n%s", d)
	}
	// The user id is free again.
	fresh := e.identify(t, "", identifyEv("user-1", nil))
	if fresh.Profile.ID == known.Profile.ID {
		t.Error("deleted profile came back")
	}
	if err := e.Delete(ctx, "nobody"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("Delete(missing) = %v, want ErrNotFound", err)
	}
}

func TestSessions(t *testing.T) {
	e := open(t, `
audiences:
  - id: returning
    when: session.isReturningVisitor
`, nil)
	t0 := e.clock.Now()
	r1 := e.identify(t, "", at(page("/a"), t0))
	id := r1.Profile.ID
	r2 := e.identify(t, id, at(page("/b"), t0.Add(29*time.Minute)))
	if r2.Profile.Session.ID != r1.Profile.Session.ID || r2.Profile.Session.Count != 1 {
		t.Errorf("29 minutes later: session %+v, want the same session", r2.Profile.Session)
	}
	if r2.Profile.Session.ActiveSessionLength != 29*60 || r2.Profile.Session.SessionLength != 29*60 {
		t.Errorf("session length %d, want %d", r2.Profile.Session.ActiveSessionLength, 29*60)
	}
	if r2.Profile.Session.LandingPage.Path != "/a" {
		t.Errorf("landing page %q, want /a", r2.Profile.Session.LandingPage.Path)
	}
	if hasAudience(r2.Profile, "returning") {
		t.Error("returning in the first session")
	}
	r3 := e.identify(t, id, at(page("/c"), t0.Add(29*time.Minute+31*time.Minute)))
	s := r3.Profile.Session
	if s.ID == r2.Profile.Session.ID || s.Count != 2 || !s.IsReturningVisitor {
		t.Errorf("after 31 idle minutes: session %+v, want a new, returning session", s)
	}
	if s.LandingPage.Path != "/c" || s.ActiveSessionLength != 0 {
		t.Errorf("new session %+v", s)
	}
	if s.AverageSessionLength != 29*60/2 {
		t.Errorf("average length %d, want %d", s.AverageSessionLength, 29*60/2)
	}
	if !hasAudience(r3.Profile, "returning") {
		t.Errorf("audiences %v, want returning", r3.Profile.Audiences)
	}
}

func TestSessionTimeoutOption(t *testing.T) {
	e := open(t, "", func(o *engine.Options) { o.SessionTimeout = time.Minute })
	t0 := e.clock.Now()
	id := e.identify(t, "", at(page("/"), t0)).Profile.ID
	s := e.identify(t, id, at(page("/"), t0.Add(2*time.Minute))).Profile.Session
	if s.Count != 2 {
		t.Errorf("count %d after 2 minutes with a 1-minute timeout", s.Count)
	}
}

func TestEventsApplyInTimestampOrder(t *testing.T) {
	e := open(t, "", nil)
	t0 := e.clock.Now()
	resp := e.identify(t, "",
		at(page("/second"), t0.Add(time.Minute)),
		at(page("/first"), t0),
	)
	if lp := resp.Profile.Session.LandingPage.Path; lp != "/first" {
		t.Errorf("landing page %q, want /first (the earliest event)", lp)
	}
	if resp.Profile.Session.ActiveSessionLength != 60 {
		t.Errorf("length %d, want 60", resp.Profile.Session.ActiveSessionLength)
	}
}

func TestBehaviourAudiences(t *testing.T) {
	e := open(t, `
audiences:
  - id: buyers
    when: eventCount("purchase", "30d") >= 2
  - id: pricing
    when: viewedPage("/pricing/*")
  - id: utm
    when: campaign.source == "newsletter"
`, nil)
	t0 := e.clock.Now()
	id := e.identify(t, "", at(track("purchase"), t0.Add(-40*24*time.Hour))).Profile.ID
	r := e.identify(t, id, at(track("purchase"), t0))
	if hasAudience(r.Profile, "buyers") {
		t.Error("a purchase 40 days ago counted in a 30-day window")
	}
	p := page("/pricing/pro")
	p.Context.Page.URL = "https://example.com/pricing/pro?utm_source=newsletter"
	p.Context.Page.Search = "?utm_source=newsletter"
	r = e.identify(t, id, at(track("purchase"), t0), at(p, t0))
	for _, a := range []string{"buyers", "pricing", "utm"} {
		if !hasAudience(r.Profile, a) {
			t.Errorf("audiences %v, want %s", r.Profile.Audiences, a)
		}
	}
}

func TestLocationAndJurisdiction(t *testing.T) {
	e := open(t, `
audiences:
  - id: north-america
    when: location.countryCode in ["US", "CA"]
  - id: ccpa
    when: jurisdiction == "CCPA"
`, nil)
	ev := page("/")
	ev.Context.Location = &engine.Location{City: "San Francisco", RegionCode: "CA", CountryCode: "us"}
	r := e.identify(t, "", ev)
	if r.Profile.Location.CountryCode != "US" || r.Profile.Jurisdiction != "CCPA" {
		t.Errorf("location %+v jurisdiction %q", r.Profile.Location, r.Profile.Jurisdiction)
	}
	if !hasAudience(r.Profile, "north-america") || !hasAudience(r.Profile, "ccpa") {
		t.Errorf("audiences %v", r.Profile.Audiences)
	}
	// A later event without location keeps the stored one.
	r = e.identify(t, r.Profile.ID, page("/x"))
	if r.Profile.Location.City != "San Francisco" {
		t.Errorf("stored location lost: %+v", r.Profile.Location)
	}
}

// fakeLocator answers every lookup with one location and counts calls.
type fakeLocator struct {
	mu    sync.Mutex
	calls int
	loc   engine.Location
}

func (f *fakeLocator) Locate(ctx context.Context, ip netip.Addr, locale string) (engine.Location, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	l := f.loc
	l.City += "/" + locale
	return l, nil
}

func TestLocatorNeedsConsent(t *testing.T) {
	loc := &fakeLocator{loc: engine.Location{City: "Berlin", CountryCode: "DE"}}
	e := open(t, "", func(o *engine.Options) { o.Locator = loc })
	ip := netip.MustParseAddr("203.0.113.7")
	ctx := context.Background()
	r, err := e.Identify(ctx, "", engine.Request{Events: []engine.Event{page("/")}, IP: ip})
	if err != nil {
		t.Fatal(err)
	}
	if loc.calls != 0 || r.Profile.Location.City != "" {
		t.Fatalf("looked up without the location feature: %+v", r.Profile.Location)
	}
	r, err = e.Identify(ctx, r.Profile.ID, engine.Request{Events: []engine.Event{page("/")}, IP: ip,
		Locale: "de", Options: engine.RequestOptions{Features: []string{"ip-enrichment"}}})
	if err != nil {
		t.Fatal(err)
	}
	if loc.calls != 1 || r.Profile.Location.City != "Berlin/de" || r.Profile.Jurisdiction != "GDPR" {
		t.Errorf("calls %d location %+v jurisdiction %q", loc.calls, r.Profile.Location, r.Profile.Jurisdiction)
	}
}

func TestInvalidInputWritesNothing(t *testing.T) {
	e := open(t, planRules, nil)
	id := e.identify(t, "", identifyEv("user-1", map[string]any{"plan": "pro"})).Profile.ID
	before := e.dump(t)
	deep := map[string]any{}
	cur := deep
	for range 10 {
		next := map[string]any{}
		cur["k"] = next
		cur = next
	}
	big := map[string]any{"blob": string(make([]byte, engine.MaxTraitsBytes))}
	vi := -1
	tests := []struct {
		name  string
		id    string
		evs   []engine.Event
		field string
	}{
		{"no events", id, nil, "events"},
		{"too many events", id, make([]engine.Event, engine.MaxEvents+1), "events"},
		{"unknown type", id, []engine.Event{{Type: "click"}}, "events[0].type"},
		{"missing type", id, []engine.Event{page("/"), {}}, "events[1].type"},
		{"track without event", id, []engine.Event{{Type: "track"}}, "events[0].event"},
		{"screen without name", id, []engine.Event{{Type: "screen"}}, "events[0].name"},
		{"bad timestamp", id, []engine.Event{{Type: "page", Timestamp: "yesterday"}}, "events[0].timestamp"},
		{"far future", id, []engine.Event{{Type: "page", Timestamp: "2099-01-01T00:00:00Z"}}, "events[0].timestamp"},
		{"far past", id, []engine.Event{{Type: "page", SentAt: "1970-01-01T00:00:00Z"}}, "events[0].sentAt"},
		{"deep traits", id, []engine.Event{identifyEv("", deep)}, "events[0].traits.k.k.k.k.k.k.k.k"},
		{"big traits", id, []engine.Event{identifyEv("", big)}, "events[0].traits"},
		{"long user id", id, []engine.Event{identifyEv(string(make([]byte, 300)), nil)}, "events[0].userId"},
		{"control char in id", "a\x00b", []engine.Event{page("/")}, "profileId"},
		{"invalid utf8 id", "a\xffb", []engine.Event{page("/")}, "profileId"},
		{"bad country", id, []engine.Event{{Type: "page", Context: engine.EventContext{Location: &engine.Location{CountryCode: "ZZ"}}}}, "events[0].context.location.countryCode"},
		{"negative variant", id, []engine.Event{{Type: "component", ComponentID: "c", VariantIndex: &vi}}, "events[0].variantIndex"},
		{"bad channel", id, []engine.Event{{Type: "page", Channel: "fax"}}, "events[0].channel"},
		{"valid then invalid", id, []engine.Event{identifyEv("user-2", map[string]any{"plan": "free"}), {Type: "nope"}}, "events[1].type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "too many events" {
				for i := range tt.evs {
					tt.evs[i] = page("/")
				}
			}
			_, err := e.Identify(context.Background(), tt.id, engine.Request{Events: tt.evs})
			var ie *engine.InputError
			if !errors.As(err, &ie) || !errors.Is(err, engine.ErrInvalidInput) {
				t.Fatalf("err = %v, want an *InputError", err)
			}
			if ie.Field != tt.field {
				t.Errorf("field %q, want %q (%v)", ie.Field, tt.field, err)
			}
			if after := e.dump(t); after != before {
				t.Error("the store changed")
			}
		})
	}
	tooManyIdentifies := make([]engine.Event, engine.MaxIdentifyEvents+1)
	for i := range tooManyIdentifies {
		tooManyIdentifies[i] = identifyEv("", nil)
	}
	if _, err := e.Identify(context.Background(), id, engine.Request{Events: tooManyIdentifies}); !errors.Is(err, engine.ErrInvalidInput) {
		t.Errorf("51 identify events: %v", err)
	}
}

func TestPreflightWritesNothing(t *testing.T) {
	var exposures []engine.Exposure
	e := open(t, planRules+`
experiences:
  - id: exp
    distribution: [0.5, 0.5]
    sticky: true
    components:
      - {type: InlineVariable, key: k, baseline: a, variants: [b]}
`, func(o *engine.Options) { o.OnExposure = func(x engine.Exposure) { exposures = append(exposures, x) } })
	before := e.dump(t)
	resp, err := e.Identify(context.Background(), "pre", engine.Request{
		Events: []engine.Event{identifyEv("user-1", map[string]any{"plan": "pro"})}, Preflight: true})
	if err != nil {
		t.Fatal(err)
	}
	if !hasAudience(resp.Profile, "pro") || len(resp.Experiences) != 1 {
		t.Errorf("preflight did not evaluate: %+v", resp)
	}
	if e.dump(t) != before {
		t.Error("preflight wrote to the store")
	}
	if len(exposures) != 0 {
		t.Errorf("preflight emitted exposures %v", exposures)
	}
	if _, err := e.Get(context.Background(), "pre"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("Get after preflight: %v, want ErrNotFound", err)
	}
}

// TestNoLostUpdate runs 8 goroutines × 500 Identify calls on one profile:
// every track event must be counted, so the count is exact.
func TestNoLostUpdate(t *testing.T) {
	const workers, calls = 8, 500
	const total = workers * calls
	e := open(t, fmt.Sprintf(`
audiences:
  - id: exact
    when: eventCount("tick") == %d
  - id: one-less
    when: eventCount("tick") == %d
`, total, total-1), nil)
	id := e.identify(t, "hot", page("/")).Profile.ID
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range calls {
				if _, err := e.Identify(context.Background(), id, engine.Request{Events: []engine.Event{track("tick")}}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	r, err := e.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !hasAudience(r.Profile, "exact") || hasAudience(r.Profile, "one-less") {
		t.Errorf("audiences %v: the tick count is not exactly %d", r.Profile.Audiences, total)
	}
}

// TestConcurrentMerges races anonymous visitors identifying as the same
// user: every one must end on a single known profile.
func TestConcurrentMerges(t *testing.T) {
	e := open(t, planRules, nil)
	const n = 16
	ids := make([]string, n)
	for i := range ids {
		ids[i] = e.identify(t, "", track("purchase")).Profile.ID
	}
	survivors := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := e.Identify(context.Background(), ids[i], engine.Request{Events: []engine.Event{identifyEv("user-x", nil)}})
			if err != nil {
				t.Error(err)
				return
			}
			survivors[i] = r.Profile.ID
		}()
	}
	wg.Wait()
	for i, s := range survivors {
		if s != survivors[0] {
			t.Fatalf("visitor %d ended on %q, visitor 0 on %q", i, s, survivors[0])
		}
	}
	r, err := e.Get(context.Background(), survivors[0])
	if err != nil {
		t.Fatal(err)
	}
	if r.Profile.Session.Count != n {
		t.Errorf("merged session count %d, want %d", r.Profile.Session.Count, n)
	}
}

func TestClose(t *testing.T) {
	e := open(t, "", nil)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := e.Identify(context.Background(), "", engine.Request{Events: []engine.Event{page("/")}}); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Identify after Close: %v", err)
	}
	if _, err := e.Get(context.Background(), "x"); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Get after Close: %v", err)
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	set := mustRules(t, planRules)
	e, err := engine.Open(dir, &engine.Options{Rules: set, SyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var ids []string
	for i := range 20 {
		r, err := e.Identify(ctx, "", engine.Request{Events: []engine.Event{
			identifyEv(fmt.Sprintf("user-%d", i), map[string]any{"plan": "pro", "i": float64(i)})}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.Profile.ID)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e, err = engine.Open(dir, &engine.Options{Rules: set})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for i, id := range ids {
		r, err := e.Get(ctx, id)
		if err != nil {
			t.Fatalf("profile %d lost after reopen: %v", i, err)
		}
		if r.Profile.Traits["i"] != float64(i) || !hasAudience(r.Profile, "pro") {
			t.Errorf("profile %d: %+v", i, r.Profile)
		}
	}
	// The user ids still resolve.
	anon, _ := e.Identify(ctx, "", engine.Request{Events: []engine.Event{identifyEv("user-3", nil)}})
	if anon.Profile.ID != ids[3] {
		t.Errorf("user-3 resolved to %q, want %q", anon.Profile.ID, ids[3])
	}
}

func TestSetRulesDuringLoad(t *testing.T) {
	a := mustRules(t, `
audiences:
  - id: rules-a
    when: "true"
`)
	b := mustRules(t, `
audiences:
  - id: rules-b
    when: "true"
`)
	e := open(t, "", func(o *engine.Options) { o.Rules = a })
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%2 == 0 {
				e.SetRules(b)
			} else {
				e.SetRules(a)
			}
		}
	}()
	for i := range 200 {
		r, err := e.Identify(context.Background(), fmt.Sprintf("v%d", i%10), engine.Request{Events: []engine.Event{page("/")}})
		if err != nil {
			t.Fatal(err)
		}
		// Each call sees one whole rule set, never a mix or none.
		if len(r.Profile.Audiences) != 1 || (r.Profile.Audiences[0] != "rules-a" && r.Profile.Audiences[0] != "rules-b") {
			t.Fatalf("audiences %v", r.Profile.Audiences)
		}
	}
	close(stop)
	wg.Wait()
	e.SetRules(b)
	if got := e.Rules(); got != b {
		t.Error("Rules() does not return the set in force")
	}
}

func TestContextCancelled(t *testing.T) {
	e := open(t, "", nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	before := e.dump(t)
	if _, err := e.Identify(ctx, "x", engine.Request{Events: []engine.Event{page("/")}}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if e.dump(t) != before {
		t.Error("a cancelled call wrote")
	}
}

func TestDeviceAudience(t *testing.T) {
	e := open(t, `
audiences:
  - id: mobile
    when: device.type == "mobile"
`, nil)
	ev := page("/")
	ev.Context.UserAgent = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
	r := e.identify(t, "", ev)
	if !hasAudience(r.Profile, "mobile") {
		t.Errorf("iPhone visitor not in the mobile audience: %v", r.Profile.Audiences)
	}
	ev.Context.UserAgent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
	r = e.identify(t, r.Profile.ID, ev)
	if hasAudience(r.Profile, "mobile") {
		t.Error("desktop visitor still in the mobile audience")
	}
}

func TestAccumulatedTraitsBounded(t *testing.T) {
	e := open(t, "", nil)
	chunk := strings.Repeat("x", 1000)
	id := "grow"
	var err error
	written := 0
	for i := range 100 {
		_, err = e.Identify(context.Background(), id, engine.Request{Events: []engine.Event{
			identifyEv("", map[string]any{fmt.Sprintf("k%d", i): chunk})}})
		if err != nil {
			break
		}
		written++
	}
	var ie *engine.InputError
	if !errors.As(err, &ie) || ie.Field != "traits" {
		t.Fatalf("after %d identify calls: err = %v, want an *InputError on traits", written, err)
	}
	if written < 25 || written > 33 {
		t.Errorf("%d calls of 1 KB traits accepted, want about 32", written)
	}
	r, _ := e.Get(context.Background(), id)
	if len(r.Profile.Traits) != written {
		t.Errorf("profile has %d traits, want the %d accepted", len(r.Profile.Traits), written)
	}
}
