package engine_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tailorhq/tailor/engine"
	"github.com/tailorhq/tailor/storage"
	"github.com/tailorhq/tailor/storage/badger"
)

// Two engines on one store behave as two processes sharing a Redis: each
// has its own profile locks and cache, so their writers meet only in the
// store's conditional writes. These tests run on one in-memory Badger; the
// same checks run against a real Redis Cluster with two processes in
// package storage/redis's engine tests.

// sharedStore is a store two engines use; Close leaves it open (the test
// closes it).
type sharedStore struct{ storage.Store }

func (sharedStore) Close() error { return nil }

// openShared opens n engines with the given rules over one in-memory store.
func openShared(t *testing.T, n int, rulesSrc string) []*engine.Engine {
	t.Helper()
	st, err := badger.Open(badger.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var es []*engine.Engine
	for range n {
		e, err := engine.Open("", &engine.Options{Store: sharedStore{st}, Rules: mustRules(t, rulesSrc)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		es = append(es, e)
	}
	return es
}

const sharedRules = `
audiences:
  - id: ticked
    when: eventCount("tick") >= 1
`

// TestSharedStoreNoLostUpdate runs 8 goroutines × 500 Identify calls on one
// profile, spread over two engines sharing the store: the event count is
// exactly 4000.
func TestSharedStoreNoLostUpdate(t *testing.T) {
	es := openShared(t, 2, sharedRules)
	ctx := context.Background()
	const workers, calls = 8, 500
	var wg sync.WaitGroup
	var overloads atomic.Int64
	errs := make(chan error, workers)
	for w := range workers {
		e := es[w%2]
		wg.Go(func() {
			for range calls {
				for {
					// As a client does with a 429, a call refused with
					// ErrOverload is sent again; only acknowledged
					// calls count.
					_, err := e.Identify(ctx, "hot", engine.Request{Events: []engine.Event{track("tick")}})
					if errors.Is(err, engine.ErrOverload) {
						overloads.Add(1)
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					break
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, e := range es {
		wantTicks(t, e, "hot", workers*calls)
	}
	t.Logf("%d calls refused with ErrOverload and sent again", overloads.Load())
}

// wantTicks fails t unless profile id tracked "tick" exactly n times: it
// swaps in rules whose audiences name the count, and reads them.
func wantTicks(t *testing.T, e *engine.Engine, id string, n int) {
	t.Helper()
	old := e.Rules()
	defer e.SetRules(old)
	e.SetRules(mustRules(t, fmt.Sprintf(`
audiences:
  - id: exact
    when: eventCount("tick") == %d
  - id: less
    when: eventCount("tick") < %d
`, n, n)))
	r, err := e.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !hasAudience(r.Profile, "exact") {
		more := "more"
		if hasAudience(r.Profile, "less") {
			more = "fewer"
		}
		t.Fatalf("profile %s has %s ticks than %d", id, more, n)
	}
}

// TestSharedStoreMergeRace has 16 anonymous visitors, spread over two
// engines, identify as one user at once: one profile survives, holding
// every visitor's trait and events, and every visitor's id resolves to it.
func TestSharedStoreMergeRace(t *testing.T) {
	es := openShared(t, 2, sharedRules)
	ctx := context.Background()
	const visitors = 16
	for v := range visitors {
		if _, err := es[v%2].Identify(ctx, fmt.Sprint("visitor-", v), engine.Request{Events: []engine.Event{track("tick"), track("tick")}}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, visitors)
	for v := range visitors {
		e := es[(v+1)%2]
		wg.Go(func() {
			_, err := e.Identify(ctx, fmt.Sprint("visitor-", v), engine.Request{Events: []engine.Event{
				identifyEv("the-user", map[string]any{fmt.Sprint("t", v): float64(v)}),
			}})
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	survivors := map[string]bool{}
	for v := range visitors {
		r, err := es[v%2].Get(ctx, fmt.Sprint("visitor-", v))
		if err != nil {
			t.Fatalf("visitor %d: %v", v, err)
		}
		survivors[r.Profile.ID] = true
	}
	if len(survivors) != 1 {
		t.Fatalf("the visitors resolve to %d profiles, want 1: %v", len(survivors), survivors)
	}
	var id string
	for id = range survivors {
	}
	r, err := es[0].Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for v := range visitors {
		if got := r.Profile.Traits[fmt.Sprint("t", v)]; got != float64(v) {
			t.Errorf("survivor lacks visitor %d's trait: %v", v, got)
		}
	}
	wantTicks(t, es[0], id, 2*visitors) // each visitor's 2, once
	live := 0
	if err := es[1].Profiles(ctx, func(p *engine.Profile) error { live++; return nil }); err != nil {
		t.Fatal(err)
	}
	if live != 1 {
		t.Fatalf("%d live profiles, want the survivor alone", live)
	}
}

// TestSharedStoreDeleteRacesAlias deletes a known profile on one engine
// while the other keeps calling Identify through an id merged into it: the
// deleted data never comes back.
func TestSharedStoreDeleteRacesAlias(t *testing.T) {
	for round := range 20 {
		es := openShared(t, 2, sharedRules)
		ctx := context.Background()
		if _, err := es[0].Identify(ctx, "known", engine.Request{Events: []engine.Event{identifyEv("u", map[string]any{"secret": "s"})}}); err != nil {
			t.Fatal(err)
		}
		if _, err := es[0].Identify(ctx, "alias", engine.Request{Events: []engine.Event{identifyEv("u", nil)}}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			if err := es[0].Delete(ctx, "known"); err != nil && !errors.Is(err, engine.ErrNotFound) {
				t.Error(err)
			}
		})
		wg.Go(func() {
			for range 5 {
				if _, err := es[1].Identify(ctx, "alias", engine.Request{Events: []engine.Event{track("tick")}}); err != nil {
					t.Error(err)
				}
			}
		})
		wg.Wait()
		if err := es[0].Delete(ctx, "known"); err != nil && !errors.Is(err, engine.ErrNotFound) {
			t.Fatal(err)
		}
		err := es[1].Profiles(ctx, func(p *engine.Profile) error {
			if p.Traits["secret"] != nil {
				return fmt.Errorf("round %d: profile %s holds the deleted profile's trait", round, p.ID)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
