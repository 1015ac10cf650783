package rules

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"testing"
	"time"
)

var testNow = time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)

// history builds a History with one occurrence per age (how long before
// testNow).
func history(ages ...time.Duration) *History {
	h := &History{}
	for _, a := range ages {
		h.Add(testNow.Add(-a).UnixMilli())
	}
	return h
}

const day = 24 * time.Hour

// testEnv is a profile that the table tests below read.
func testEnv() *Env {
	return &Env{
		Traits: map[string]any{
			"plan":  "pro",
			"seats": 12.0,
			"beta":  true,
			"tags":  []any{"a", "b"},
			"org":   map[string]any{"tier": "gold"},
			"nil":   nil,
		},
		Location:     Location{CountryCode: "US", Region: "CA", City: "San Francisco"},
		Session:      Session{ID: "s1", Count: 3, IsReturningVisitor: true, SessionLength: 120},
		Page:         Page{Path: "/pricing", URL: "https://x.test/pricing?a=1", Query: map[string]string{"a": "1"}},
		Campaign:     Campaign{Source: "newsletter"},
		Device:       Device{Type: "mobile"},
		UserID:       "u1",
		Locale:       "fr-FR",
		Jurisdiction: "CCPA",
		Random:       0.25,
		Now:          testNow,
		Events: map[string]*History{
			"purchase": history(1*time.Hour, 2*day, 10*day, 40*day),
			"signup":   history(100 * day),
		},
		Views: map[string]*History{
			"/pricing":         history(2 * time.Hour),
			"/docs/intro":      history(5 * day),
			"/docs/api/errors": history(3 * day),
		},
	}
}

// matchOne compiles one audience and evaluates it over env.
func matchOne(t *testing.T, when string, env *Env) (bool, error) {
	t.Helper()
	src := fmt.Sprintf("audiences:\n  - id: other\n    when: traits.plan == \"pro\"\n  - id: t\n    when: %q\n", when)
	s, err := Parse("t.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse(%q): %v", when, err)
	}
	m := make([]bool, 2)
	err = s.Match(env, m)
	return m[1], err
}

func TestMatchExpressions(t *testing.T) {
	cases := []struct {
		when string
		want bool
	}{
		{`traits.plan == "pro"`, true},
		{`traits["plan"] == "pro"`, true},
		{`traits.plan == "free"`, false},
		{`traits.missing == nil`, true},
		{`traits.seats > 10 && traits.seats <= 12`, true},
		{`traits.beta`, true},
		{`"b" in traits.tags`, true},
		{`traits.org.tier == "gold"`, true},
		{`location.countryCode in ["US", "CA"]`, true},
		{`location.countryCode not in ["US", "CA"]`, false},
		{`location.city startsWith "San"`, true},
		{`session.count >= 3 && session.isReturningVisitor`, true},
		{`not session.isReturningVisitor`, false},
		{`page.path endsWith "ing"`, true},
		{`page.query.a == "1"`, true},
		{`campaign.source contains "letter"`, true},
		{`device.type matches "^mob"`, true},
		{`userId == "u1" && locale == "fr-FR" && jurisdiction == "CCPA"`, true},
		{`random < 0.5`, true},
		{`now.Year() == 2026`, true},
		{`inAudience("other")`, true},
		{`!inAudience("other")`, false},
		// eventCount: purchase at 1h, 2d, 10d and 40d ago.
		{`eventCount("purchase") == 4`, true},
		{`eventCount("purchase", "30d") == 3`, true},
		{`eventCount("purchase", "1w") == 2`, true},
		{`eventCount("purchase", "90m") == 1`, true},
		{`eventCount("purchase", "24h") == 1`, true},
		{`eventCount("purchase", "3d") == 2`, true},
		{`eventCount("nothing") == 0`, true},
		{`hasEvent("signup")`, true},
		{`hasEvent("signup", "30d")`, false},
		{`hasEvent("nothing")`, false},
		{`eventCount(traits.plan == "pro" ? "purchase" : "x", "30d") == 3`, true},
		{`eventCount("purchase", traits.plan == "pro" ? "2w" : "1d") == 3`, true},
		// viewedPage: exact paths and path.Match globs.
		{`viewedPage("/pricing")`, true},
		{`viewedPage("/pricing", "1h")`, false},
		{`viewedPage("/pricing", "3h")`, true},
		{`viewedPage("/docs/*")`, true},
		{`viewedPage("/docs/*", "4d")`, false},
		{`viewedPage("/docs/*/*", "4d")`, true},
		{`viewedPage("/blog/*")`, false},
		{`viewedPage("/doc?/intro")`, true},
	}
	for _, tc := range cases {
		t.Run(tc.when, func(t *testing.T) {
			got, err := matchOne(t, tc.when, testEnv())
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestMatchReflectiveHelpers calls the helpers through shapes the compile
// time rewrite leaves alone, so the public signatures must work too.
func TestMatchReflectiveHelpers(t *testing.T) {
	for _, when := range []string{
		`let f = eventCount; f("purchase", "30d") == 3`,
		`let f = hasEvent; f("purchase") && !f("signup", "1d")`,
		`let f = viewedPage; f("/docs/*")`,
	} {
		t.Run(when, func(t *testing.T) {
			s, err := Parse("t.yaml", []byte(fmt.Sprintf("audiences:\n  - id: t\n    when: %q\n", when)))
			if err != nil {
				t.Fatal(err)
			}
			m := make([]bool, 1)
			if err := s.Match(testEnv(), m); err != nil || !m[0] {
				t.Errorf("got %v, %v", m[0], err)
			}
		})
	}
}

func TestParseWindow(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90m", 90 * time.Minute, true},
		{"24h", 24 * time.Hour, true},
		{"30d", 30 * day, true},
		{"2w", 14 * day, true},
		{"007d", 7 * day, true},
		{"0d", 0, false},
		{"d", 0, false},
		{"", 0, false},
		{"-1d", 0, false},
		{"1.5d", 0, false},
		{"30", 0, false},
		{"30s", 0, false},
		{"1y", 0, false},
		{"99999999999w", 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseWindow(tc.in)
			if (err == nil) != tc.ok || time.Duration(got)*time.Millisecond != tc.want {
				t.Errorf("parseWindow(%q) = %v, %v", tc.in, got, err)
			}
		})
	}
}

func TestCountViewsGlob(t *testing.T) {
	env := testEnv()
	cases := []struct {
		pattern string
		want    int64
	}{
		{"/pricing", 1},
		{"/docs/*", 1},
		{"/docs/*/*", 1},
		{"/*", 1},
		{"/docs/[a-i]*", 1},
		{"/nope", 0},
		{"*", 0},
	}
	for _, tc := range cases {
		if got := countViews(env, tc.pattern, noWindow); got != tc.want {
			t.Errorf("countViews(%q) = %d, want %d", tc.pattern, got, tc.want)
		}
	}
	if got := countViews(&Env{Now: testNow}, "/x/*", noWindow); got != 0 {
		t.Errorf("nil Views: %d", got)
	}
}

// TestCountViewsTrailingStar checks that a glob ending in its only '*'
// (matched without path.Match) counts exactly the views path.Match does.
func TestCountViewsTrailingStar(t *testing.T) {
	views := map[string]*History{}
	for i, p := range []string{"/", "/docs", "/docs/", "/docs/a", "/docs/ab", "/docs/a/b", "/docsx", "/blog/a*", "/é/ü", "docs/a", ""} {
		views[p] = &History{Count: int64(1) << i, First: 1, Last: 1}
	}
	env := &Env{Now: testNow, Views: views}
	for _, pattern := range []string{"*", "/*", "/docs*", "/docs/*", "/docs/a*", "/é/*", "/blog/a*", "docs/*", "/nope/*"} {
		if _, ok := trailingStar(pattern); !ok {
			t.Fatalf("%q: not taken for a literal and a trailing '*'", pattern)
		}
		var want int64
		for p, h := range views {
			if ok, _ := path.Match(pattern, p); ok {
				want += h.Count
			}
		}
		if got := countViews(env, pattern, noWindow); got != want {
			t.Errorf("countViews(%q) = %b, path.Match counts %b", pattern, got, want)
		}
	}
	for _, pattern := range []string{"/docs/*/*", "/d?cs/*", `/docs\*`, "/[a-z]*", "/docs/"} {
		if _, ok := trailingStar(pattern); ok {
			t.Errorf("%q taken for a literal and a trailing '*'", pattern)
		}
	}
}

// TestMatchOrder checks that inAudience reads results computed in the same
// call, whatever the file order, and every audience is evaluated once.
func TestMatchOrder(t *testing.T) {
	src := `audiences:
  - id: top
    when: inAudience("mid") && inAudience("base")
  - id: mid
    when: inAudience("base") || traits.force == true
  - id: none
    when: not inAudience("mid")
  - id: base
    when: location.countryCode == "US"
`
	s, err := Parse("o.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	order := s.Order()
	pos := map[string]int{}
	for k, i := range order {
		pos[s.Audiences[i].ID] = k
	}
	if len(order) != 4 || pos["base"] > pos["mid"] || pos["mid"] > pos["top"] || pos["mid"] > pos["none"] {
		t.Fatalf("order %v", order)
	}
	for _, tc := range []struct {
		country string
		want    [4]bool
	}{
		{"US", [4]bool{true, true, false, true}},
		{"FR", [4]bool{false, false, true, false}},
	} {
		env := testEnv()
		env.Location.CountryCode = tc.country
		m := []bool{true, true, true, true}
		if err := s.Match(env, m); err != nil {
			t.Fatal(err)
		}
		if [4]bool(m) != tc.want {
			t.Errorf("%s: got %v, want %v", tc.country, m, tc.want)
		}
	}
}

func TestMatchRuntimeErrors(t *testing.T) {
	src := `audiences:
  - id: ok-before
    when: traits.plan == "pro"
  - id: bad-compare
    when: traits.plan > 3
  - id: bad-window
    when: hasEvent("purchase", traits.plan)
  - id: reads-bad
    when: not inAudience("bad-compare")
  - id: ok-after
    when: session.count == 3
`
	s, err := Parse("r.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	m := make([]bool, len(s.Audiences))
	err = s.Match(testEnv(), m)
	if want := []bool{true, false, false, true, true}; fmt.Sprint(m) != fmt.Sprint(want) {
		t.Errorf("matched %v, want %v", m, want)
	}
	if err == nil {
		t.Fatal("no error")
	}
	for _, id := range []string{`"bad-compare"`, `"bad-window"`, `invalid window "pro"`} {
		if !strings.Contains(err.Error(), id) {
			t.Errorf("error %q does not mention %s", err, id)
		}
	}
	if strings.Contains(err.Error(), "ok-") || errors.Is(err, ErrInvalid) {
		t.Errorf("unexpected error content: %v", err)
	}

	ok, err := s.MatchOne(testEnv(), 1, m)
	if ok || err == nil || !strings.Contains(err.Error(), "bad-compare") {
		t.Errorf("MatchOne: %v, %v", ok, err)
	}
	if err := s.Match(testEnv(), make([]bool, 1)); !errors.Is(err, ErrMatchLen) {
		t.Errorf("short matched: %v", err)
	}
}

func TestMatchNilSet(t *testing.T) {
	var s *Set
	if err := s.Match(testEnv(), nil); err != nil {
		t.Error(err)
	}
	if s.AudienceIndex("a") != -1 || s.Order() != nil {
		t.Error("nil set")
	}
	if err := (&Set{}).Match(testEnv(), nil); err != nil {
		t.Error(err)
	}
	hand := &Set{Audiences: []Audience{{ID: "a", When: "true"}}}
	m := []bool{true}
	if err := hand.Match(testEnv(), m); !errors.Is(err, ErrNotCompiled) || m[0] {
		t.Errorf("hand-built set: %v %v", m, err)
	}
}

func TestMatchConcurrent(t *testing.T) {
	s, err := Load("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	envs := make([]*Env, 16)
	want := make([][]bool, len(envs))
	for i := range envs {
		e := testEnv()
		e.Traits = map[string]any{"plan": []string{"pro", "free"}[i%2]}
		e.Location.CountryCode = []string{"US", "DE", "CA"}[i%3]
		e.Session.IsReturningVisitor = i%4 == 0
		e.Events = map[string]*History{"purchase": history(time.Duration(i)*day, time.Duration(i)*2*day)}
		envs[i] = e
		want[i] = make([]bool, len(s.Audiences))
		if err := s.Match(e, want[i]); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			m := make([]bool, len(s.Audiences))
			for k := range 300 {
				i := (g + k) % len(envs)
				if err := s.Match(envs[i], m); err != nil {
					t.Error(err)
					return
				}
				if fmt.Sprint(m) != fmt.Sprint(want[i]) {
					t.Errorf("env %d: got %v, want %v", i, m, want[i])
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestMatchAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	s, err := Load("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	env := testEnv()
	m := make([]bool, len(s.Audiences))
	if err := s.Match(env, m); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(200, func() { _ = s.Match(env, m) }); n != 0 {
		t.Errorf("Match allocates %v times per call, want 0", n)
	}
	// The engine builds its Env on the stack for each request: Match must
	// not make it escape.
	if n := testing.AllocsPerRun(200, func() {
		local := Env{Traits: env.Traits, Location: env.Location, Session: env.Session, Now: env.Now, Events: env.Events}
		_ = s.Match(&local, m)
	}); n != 0 {
		t.Errorf("Match with a stack Env allocates %v times per call, want 0", n)
	}
}

func BenchmarkMatchExample(b *testing.B) {
	s, err := Load("testdata/example.yaml")
	if err != nil {
		b.Fatal(err)
	}
	env := testEnv()
	m := make([]bool, len(s.Audiences))
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Match(env, m)
	}
}

// doneAfter is a context that reports itself done from its n+1st Err call
// on: a deadline passing at a known point of an evaluation. calls counts
// the Err calls.
type doneAfter struct {
	context.Context
	n, calls int
}

func (c *doneAfter) Err() error {
	c.calls++
	if c.n <= 0 {
		return context.DeadlineExceeded
	}
	c.n--
	return nil
}

// TestMatchContextStopsBetweenAudiences checks that a deadline stops an
// evaluation at the next audience: those evaluated keep their outcomes,
// the rest are unmatched, and the error is the context's.
func TestMatchContextStopsBetweenAudiences(t *testing.T) {
	// Each audience costs more than ctxCheckSteps: the context is looked
	// at before every one.
	dear := nestedAll(2, 60)
	if c, _, _, _ := ruleCost(dear, nil); c < ctxCheckSteps {
		t.Fatalf("rule costs %v, want at least %d", c, ctxCheckSteps)
	}
	src := "audiences:\n"
	for i := range 6 {
		src += fmt.Sprintf("  - id: a%d\n    when: %q\n", i, dear)
	}
	s, err := Parse("r.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 3, 6} {
		m := make([]bool, 6)
		for i := range m {
			m[i] = true // stale outcomes must not survive
		}
		err := s.MatchContext(&doneAfter{Context: context.Background(), n: n}, testEnv(), m)
		for i, got := range m {
			if want := i < n; got != want {
				t.Errorf("done after %d: matched %v", n, m)
				break
			}
		}
		if n < 6 && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("done after %d: err %v", n, err)
		}
		if n == 6 && err != nil {
			t.Errorf("not done: err %v", err)
		}
	}
}

// TestMatchContextLooksRarelyAtCheapRules checks that cheap audiences do
// not pay for a look at the context each: a hundred of them cost less
// than ctxCheckSteps together, so the context is looked at once.
func TestMatchContextLooksRarelyAtCheapRules(t *testing.T) {
	src := "audiences:\n"
	for i := range 100 {
		src += fmt.Sprintf("  - id: a%d\n    when: traits.plan == \"pro\" && session.count > %d\n", i, i)
	}
	s, err := Parse("r.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	ctx := &doneAfter{Context: context.Background(), n: 1 << 30}
	if err := s.MatchContext(ctx, testEnv(), make([]bool, 100)); err != nil || ctx.calls != 1 {
		t.Errorf("err %v after %d looks at the context, want 1", err, ctx.calls)
	}
	done := &doneAfter{Context: context.Background()}
	m := make([]bool, 100)
	if err := s.MatchContext(done, testEnv(), m); !errors.Is(err, context.DeadlineExceeded) || m[0] {
		t.Errorf("a context done at the start: err %v, matched %v", err, m[:3])
	}
}

// BenchmarkCountViewsGlob counts the views matching "/docs/*" among 32
// page paths, as viewedPage("/docs/*") does on a profile with that many.
func BenchmarkCountViewsGlob(b *testing.B) {
	views := map[string]*History{}
	for i := range 32 {
		views[fmt.Sprintf("/%s/page-%d", []string{"docs", "blog", "product", "docs/api"}[i%4], i)] = &History{Count: 1, First: 1, Last: 1}
	}
	env := &Env{Now: testNow, Views: views}
	b.ReportAllocs()
	for b.Loop() {
		if countViews(env, "/docs/*", noWindow) != 8 {
			b.Fatal("wrong count")
		}
	}
}
