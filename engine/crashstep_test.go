package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/storage"
	"github.com/tailorhq/tailor/storage/badger"
)

// The identity protocol under crashes. TestCrashSteps runs each identity
// operation (bind, merge, delete) in a child process — this test binary,
// re-run — whose store is killed with SIGKILL right after its n-th write,
// for every n from 1 to the number of writes the operation makes. The
// parent then does what a client and the engine would: it repeats the
// request (the client got no answer), runs the sweep, and checks that the
// store is consistent and that nothing was counted twice or brought back.

const (
	crashStepStoreEnv    = "TAILOR_CRASHSTEP_STORE"
	crashStepScenarioEnv = "TAILOR_CRASHSTEP_SCENARIO"
	crashStepAfterEnv    = "TAILOR_CRASHSTEP_AFTER"
)

// killingStore kills the process right after its after-th write returns.
type killingStore struct {
	storage.Store
	left atomic.Int64
}

func (k *killingStore) Write(ctx context.Context, op storage.Op) (storage.Version, error) {
	v, err := k.Store.Write(ctx, op)
	if k.left.Add(-1) == 0 {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
	return v, err
}

// countingWrites counts writes, to learn how many an operation makes.
type countingWrites struct {
	storage.Store
	n atomic.Int64
}

func (c *countingWrites) Write(ctx context.Context, op storage.Op) (storage.Version, error) {
	c.n.Add(1)
	return c.Store.Write(ctx, op)
}

// crashScenario is one identity operation with its setup and checks.
type crashScenario struct {
	name string
	// setup writes the state the operation starts from.
	setup func(t *testing.T, e *Engine)
	// op is the operation the child runs (and the parent repeats).
	op func(ctx context.Context, e *Engine) error
	// check verifies the state after recovery.
	check func(t *testing.T, e *Engine)
}

var crashRules = `
audiences:
  - id: buyers
    when: eventCount("buy") >= 1
`

func crashScenarios() []crashScenario {
	ctx := context.Background()
	identify := func(user string, traits map[string]any) Event {
		return Event{Type: EventIdentify, UserID: user, Traits: traits}
	}
	track := func(name string) Event { return Event{Type: EventTrack, Event: name} }
	pageEv := func(path string) Event {
		return Event{Type: EventPage, Context: EventContext{Page: &Page{URL: "https://x.example" + path, Path: path}}}
	}
	must := func(t *testing.T, e *Engine, id string, evs ...Event) {
		t.Helper()
		if _, err := e.Identify(ctx, id, Request{Events: evs}); err != nil {
			t.Fatalf("setup: Identify(%s): %v", id, err)
		}
	}
	return []crashScenario{
		{
			name:  "bind",
			setup: func(t *testing.T, e *Engine) { must(t, e, "anon", pageEv("/landing")) },
			op: func(ctx context.Context, e *Engine) error {
				_, err := e.Identify(ctx, "anon", Request{Events: []Event{identify("u-bind", map[string]any{"plan": "pro"})}})
				return err
			},
			check: func(t *testing.T, e *Engine) {
				p := wantOwner(t, e, "u-bind")
				if p.ID != "anon" || p.Traits["plan"] != "pro" || p.Views["/landing"].Count != 1 {
					t.Fatalf("bound profile %s: plan %v, /landing %d; want anon, pro, 1", p.ID, p.Traits["plan"], p.Views["/landing"].Count)
				}
			},
		},
		{
			name: "merge",
			setup: func(t *testing.T, e *Engine) {
				must(t, e, "known", identify("u-merge", map[string]any{"tier": "gold"}), track("buy"), track("buy"))
				must(t, e, "anon", track("buy"), track("buy"), track("buy"), pageEv("/cart"))
			},
			op: func(ctx context.Context, e *Engine) error {
				_, err := e.Identify(ctx, "anon", Request{Events: []Event{identify("u-merge", nil)}})
				return err
			},
			check: func(t *testing.T, e *Engine) {
				p := wantOwner(t, e, "u-merge")
				if p.ID != "known" || p.Events["buy"].Count != 5 || p.Views["/cart"].Count != 1 || p.Traits["tier"] != "gold" {
					t.Fatalf("survivor %s: buy %d, /cart %d, tier %v; want known, 5, 1, gold",
						p.ID, p.Events["buy"].Count, p.Views["/cart"].Count, p.Traits["tier"])
				}
				if got, err := e.find(ctx, "anon"); err != nil || got.ID != "known" {
					t.Fatalf("anon resolves to %v, %v; want known", got, err)
				}
			},
		},
		{
			name: "delete",
			setup: func(t *testing.T, e *Engine) {
				must(t, e, "known", identify("u-del", map[string]any{"secret": "s3cr3t"}), track("buy"))
				must(t, e, "anon", track("buy"), identify("u-del", nil))
			},
			op: func(ctx context.Context, e *Engine) error {
				err := e.Delete(ctx, "known")
				if errors.Is(err, ErrNotFound) {
					return nil // deleted before the crash; the client's retry finds nothing
				}
				return err
			},
			check: func(t *testing.T, e *Engine) {
				for _, id := range []string{"known", "anon"} {
					if _, err := e.Get(ctx, id); !errors.Is(err, ErrNotFound) {
						t.Fatalf("Get(%s) after delete: %v, want ErrNotFound", id, err)
					}
				}
				if d := dumpKeys(t, e); len(d) != 0 {
					t.Fatalf("keys left after delete: %q", d)
				}
				// The old id starts afresh, without the deleted data.
				r, err := e.Identify(ctx, "anon", Request{Events: []Event{track("look")}})
				if err != nil {
					t.Fatal(err)
				}
				if len(r.Profile.Traits) != 0 || slices.Contains(r.Profile.Audiences, "buyers") {
					t.Fatalf("a deleted profile came back: %+v", r.Profile)
				}
			},
		},
	}
}

// wantOwner returns the profile claiming user, after checking that it is
// the only one.
func wantOwner(t *testing.T, e *Engine, user string) *record {
	t.Helper()
	ctx := context.Background()
	pid, _, err := e.getString(ctx, prefixUser+user)
	if err != nil {
		t.Fatalf("claim of %s: %v", user, err)
	}
	p, err := e.load(ctx, pid)
	if err != nil || !p.live() || p.UserID != user {
		t.Fatalf("claim of %s → %s: %+v, %v", user, pid, p, err)
	}
	n := 0
	err = e.store.Scan(ctx, []byte(prefixProfile), func(_, v []byte, _ storage.Version) error {
		r, err := decodeRecord(v)
		if err == nil && r.live() && r.UserID == user {
			n++
		}
		return err
	})
	if err != nil || n != 1 {
		t.Fatalf("%d live profiles known as %s (%v), want 1", n, user, err)
	}
	return p
}

// checkConsistent checks the invariants of the identity protocol over the
// whole store once nothing is under way: no intent left, no record in a
// pending state, every claim and forwarder pointing at a live profile that
// agrees.
func checkConsistent(t *testing.T, e *Engine) {
	t.Helper()
	ctx := context.Background()
	recs := map[string]*record{}
	claims := map[string]string{}
	err := e.store.Scan(ctx, nil, func(k, v []byte, _ storage.Version) error {
		key := string(k)
		switch {
		case strings.HasPrefix(key, prefixJournal):
			return fmt.Errorf("intent left after the sweep: %s", key)
		case strings.HasPrefix(key, prefixUser):
			claims[key[len(prefixUser):]] = string(v)
		case strings.HasPrefix(key, prefixProfile):
			r, err := decodeRecord(v)
			if err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			if r.Pending || r.Deleted || r.BindPending {
				return fmt.Errorf("%s left pending (pending %v, deleted %v, bind %v)", key, r.Pending, r.Deleted, r.BindPending)
			}
			recs[r.ID] = r
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for user, pid := range claims {
		if p := recs[pid]; p == nil || !p.live() || p.UserID != user {
			t.Fatalf("claim %s → %s, which is not a live profile known as %s", user, pid, user)
		}
	}
	for id, r := range recs {
		switch {
		case r.Forward != "":
			if b := recs[r.Forward]; b == nil || !b.live() || !slices.Contains(b.Merged, id) {
				t.Fatalf("forwarder %s → %s, which does not list it", id, r.Forward)
			}
		case r.UserID != "" && claims[r.UserID] != id:
			t.Fatalf("profile %s known as %s, which is claimed by %q", id, r.UserID, claims[r.UserID])
		}
	}
}

func dumpKeys(t *testing.T, e *Engine) []string {
	t.Helper()
	var keys []string
	if err := e.store.Scan(context.Background(), nil, func(k, _ []byte, _ storage.Version) error {
		keys = append(keys, string(k))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return keys
}

// crashStore opens the store the crash and multi-process tests run on:
// spec is "badger:<dir>" or "redis:<addr,...>|<key prefix>[|<claim
// timeout>]" (redis_test.go).
func crashStore(spec string) (storage.Store, error) {
	kind, arg, _ := strings.Cut(spec, ":")
	switch kind {
	case "badger":
		return badger.Open(badger.Options{Dir: arg, SyncWrites: true})
	case "redis":
		return openRedisSpec(arg)
	}
	return nil, fmt.Errorf("unknown store %q", spec)
}

func openCrashEngine(st storage.Store) (*Engine, error) {
	set, err := rules.Parse("crash.yaml", []byte(crashRules))
	if err != nil {
		return nil, err
	}
	return Open("", &Options{Store: st, Rules: set, SweepInterval: -1})
}

// TestCrashSteps is described at the top of the file.
func TestCrashSteps(t *testing.T) {
	if spec := os.Getenv(crashStepStoreEnv); spec != "" {
		crashStepChild(spec)
		return
	}
	if testing.Short() {
		t.Skip("starts child processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	for _, sc := range crashScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			runCrashScenario(t, exe, sc, func(t *testing.T) string { return "badger:" + t.TempDir() })
		})
	}
}

// runCrashScenario counts the writes of sc's operation on a fresh store,
// then for every n up to that count sets up a fresh store (newSpec), has
// a child crash after the operation's n-th write, recovers and checks.
func runCrashScenario(t *testing.T, exe string, sc crashScenario, newSpec func(t *testing.T) string) {
	ctx := context.Background()
	setup := func(t *testing.T, spec string) {
		e := openCrashSpec(t, spec)
		sc.setup(t, e)
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}

	// How many writes the operation makes, uninterrupted.
	spec := newSpec(t)
	setup(t, spec)
	st, err := crashStore(spec)
	if err != nil {
		t.Fatal(err)
	}
	counting := &countingWrites{Store: st}
	e, err := openCrashEngine(counting)
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.op(ctx, e); err != nil {
		t.Fatalf("operation without a crash: %v", err)
	}
	writes := int(counting.n.Load())
	sc.check(t, e)
	checkConsistent(t, e)
	e.Close()
	t.Logf("%s makes %d writes", sc.name, writes)

	// The client got no answer and repeats the request; then the sweep
	// finishes whatever is left.
	for n := 1; n <= writes; n++ {
		t.Run(fmt.Sprintf("after write %d", n), func(t *testing.T) {
			e := crashAfter(t, exe, sc, newSpec(t), setup, n)
			if err := sc.op(ctx, e); err != nil {
				t.Fatalf("repeated operation after the crash: %v", err)
			}
			if err := e.Sweep(ctx); err != nil {
				t.Fatalf("Sweep: %v", err)
			}
			sc.check(t, e)
			checkConsistent(t, e)
		})
	}
	// And without the client's retry: the sweep alone leaves the store
	// consistent after a crash at any step.
	for n := 1; n <= writes; n++ {
		t.Run(fmt.Sprintf("sweep only after write %d", n), func(t *testing.T) {
			e := crashAfter(t, exe, sc, newSpec(t), setup, n)
			if err := e.Sweep(ctx); err != nil {
				t.Fatalf("Sweep: %v", err)
			}
			checkConsistent(t, e)
		})
	}
}

// crashAfter sets up a fresh store at spec, has a child process run sc's
// operation and get killed right after the operation's n-th write, and
// returns an engine reopened on what the child left (closed at the end of
// the test).
func crashAfter(t *testing.T, exe string, sc crashScenario, spec string, setup func(*testing.T, string), n int) *Engine {
	t.Helper()
	setup(t, spec)
	cmd := exec.Command(exe, "-test.run=^TestCrashSteps$")
	cmd.Env = append(os.Environ(), crashStepStoreEnv+"="+spec, crashStepScenarioEnv+"="+sc.name,
		crashStepAfterEnv+"="+strconv.Itoa(n))
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child was not killed after write %d: %v\n%s", n, err, out)
	}
	e := openCrashSpec(t, spec)
	t.Cleanup(func() { e.Close() })
	return e
}

// openCrashSpec opens the crash tests' engine on the store spec names;
// the caller closes it.
func openCrashSpec(t *testing.T, spec string) *Engine {
	t.Helper()
	st, err := crashStore(spec)
	if err != nil {
		t.Fatal(err)
	}
	e, err := openCrashEngine(st)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// crashStepChild runs the scenario's operation with a store that kills the
// process after the given number of writes.
func crashStepChild(spec string) {
	n, _ := strconv.Atoi(os.Getenv(crashStepAfterEnv))
	var sc crashScenario
	for _, s := range crashScenarios() {
		if s.name == os.Getenv(crashStepScenarioEnv) {
			sc = s
		}
	}
	st, err := crashStore(spec)
	if err != nil || sc.op == nil {
		fmt.Fprintln(os.Stderr, "child:", err, sc.name)
		os.Exit(2)
	}
	k := &killingStore{Store: st}
	k.left.Store(int64(n))
	e, err := openCrashEngine(k)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	err = sc.op(context.Background(), e)
	fmt.Fprintln(os.Stderr, "child: operation returned before the kill:", err)
	os.Exit(3)
}
