package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailorhq/tailor/engine"
	"github.com/tailorhq/tailor/internal/cputime"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/storage/badger"
)

// Benchmarks of the request path. engine/PERF.md has the figures and the
// commands that produced them.

// benchProfiles is how many profiles BenchmarkIdentify pre-populates. The
// bench command measures 1,000,000; a Go benchmark has to set up quickly.
const benchProfiles = 20_000

// benchRulesYAML returns a rules file with n audiences cycling through the
// shapes issue 6 names (trait equality, in lists, numeric ranges, string
// prefix/suffix, event counts in windows, location, session, inAudience)
// and x experiences with mixed traffic, distributions, stickiness and
// namespaces.
func benchRulesYAML(n, x int) string {
	var b strings.Builder
	b.WriteString("audiences:\n")
	plans := []string{"pro", "free", "team", "enterprise"}
	countries := []string{`["US", "CA"]`, `["DE", "FR", "IT"]`, `["GB"]`, `["BR", "AR", "MX"]`}
	for i := range n {
		var when string
		switch i % 10 {
		case 0:
			when = fmt.Sprintf(`traits.plan == %q`, plans[i/10%len(plans)])
		case 1:
			when = fmt.Sprintf(`location.countryCode in %s`, countries[i/10%len(countries)])
		case 2:
			lo := 18 + i/10*5
			when = fmt.Sprintf(`traits.age >= %d && traits.age < %d`, lo, lo+10)
		case 3:
			when = fmt.Sprintf(`traits.email endsWith "@example%d.com"`, i/10%3)
		case 4:
			when = fmt.Sprintf(`page.path startsWith "/blog/%d"`, i/10%5)
		case 5:
			when = fmt.Sprintf(`eventCount("purchase", "%dd") >= %d`, 7+i/10, 1+i/10%3)
		case 6:
			when = fmt.Sprintf(`session.count >= %d && session.isReturningVisitor`, 1+i/10%4)
		case 7:
			when = `device.type == "mobile" && jurisdiction == "GDPR"`
		case 8:
			when = fmt.Sprintf(`viewedPage("/pricing", "%dd") || hasEvent("signup")`, 1+i/10)
		case 9:
			when = fmt.Sprintf(`inAudience("a%d") && traits.score > %d`, i-9, i/10*10)
		}
		fmt.Fprintf(&b, "  - id: a%d\n    when: '%s'\n", i, when)
	}
	b.WriteString("experiences:\n")
	for i := range x {
		fmt.Fprintf(&b, "  - id: exp-%d\n", i)
		if i%4 != 3 && n > 0 {
			fmt.Fprintf(&b, "    audience: a%d\n", (i*7)%n)
		}
		fmt.Fprintf(&b, "    traffic: %g\n", []float64{1, 0.9, 0.5, 1}[i%4])
		if i%3 == 0 {
			b.WriteString("    distribution: [0.34, 0.33, 0.33]\n")
		} else {
			b.WriteString("    distribution: [0.5, 0.5]\n")
		}
		if i%2 == 0 {
			b.WriteString("    sticky: true\n")
		}
		if i%5 == 4 {
			lo := float64(i%10/5) / 2
			fmt.Fprintf(&b, "    namespace: {id: ns%d, range: [%g, %g]}\n", i/10, lo, lo+0.5)
		}
		b.WriteString("    components:\n")
		fmt.Fprintf(&b, "      - type: EntryReplacement\n        key: slot-%d\n        baseline: entry-%d-a\n        variants: [", i, i)
		for v := 1; v < 2+boolInt(i%3 == 0); v++ {
			if v > 1 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "entry-%d-%d", i, v)
		}
		b.WriteString("]\n")
		fmt.Fprintf(&b, "      - type: InlineVariable\n        key: var-%d\n        baseline: blue\n        variants: [green", i)
		if i%3 == 0 {
			b.WriteString(", red")
		}
		b.WriteString("]\n")
	}
	return b.String()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// benchTraits returns the traits of bench profile i.
func benchTraits(i int) map[string]any {
	return map[string]any{
		"plan":  []string{"pro", "free", "team", "enterprise"}[i%4],
		"age":   float64(18 + i%50),
		"email": fmt.Sprintf("user%d@example%d.com", i, i%3),
		"score": float64(i % 100),
		"name":  fmt.Sprintf("Visitor %d", i),
	}
}

var benchCountries = []string{"US", "CA", "DE", "FR", "GB", "BR", "JP"}

// benchEvents returns the events of one request for bench profile i:
// a page view with location and an identify event.
func benchEvents(i int, ts time.Time) []engine.Event {
	stamp := ts.Format(time.RFC3339Nano)
	cc := benchCountries[i%len(benchCountries)]
	ctx := engine.EventContext{
		Page: &engine.Page{URL: fmt.Sprintf("https://example.com/blog/%d?utm_source=news", i%7),
			Path: fmt.Sprintf("/blog/%d", i%7)},
		UserAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
		Location:  &engine.Location{CountryCode: cc, City: "Somewhere"},
		Locale:    "en-US",
	}
	return []engine.Event{
		{Type: engine.EventPage, Timestamp: stamp, Context: ctx},
		{Type: engine.EventIdentify, Timestamp: stamp, UserID: fmt.Sprintf("user-%d", i), Traits: benchTraits(i), Context: ctx},
	}
}

// benchSnapshot is a Backup of a store holding benchProfiles profiles with
// a history, made once per process: restoring it is much faster than
// populating through Identify, which every run of a benchmark would do.
var benchSnapshot = sync.OnceValues(func() ([]byte, error) {
	e, err := engine.Open("", &engine.Options{InMemory: true, Rules: benchRules()})
	if err != nil {
		return nil, err
	}
	defer e.Close()
	ctx := context.Background()
	start := time.Now().Add(-48 * time.Hour)
	// Populate concurrently so the store can group the writes.
	var next atomic.Int64
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= benchProfiles {
					errs <- nil
					return
				}
				evs := benchEvents(i, start)
				evs = append(evs,
					engine.Event{Type: engine.EventTrack, Event: "purchase", Timestamp: start.Format(time.RFC3339Nano)},
					engine.Event{Type: engine.EventPage, Timestamp: start.Add(time.Minute).Format(time.RFC3339Nano),
						Context: engine.EventContext{Page: &engine.Page{URL: "https://example.com/pricing", Path: "/pricing"}}})
				if _, err := e.Identify(ctx, benchID(i), engine.Request{Events: evs}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			return nil, err
		}
	}
	var buf bytes.Buffer
	if err := e.Backup(ctx, &buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
})

func benchRules() *rules.Set {
	set, err := rules.Parse("bench.yaml", []byte(benchRulesYAML(100, 20)))
	if err != nil {
		panic(err)
	}
	return set
}

// openBench opens an engine with the bench rules on an in-memory store, or
// on disk in a temporary directory with SyncWrites off, holding the
// benchProfiles profiles of benchSnapshot; cache selects the
// decoded-profile cache (default size) or none; opts, when given, adjust
// the engine's options.
func openBench(b *testing.B, onDisk, cache bool, opts ...func(*engine.Options)) *engine.Engine {
	b.Helper()
	snap, err := benchSnapshot()
	if err != nil {
		b.Fatal(err)
	}
	bo := badger.Options{InMemory: !onDisk}
	if onDisk {
		bo.Dir = b.TempDir()
	}
	st, err := badger.Open(bo)
	if err != nil {
		b.Fatal(err)
	}
	o := &engine.Options{Store: st, Rules: benchRules()}
	if !cache {
		o.CacheBytes = -1
	}
	for _, opt := range opts {
		opt(o)
	}
	e, err := engine.Open("", o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	if err := e.Restore(context.Background(), bytes.NewReader(snap)); err != nil {
		b.Fatal(err)
	}
	return e
}

func benchID(i int) string { return fmt.Sprintf("profile-%08d", i) }

// BenchmarkIdentify is target 4 of issue 6 at Go-benchmark scale: one page
// and one identify event per call on one of benchProfiles pre-populated
// profiles, 100 audiences of mixed shapes, 20 experiences, 16 goroutines
// (b.RunParallel with parallelism 8 on 2 cores). Sub-benchmarks: the
// store in memory or on disk (SyncWrites off); profile ids drawn uniformly
// or Zipf-distributed (s = 1.1, the shape of real traffic); the
// decoded-profile cache on (default size) or off. Each run starts with a
// cold cache, so with uniform ids most calls miss it, as uniform traffic
// over millions of profiles would.
func BenchmarkIdentify(b *testing.B) {
	for _, store := range []string{"mem", "disk"} {
		for _, dist := range []string{"uniform", "zipf"} {
			for _, cache := range []string{"cache", "nocache"} {
				b.Run(store+"/"+dist+"/"+cache, func(b *testing.B) {
					benchIdentify(b, openBench(b, store == "disk", cache == "cache"), dist == "zipf")
				})
			}
		}
	}
}

func benchIdentify(b *testing.B, e *engine.Engine, zipf bool) {
	ctx := context.Background()
	now := time.Now()
	// Requests are built up front so the benchmark measures Identify,
	// not the building of its input.
	ids := make([]string, benchProfiles)
	reqs := make([]engine.Request, benchProfiles)
	for i := range reqs {
		ids[i] = benchID(i)
		reqs[i] = engine.Request{Events: benchEvents(i, now)}
	}
	var seed atomic.Uint64
	// Many requests in flight, as on a server, so the store can group
	// their commits.
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	defer cputime.Report(b)()
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(seed.Add(1), 7))
		next := func() int { return r.IntN(benchProfiles) }
		if zipf {
			// Profile i is the i-th most frequent; scattered over the
			// id space by a multiplicative permutation.
			z := rand.NewZipf(r, 1.1, 1, benchProfiles-1)
			next = func() int { return int(z.Uint64() * 7919 % benchProfiles) }
		}
		for pb.Next() {
			i := next()
			if _, err := e.Identify(ctx, ids[i], reqs[i]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
}

// peerRules is the common peer scenario of issue 6, target 1: one audience
// that matches, then a 50/50 split hashed on the visitor.
const peerRules = `
audiences:
  - id: na-pro
    when: location.countryCode in ["US", "CA"] && traits.plan == "pro"
experiences:
  - id: checkout-test
    audience: na-pro
    distribution: [0.5, 0.5]
`

// benchVisitors returns n distinct visitor keys, so benchmarks hash
// different ids as a server would.
func benchVisitors(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("visitor-%06d-7a4b2c1e", i)
	}
	return ids
}

// BenchmarkPeerScenario is target 1 of issue 6: what a feature-flag SDK
// does per flag evaluation, evaluated without the store.
func BenchmarkPeerScenario(b *testing.B) {
	set := mustRules(b, peerRules)
	env := &rules.Env{
		Traits:   map[string]any{"plan": "pro"},
		Location: rules.Location{CountryCode: "US"},
		Now:      time.Now(),
	}
	ids := benchVisitors(1024)
	var d engine.Decider
	dst := make([]engine.Decision, 0, 1)
	b.ReportAllocs()
	defer cputime.Report(b)()
	i := 0
	for b.Loop() {
		out, err := d.Decide(set, env, engine.Visitor{StableID: ids[i&1023]}, dst[:0])
		if err != nil || len(out) != 1 {
			b.Fatalf("Decide = %v, %v; want one decision", out, err)
		}
		i++
	}
}

// BenchmarkAllocate20 is target 3 of issue 6: 20 experiences of mixed
// traffic, distributions, stickiness and namespaces allocated after the
// audiences were evaluated.
func BenchmarkAllocate20(b *testing.B) {
	set := benchRules()
	matched := make([]bool, len(set.Audiences))
	for i := range matched {
		matched[i] = i%3 != 2
	}
	sticky := map[string]engine.Assignment{"exp-0": {Variant: 1, Bucket: 0}, "exp-2": {Variant: 1, Bucket: 0}}
	ids := benchVisitors(1024)
	now := time.Now()
	dst := make([]engine.Decision, 0, len(set.Experiences))
	b.ReportAllocs()
	defer cputime.Report(b)()
	i, n := 0, 0
	for b.Loop() {
		n += len(engine.Allocate(set, matched, engine.Visitor{StableID: ids[i&1023], Sticky: sticky}, now, dst[:0]))
		i++
	}
	b.ReportMetric(float64(n)/float64(i), "selected/op")
}
