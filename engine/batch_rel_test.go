package engine_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/tailorhq/tailor/engine"
)

func anon(id string, ev engine.Event) engine.Event {
	ev.AnonymousID = id
	return ev
}

// TestBatchOverloadAllOrNothing holds a hot profile's lock with its queue
// full, then sends a batch whose first group is a quiet profile and whose
// second is the hot one: the batch is refused with ErrOverload before the
// quiet profile is written.
func TestBatchOverloadAllOrNothing(t *testing.T) {
	e, fs := openFaulty(t, func(o *engine.Options) { o.MaxWaiting = 1 })
	const hot = "hot"
	parked, release := fs.parkWrites(hot)
	ctx := context.Background()
	req := engine.Request{Events: []engine.Event{track("tick")}}
	done := make(chan error, 2)
	go func() { _, err := e.Identify(ctx, hot, req); done <- err }()
	<-parked
	go func() { _, err := e.Identify(ctx, hot, req); done <- err }() // the one waiter allowed
	// The waiter is admitted before it blocks on the lock.
	for e.Waiting(hot) < 2 {
		runtime.Gosched()
	}
	before := e.dump(t)
	_, err := e.IdentifyBatch(ctx, engine.Request{Events: []engine.Event{
		anon("quiet", page("/")), anon(hot, track("tick")),
	}})
	if !errors.Is(err, engine.ErrOverload) {
		t.Fatalf("IdentifyBatch: %v, want ErrOverload", err)
	}
	if after := e.dump(t); after != before {
		t.Errorf("a refused batch wrote:\n%s\nwas\n%s", after, before)
	}
	if e.Waiting("quiet") != 0 {
		t.Errorf("the refused batch left quiet admitted")
	}
	release()
	for range 2 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	if _, err := e.IdentifyBatch(ctx, engine.Request{Events: []engine.Event{anon("quiet", page("/")), anon(hot, track("tick"))}}); err != nil {
		t.Fatalf("batch after the hot profile calmed down: %v", err)
	}
	if e.Waiting("quiet") != 0 || e.Waiting(hot) != 0 {
		t.Errorf("a batch left profiles admitted: %d, %d", e.Waiting("quiet"), e.Waiting(hot))
	}
}

// TestBatchIdentityAllOrNothing: an untrusted batch with one unverified
// identify event is refused whole, even when that event comes after
// groups that need no proof.
func TestBatchIdentityAllOrNothing(t *testing.T) {
	e := open(t, "", func(o *engine.Options) { o.IdentitySecret = secret })
	ctx := context.Background()
	e.identify(t, "victim-profile", identifyEv("victim", map[string]any{"email": "v@example.com"}))
	before := e.dump(t)
	tests := []struct {
		name string
		evs  []engine.Event
		ok   bool
	}{
		{"unverified after a harmless group", []engine.Event{anon("a", page("/")), anon("b", identifyEv("victim", nil))}, false},
		{"one of two unverified", []engine.Event{
			anon("a", withHash("u-a", engine.UserHash(secret, "u-a"), nil)),
			anon("b", withHash("victim", engine.UserHash(secret, "someone-else"), nil))}, false},
		{"all verified", []engine.Event{
			anon("a", withHash("u-a", engine.UserHash(secret, "u-a"), nil)),
			anon("b", withHash("victim", engine.UserHash(secret, "victim"), nil))}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resps, err := e.IdentifyBatch(ctx, engine.Request{Untrusted: true, Events: tt.evs})
			if !tt.ok {
				if !errors.Is(err, engine.ErrIdentityUnverified) {
					t.Fatalf("IdentifyBatch: %v, want ErrIdentityUnverified", err)
				}
				if after := e.dump(t); after != before {
					t.Errorf("a refused batch wrote:\n%s", after)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(resps[1].Profile.ID); got != "victim-profile" {
				t.Errorf("verified group landed on %q", got)
			}
		})
	}
}
