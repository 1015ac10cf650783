package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/storage"
	"github.com/tailorhq/tailor/storage/badger"
)

// countingStore counts profile reads and can fail the next writes.
type countingStore struct {
	storage.Store
	profileGets atomic.Int64
	failWrite   atomic.Int64
}

func (s *countingStore) Get(ctx context.Context, key, dst []byte) ([]byte, storage.Version, error) {
	if bytes.HasPrefix(key, []byte(prefixProfile)) {
		s.profileGets.Add(1)
	}
	return s.Store.Get(ctx, key, dst)
}

var errInjected = errors.New("injected write failure")

func (s *countingStore) Write(ctx context.Context, op storage.Op) (storage.Version, error) {
	if s.failWrite.Load() > 0 {
		s.failWrite.Add(-1)
		return 0, errInjected
	}
	return s.Store.Write(ctx, op)
}

const cacheRules = `
audiences:
  - id: pro
    when: traits.plan == "pro"
  - id: buyer
    when: eventCount("purchase") >= 2
  - id: nested
    when: traits.prefs.color == "red"
  - id: big-buyer
    when: eventCount("purchase") >= 5
experiences:
  - id: sticky
    audience: pro
    distribution: [0.5, 0.5]
    sticky: true
    components:
      - type: InlineVariable
        key: cta
        baseline: a
        variants: [b]
  - id: all
    distribution: [0.3, 0.7]
`

// openCacheTest opens an engine on a counting in-memory store with a fake
// clock; cacheBytes is Options.CacheBytes.
func openCacheTest(t *testing.T, cacheBytes int64) (*Engine, *countingStore) {
	t.Helper()
	bs, err := badger.Open(badger.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	st := &countingStore{Store: bs}
	set, err := rules.Parse("cache.yaml", []byte(cacheRules))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 6, 13, 10, 0, 0, 0, time.UTC)
	e, err := Open("", &Options{Store: st, Rules: set, CacheBytes: cacheBytes, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, st
}

// TestCacheSameResults runs one script of calls (updates, merges, a user
// switch, preflight, a failed write, delete, backup and restore) on an
// engine with the cache and one without, and requires the same responses
// and the same stored profiles. (Restoring a backup into the store it
// came from changes nothing visible with Badger, whose Load keeps newer
// versions, so the restore step checks only that nothing diverges.)
func TestCacheSameResults(t *testing.T) {
	ctx := context.Background()
	type step struct {
		op, id string
		evs    []Event
	}
	identify := func(user string, traits map[string]any) Event {
		return Event{Type: EventIdentify, UserID: user, Traits: traits}
	}
	pageEv := Event{Type: EventPage, Context: EventContext{Page: &Page{URL: "https://x.test/a?q=1", Path: "/a"}}}
	buy := Event{Type: EventTrack, Event: "purchase"}
	script := []step{
		{"identify", "anon-1", []Event{pageEv, buy}},
		{"identify", "anon-1", []Event{buy, identify("", map[string]any{"plan": "pro", "prefs": map[string]any{"color": "red"}})}},
		{"identify", "known-1", []Event{identify("user-1", map[string]any{"plan": "free"})}},
		{"identify", "known-1", []Event{pageEv}},
		{"identify", "anon-1", []Event{identify("user-1", nil)}}, // merges anon-1 into known-1
		{"identify", "anon-1", []Event{buy}},                     // resolves to known-1
		{"preflight", "known-1", []Event{identify("", map[string]any{"plan": "enterprise"})}},
		{"identify", "known-1", []Event{buy}},
		{"identify", "known-1", []Event{identify("user-2", nil)}}, // known as user-1: continues on user-2's profile
		{"backup", "", nil},
		{"identify", "known-1", []Event{buy, buy}},
		{"restore", "", nil},
		{"identify", "known-1", []Event{pageEv}},
		{"delete", "anon-1", nil},
		{"identify", "known-1", []Event{buy}},
		{"identify", "anon-2", []Event{identify("", map[string]any{"plan": "pro"})}},
		{"failwrite", "anon-2", []Event{buy, buy}},
		{"identify", "anon-2", []Event{pageEv}},
	}
	run := func(cacheBytes int64) (out []string, dump string) {
		e, st := openCacheTest(t, cacheBytes)
		var backup bytes.Buffer
		for i, s := range script {
			var resp *Response
			var err error
			switch s.op {
			case "identify", "preflight", "failwrite":
				if s.op == "failwrite" {
					st.failWrite.Store(1)
				}
				resp, err = e.Identify(ctx, s.id, Request{Events: s.evs, Preflight: s.op == "preflight"})
				if s.op == "failwrite" {
					if !errors.Is(err, errInjected) {
						t.Fatalf("step %d: %v, want the injected failure", i, err)
					}
					err = nil
				}
			case "delete":
				err = e.Delete(ctx, s.id)
			case "backup":
				err = e.Backup(ctx, &backup)
			case "restore":
				err = e.Restore(ctx, bytes.NewReader(backup.Bytes()))
			}
			if err != nil {
				t.Fatalf("step %d %s: %v", i, s.op, err)
			}
			if resp != nil {
				// Random and session ids are drawn at random: blank them.
				resp.Profile.Random = 0
				resp.Profile.Session.ID = ""
				if !strings.HasPrefix(resp.Profile.ID, "anon-") && !strings.HasPrefix(resp.Profile.ID, "known-") {
					resp.Profile.ID, resp.Profile.StableID = "new", "new"
					resp.Experiences, resp.Changes = nil, nil
				}
				b, _ := json.Marshal(resp)
				out = append(out, string(b))
			}
			if got, err := e.Get(ctx, "known-1"); err == nil {
				got.Profile.Random, got.Profile.Session.ID = 0, ""
				b, _ := json.Marshal(got)
				out = append(out, "get "+string(b))
			}
		}
		var d strings.Builder
		err := e.Profiles(ctx, func(p *Profile) error {
			if strings.HasPrefix(p.ID, "anon-") || strings.HasPrefix(p.ID, "known-") {
				p.Random, p.Session.ID = 0, ""
				b, _ := json.Marshal(p)
				d.Write(b)
				d.WriteByte('\n')
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out, d.String()
	}
	withOut, withDump := run(0)
	noOut, noDump := run(-1)
	if len(withOut) != len(noOut) {
		t.Fatalf("%d outputs with the cache, %d without", len(withOut), len(noOut))
	}
	for i := range withOut {
		if withOut[i] != noOut[i] {
			t.Errorf("output %d differs:\n  cache: %s\nno cache: %s", i, withOut[i], noOut[i])
		}
	}
	if withDump != noDump {
		t.Errorf("stored profiles differ:\n  cache: %s\nno cache: %s", withDump, noDump)
	}
}

// TestCacheHits: a profile written by Identify is not read from the
// store by the next Identify, unless the cache is off.
func TestCacheHits(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name      string
		cache     int64
		wantReads int64
	}{{"on", 0, 0}, {"off", -1, 3}} {
		t.Run(tt.name, func(t *testing.T) {
			e, st := openCacheTest(t, tt.cache)
			req := Request{Events: []Event{{Type: EventTrack, Event: "purchase"}}}
			if _, err := e.Identify(ctx, "p", req); err != nil {
				t.Fatal(err)
			}
			st.profileGets.Store(0)
			for range 3 {
				if _, err := e.Identify(ctx, "p", req); err != nil {
					t.Fatal(err)
				}
			}
			if got := st.profileGets.Load(); got != tt.wantReads {
				t.Errorf("%d profile reads for 3 calls, want %d", got, tt.wantReads)
			}
		})
	}
}

// TestCacheOwnsTraits: changing the nested trait values of a request or a
// response after the call does not change the profile.
func TestCacheOwnsTraits(t *testing.T) {
	ctx := context.Background()
	e, _ := openCacheTest(t, 0)
	prefs := map[string]any{"color": "red", "list": []any{"x"}}
	resp, err := e.Identify(ctx, "p", Request{Events: []Event{{Type: EventIdentify, Traits: map[string]any{"prefs": prefs, "n": 3}}}})
	if err != nil {
		t.Fatal(err)
	}
	prefs["color"] = "blue"
	resp.Profile.Traits["prefs"].(map[string]any)["list"].([]any)[0] = "changed"
	resp.Profile.Session.LandingPage.Query["q"] = "changed"
	resp, err = e.Identify(ctx, "p", Request{Events: []Event{{Type: EventTrack, Event: "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(resp.Profile.Traits)
	if want := `{"n":3,"prefs":{"color":"red","list":["x"]}}`; string(got) != want {
		t.Errorf("traits %s, want %s", got, want)
	}
	if len(resp.Profile.Session.LandingPage.Query) != 0 {
		t.Errorf("landing page query %v, want empty", resp.Profile.Session.LandingPage.Query)
	}
	if !hasID(resp.Profile.Audiences, "nested") {
		t.Errorf("audiences %v, want nested (traits.prefs.color is red)", resp.Profile.Audiences)
	}
	// The int trait reads as the store gives it back: a float64.
	if _, ok := resp.Profile.Traits["n"].(float64); !ok {
		t.Errorf("trait n is %T, want float64 as stored", resp.Profile.Traits["n"])
	}
}

func hasID(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// TestCacheNeverOverwritesAnotherWrite: when another writer (another
// process sharing the store) changes or deletes a profile this engine
// holds in its cache, the next Identify does not write over it from the
// stale copy: its conditional write conflicts and it reads the store.
func TestCacheNeverOverwritesAnotherWrite(t *testing.T) {
	ctx := context.Background()
	e, st := openCacheTest(t, 0)
	ident := func(traits map[string]any) *Response {
		t.Helper()
		r, err := e.Identify(ctx, "p", Request{Events: []Event{{Type: EventIdentify, Traits: traits}}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	ident(map[string]any{"plan": "free", "mine": "a"})
	// Another process rewrites the profile: its record, at a new version.
	other, err := e.load(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	other.Traits["plan"] = "pro"
	enc, err := encodeRecord(nil, other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Store.Write(ctx, storage.Op{Key: []byte(prefixProfile + "p"), Value: enc, IfVersion: other.ver}); err != nil {
		t.Fatal(err)
	}
	if r := ident(map[string]any{"mine": "b"}); r.Profile.Traits["plan"] != "pro" || r.Profile.Traits["mine"] != "b" {
		t.Fatalf("traits %v: the other writer's plan was overwritten from the cache", r.Profile.Traits)
	}
	// Another process deletes it: the next call starts a fresh profile.
	if _, err := st.Store.Write(ctx, storage.Op{Key: []byte(prefixProfile + "p"), Delete: true}); err != nil {
		t.Fatal(err)
	}
	if r := ident(map[string]any{"mine": "c"}); r.Profile.Traits["plan"] != nil {
		t.Fatalf("traits %v: a deleted profile came back from the cache", r.Profile.Traits)
	}
}

// TestCacheBounded: a stripe never holds more than its share of bytes,
// and evicts the entry used least recently.
func TestCacheBounded(t *testing.T) {
	ctx := context.Background()
	req := Request{Events: []Event{{Type: EventTrack, Event: "x"}}}
	// Find three ids sharing a stripe.
	ids := []string{"id-0"}
	for i := 1; len(ids) < 3; i++ {
		if id := fmt.Sprintf("id-%d", i); stripeOf(prefixProfile+id) == stripeOf(prefixProfile+ids[0]) {
			ids = append(ids, id)
		}
	}
	probe, _ := openCacheTest(t, 0)
	if _, err := probe.Identify(ctx, ids[0], req); err != nil {
		t.Fatal(err)
	}
	size := probe.cache[stripeOf(prefixProfile+ids[0])].bytes
	// Room for two records of this size per stripe, not three.
	e, _ := openCacheTest(t, int64(stripes*(2*size+size/2)))
	for _, id := range ids {
		if _, err := e.Identify(ctx, id, req); err != nil {
			t.Fatal(err)
		}
	}
	c := &e.cache[stripeOf(prefixProfile+ids[0])]
	var held []string
	for _, en := range c.entries {
		if en.ver != 0 {
			held = append(held, en.id)
		}
	}
	if c.bytes > e.cachePerStripe || !slices.Equal(held, ids[1:]) && !slices.Equal(held, []string{ids[2], ids[1]}) {
		t.Errorf("stripe holds %v (%d bytes of %d), want %v", held, c.bytes, e.cachePerStripe, ids[1:])
	}
}

// BenchmarkCachePutFull puts records of ~1.2 KB of distinct profiles into
// one full stripe, as uniform traffic over many more profiles than the
// cache holds does: every put evicts.
func BenchmarkCachePutFull(b *testing.B) {
	e := &Engine{cachePerStripe: 16 << 10} // 13 records a stripe
	const s = 7
	var ids []string
	for i := 0; len(ids) < 64; i++ {
		if id := fmt.Sprintf("%032x", i); stripeOf(prefixProfile+id) == s {
			ids = append(ids, id)
		}
	}
	l := &lockSet{stripes: []int{s}}
	enc := bytes.Repeat([]byte("r"), 1200)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e.cachePut(l, ids[i%len(ids)], storage.Version(i+1), enc)
		i++
	}
	if c := &e.cache[s]; c.bytes > e.cachePerStripe {
		b.Fatalf("stripe holds %d bytes, over its %d", c.bytes, e.cachePerStripe)
	}
}
