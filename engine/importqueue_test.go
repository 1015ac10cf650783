package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/rules"
)

// countRules has one audience per exact count of "hit" events, so a
// profile's audiences tell how many times its events were applied.
const countRules = `audiences:
  - {id: hits-1, when: 'eventCount("hit") == 1'}
  - {id: hits-2, when: 'eventCount("hit") == 2'}
  - {id: hits-3, when: 'eventCount("hit") == 3'}
  - {id: hits-4, when: 'eventCount("hit") == 4'}
  - {id: hits-5, when: 'eventCount("hit") == 5'}
  - {id: hits-6, when: 'eventCount("hit") == 6'}
`

func openQueueEngine(t *testing.T, dir string, size int) *Engine {
	t.Helper()
	set, err := rules.Parse("count.yaml", []byte(countRules))
	if err != nil {
		t.Fatal(err)
	}
	e, err := Open(dir, &Options{Rules: set, ImportQueueSize: size, SyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func hits(ids ...string) Request {
	var req Request
	for i, id := range ids {
		req.Events = append(req.Events, Event{Type: EventTrack, Event: "hit", AnonymousID: id,
			MessageID: fmt.Sprintf("m-%s-%d", id, i)})
	}
	return req
}

// hitCount returns how many hits profile id has, from its audiences.
func hitCount(t *testing.T, e *Engine, id string) int {
	t.Helper()
	resp, err := e.Get(context.Background(), id)
	if errors.Is(err, ErrNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 6; n++ {
		if slices.Contains(resp.Profile.Audiences, fmt.Sprintf("hits-%d", n)) {
			return n
		}
	}
	t.Fatalf("profile %s: audiences %v", id, resp.Profile.Audiences)
	return -1
}

func waitDrained(t *testing.T, e *Engine) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for e.ImportQueueLen() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("queue not drained: %d batches left", e.ImportQueueLen())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestImportExactlyOnceAcrossCrash stops the worker right after each
// possible group write, as a crash would, reopens the engine on the same
// directory and checks every event was applied exactly once.
func TestImportExactlyOnceAcrossCrash(t *testing.T) {
	// batch 1 groups: a (2 hits), b (1 hit); batch 2 groups: a (1), c (1).
	// (The queue's ids start at 1.)
	batches := []Request{hits("a", "b", "a"), hits("a", "c")}
	want := map[string]int{"a": 3, "b": 1, "c": 1}
	type point struct {
		seq   uint64
		group int
	}
	for _, crash := range []*point{nil, {1, 0}, {1, 1}, {2, 0}, {2, 1}} {
		name := "no crash"
		if crash != nil {
			name = fmt.Sprintf("crash after batch %d group %d", crash.seq, crash.group)
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			e := openQueueEngine(t, dir, 0)
			crashed := make(chan struct{})
			if crash != nil {
				hook := func(seq uint64, group int) bool {
					if seq == crash.seq && group == crash.group {
						close(crashed)
						return true
					}
					return false
				}
				e.queue.crashAfter.Store(&hook)
			}
			for _, b := range batches {
				if err := e.Import(context.Background(), b); err != nil {
					t.Fatal(err)
				}
			}
			if crash != nil {
				<-crashed
			} else {
				waitDrained(t, e)
			}
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}

			e2 := openQueueEngine(t, dir, 0)
			waitDrained(t, e2)
			for id, n := range want {
				if got := hitCount(t, e2, id); got != n {
					t.Errorf("profile %s: %d hits applied, want %d", id, got, n)
				}
			}
		})
	}
}

// TestImportQueueFull fills a queue whose worker is stopped: Import refuses
// with ErrQueueFull and keeps every batch it accepted.
func TestImportQueueFull(t *testing.T) {
	dir := t.TempDir()
	e := openQueueEngine(t, dir, 2)
	stopped := make(chan struct{})
	hook := func(uint64, int) bool { close(stopped); return true }
	e.queue.crashAfter.Store(&hook)

	// The worker stops after the first group (x) of the first batch,
	// leaving that batch queued with w still to apply.
	if err := e.Import(context.Background(), hits("x", "w")); err != nil {
		t.Fatal(err)
	}
	<-stopped
	if err := e.Import(context.Background(), hits("y")); err != nil {
		t.Fatal(err)
	}
	if err := e.Import(context.Background(), hits("z")); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("third batch: %v, want ErrQueueFull", err)
	}
	e.Close()

	e2 := openQueueEngine(t, dir, 2)
	waitDrained(t, e2)
	for id, n := range map[string]int{"x": 1, "w": 1, "y": 1, "z": 0} {
		if got := hitCount(t, e2, id); got != n {
			t.Errorf("profile %s: %d hits, want %d", id, got, n)
		}
	}
}

func TestImportRejects(t *testing.T) {
	e := openQueueEngine(t, t.TempDir(), 0)
	manyProfiles := Request{}
	for i := range MaxBatchProfiles + 1 {
		manyProfiles.Events = append(manyProfiles.Events, Event{Type: EventPage, AnonymousID: fmt.Sprint("p", i)})
	}
	tests := []struct {
		name  string
		req   Request
		field string
	}{
		{"missing anonymousId", Request{Events: []Event{{Type: EventPage, AnonymousID: "a"}, {Type: EventPage}}}, "events[1].anonymousId"},
		{"too many profiles", manyProfiles, fmt.Sprintf("events[%d].anonymousId", MaxBatchProfiles)},
		{"preflight", Request{Events: []Event{{Type: EventPage, AnonymousID: "a"}}, Preflight: true}, "type"},
		{"engine validation", Request{Events: []Event{{Type: "teleport", AnonymousID: "a"}}}, "events[0].type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := e.Import(context.Background(), tc.req)
			var in *InputError
			if !errors.As(err, &in) || in.Field != tc.field {
				t.Fatalf("err %v, want an InputError on %q", err, tc.field)
			}
			if _, err := e.IdentifyBatch(context.Background(), tc.req); !errors.As(err, &in) && !tc.req.Preflight {
				t.Fatalf("IdentifyBatch accepted what Import refused: %v", err)
			}
		})
	}
	// A batch within the request limits whose stored form would exceed
	// what the store takes is refused too, naming the events.
	big := Request{}
	for i := range 150 {
		big.Events = append(big.Events, Event{Type: EventTrack, Event: "big", AnonymousID: fmt.Sprint("b", i%10),
			Properties: map[string]any{"blob": strings.Repeat("x", 6<<10)}})
	}
	var in *InputError
	if err := e.Import(context.Background(), big); !errors.As(err, &in) || in.Field != "events" {
		t.Fatalf("oversized batch: %v, want an InputError on events", err)
	}
	if n := e.ImportQueueLen(); n != 0 {
		t.Fatalf("%d invalid batches queued", n)
	}
	e.Close()
	if err := e.Import(context.Background(), hits("a")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Import after Close: %v", err)
	}
}

func TestIdentifyBatch(t *testing.T) {
	e := openQueueEngine(t, t.TempDir(), 0)
	resps, err := e.IdentifyBatch(context.Background(), hits("b", "a", "b", "c", "b"))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range resps {
		ids = append(ids, r.Profile.ID)
	}
	if !slices.Equal(ids, []string{"b", "a", "c"}) {
		t.Fatalf("profiles %v, want order of first appearance b, a, c", ids)
	}
	for id, n := range map[string]int{"a": 1, "b": 3, "c": 1} {
		if got := hitCount(t, e, id); got != n {
			t.Errorf("profile %s: %d hits, want %d", id, got, n)
		}
	}
}

func TestGroupByAnonymousID(t *testing.T) {
	evs := hits("x", "y", "x", "z", "y").Events
	groups := groupByAnonymousID(evs)
	var got []string
	for _, g := range groups {
		var ms []string
		for _, ev := range g.events {
			ms = append(ms, ev.MessageID)
		}
		got = append(got, fmt.Sprint(g.id, ms))
	}
	want := []string{"x[m-x-0 m-x-2]", "y[m-y-1 m-y-4]", "z[m-z-3]"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// TestImportQueueBackupRestore restores a backup holding queued batches
// (one partly applied) into a new engine: its worker applies what was left,
// and a later Import takes a sequence after the restored ones rather than
// overwriting one.
func TestImportQueueBackupRestore(t *testing.T) {
	src := openQueueEngine(t, t.TempDir(), 0)
	stopped := make(chan struct{})
	hook := func(uint64, int) bool { close(stopped); return true }
	src.queue.crashAfter.Store(&hook)
	if err := src.Import(context.Background(), hits("r1", "r2")); err != nil {
		t.Fatal(err)
	}
	<-stopped // r1 applied, r2 still queued
	for _, b := range []Request{hits("r3"), hits("r4")} {
		if err := src.Import(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	var backup bytes.Buffer
	if err := src.Backup(context.Background(), &backup); err != nil {
		t.Fatal(err)
	}

	dst := openQueueEngine(t, t.TempDir(), 0)
	if err := dst.Restore(context.Background(), &backup); err != nil {
		t.Fatal(err)
	}
	if err := dst.Import(context.Background(), hits("d2")); err != nil {
		t.Fatal(err)
	}
	waitDrained(t, dst)
	for id, n := range map[string]int{"r1": 1, "r2": 1, "r3": 1, "r4": 1, "d2": 1} {
		if got := hitCount(t, dst, id); got != n {
			t.Errorf("profile %s: %d hits, want %d", id, got, n)
		}
	}
}

// TestImportSkipsGroupInvalidAtApply stores a batch whose first group the
// engine rejects (as if validation got stricter after it was queued): the
// worker logs and skips that group, applies the rest and finishes the
// batch instead of blocking the queue.
func TestImportSkipsGroupInvalidAtApply(t *testing.T) {
	e := openQueueEngine(t, t.TempDir(), 0)
	rec := importRecord{V: importRecordVersion, Events: []Event{
		{Type: "teleport", AnonymousID: "bad"},
		{Type: EventTrack, Event: "hit", AnonymousID: "good"},
	}}
	val, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.queue.q.Enqueue(context.Background(), val, 0); err != nil {
		t.Fatal(err)
	}
	waitDrained(t, e)
	if got := hitCount(t, e, "good"); got != 1 {
		t.Errorf("valid group: %d hits, want 1", got)
	}
	if _, err := e.Get(context.Background(), "bad"); !errors.Is(err, ErrNotFound) {
		t.Errorf("invalid group wrote a profile: %v", err)
	}
	if n, err := e.queue.q.Len(context.Background()); n != 0 || err != nil {
		t.Errorf("%d batches still queued (%v)", n, err)
	}
}
