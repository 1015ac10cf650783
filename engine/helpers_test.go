package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tailorhq/tailor/engine"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/storage"
	"github.com/tailorhq/tailor/storage/badger"
)

// clock is a fake clock for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 6, 13, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is an engine opened for one test on an in-memory Badger store the
// test can inspect.
type env struct {
	*engine.Engine
	store storage.Store
	clock *clock
}

func mustRules(t testing.TB, src string) *rules.Set {
	t.Helper()
	set, err := rules.Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("rules: %v", err)
	}
	return set
}

// open opens an engine with the given rules (YAML) on an in-memory store;
// opt, when non-nil, adjusts the options.
func open(t testing.TB, rulesSrc string, opt func(*engine.Options)) *env {
	t.Helper()
	st, err := badger.Open(badger.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	c := newClock()
	o := &engine.Options{Store: st, Now: c.Now}
	if rulesSrc != "" {
		o.Rules = mustRules(t, rulesSrc)
	}
	if opt != nil {
		opt(o)
	}
	e, err := engine.Open("", o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return &env{Engine: e, store: st, clock: c}
}

// dump returns every key and value in the store, for comparing states.
func (e *env) dump(t testing.TB) string {
	t.Helper()
	var b bytes.Buffer
	err := e.store.Scan(context.Background(), nil, func(k, v []byte, _ storage.Version) error {
		fmt.Fprintf(&b, "%q=%q\n", k, v)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func (e *env) identify(t testing.TB, id string, evs ...engine.Event) *engine.Response {
	t.Helper()
	resp, err := e.Identify(context.Background(), id, engine.Request{Events: evs})
	if err != nil {
		t.Fatalf("Identify(%q): %v", id, err)
	}
	return resp
}

func page(path string) engine.Event {
	return engine.Event{Type: engine.EventPage, Context: engine.EventContext{
		Page: &engine.Page{URL: "https://example.com" + path, Path: path}}}
}

func track(name string) engine.Event {
	return engine.Event{Type: engine.EventTrack, Event: name}
}

func identifyEv(userID string, traits map[string]any) engine.Event {
	return engine.Event{Type: engine.EventIdentify, UserID: userID, Traits: traits}
}

func at(ev engine.Event, ts time.Time) engine.Event {
	ev.Timestamp = ts.Format(time.RFC3339Nano)
	return ev
}

func hasAudience(p *engine.Profile, id string) bool {
	for _, a := range p.Audiences {
		if a == id {
			return true
		}
	}
	return false
}

func selected(r *engine.Response, expID string) (engine.SelectedExperience, bool) {
	for _, x := range r.Experiences {
		if x.ExperienceID == expID {
			return x, true
		}
	}
	return engine.SelectedExperience{}, false
}
