package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tailorhq/tailor/engine"
	"github.com/tailorhq/tailor/storage"
)

// openFaulty opens an engine over a faultStore on in-memory Badger.
func openFaulty(t testing.TB, opt func(*engine.Options)) (*env, *faultStore) {
	t.Helper()
	var fs *faultStore
	e := open(t, "", func(o *engine.Options) {
		fs = &faultStore{Store: o.Store}
		o.Store = fs
		if opt != nil {
			opt(o)
		}
	})
	e.store = fs
	return e, fs
}

// writes reports whether op writes the profile id.
func writes(op storage.Op, id string) bool {
	return bytes.Equal(op.Key, []byte("p/"+id))
}

// TestMaxWaitingRefusesHotProfile holds the hot profile's lock (its write is
// parked in the store) and sends more calls than MaxWaiting admits: the
// extra calls get ErrOverload at once, a profile on another stripe is
// served meanwhile, one on the same stripe waits but is not refused, and
// once the write proceeds every admitted call
// succeeds and the counters return to zero.
func TestMaxWaitingRefusesHotProfile(t *testing.T) {
	const maxWaiting, extra = 3, 5
	e, fs := openFaulty(t, func(o *engine.Options) { o.MaxWaiting = maxWaiting })
	const hot = "hot-profile"
	cold := "cold-profile"
	for i := 0; engine.SameStripe(hot, cold); i++ {
		cold = fmt.Sprintf("cold-profile-%d", i)
	}

	parked, release := fs.parkWrites(hot)

	ctx := context.Background()
	req := engine.Request{Events: []engine.Event{track("tick")}}
	results := make(chan error, 1+maxWaiting+extra)
	go func() { _, err := e.Identify(ctx, hot, req); results <- err }()
	<-parked // the first call holds the hot stripe

	for range maxWaiting + extra {
		go func() { _, err := e.Identify(ctx, hot, req); results <- err }()
	}
	// The extra calls are refused without waiting for the lock.
	deadline := time.After(10 * time.Second)
	for i := range extra {
		select {
		case err := <-results:
			if !errors.Is(err, engine.ErrOverload) {
				t.Fatalf("refused call %d: %v, want ErrOverload", i, err)
			}
		case <-deadline:
			t.Fatalf("only %d of %d extra calls were refused", i, extra)
		}
	}
	// Another profile is served while the hot one is stuck.
	for i := range 20 {
		if _, err := e.Identify(ctx, cold, req); err != nil {
			t.Fatalf("cold call %d: %v", i, err)
		}
	}
	if got := e.Waiting(hot); got != 1+maxWaiting {
		t.Errorf("Waiting(hot) = %d, want %d", got, 1+maxWaiting)
	}
	// A profile sharing the hot one's lock stripe waits its turn but is
	// not refused: the limit counts per profile id.
	neighbour := "neighbour"
	for i := 0; !engine.SameStripe(hot, neighbour); i++ {
		neighbour = fmt.Sprintf("neighbour-%d", i)
	}
	neighbourDone := make(chan error, 1)
	go func() { _, err := e.Identify(ctx, neighbour, req); neighbourDone <- err }()

	release()
	if err := <-neighbourDone; err != nil {
		t.Errorf("profile %q on the hot stripe: %v", neighbour, err)
	}
	for i := range 1 + maxWaiting {
		if err := <-results; err != nil {
			t.Errorf("admitted call %d: %v", i, err)
		}
	}
	if got := e.Waiting(hot); got != 0 {
		t.Errorf("Waiting(hot) = %d after the calls returned, want 0", got)
	}
	r, err := e.Get(ctx, hot)
	if err != nil {
		t.Fatal(err)
	}
	if r.Profile.ID != hot {
		t.Fatalf("profile %q", r.Profile.ID)
	}
}

// TestMaxWaitingHammer hammers one profile from many goroutines through a
// slow store while other visitors keep arriving: some hammer calls are
// refused, no other visitor is, and the hot profile counts exactly the
// calls that were admitted (refusals write nothing, admissions lose
// nothing).
func TestMaxWaitingHammer(t *testing.T) {
	const workers, calls = 16, 25
	e, fs := openFaulty(t, func(o *engine.Options) { o.MaxWaiting = 2 })
	e.SetRules(mustRules(t, fmt.Sprintf(`
audiences:
%s`, tickAudiences(workers*calls))))
	const hot = "hammered"
	fs.setBeforeWrite(func(op storage.Op) error {
		if writes(op, hot) {
			time.Sleep(200 * time.Microsecond) // a slow disk for the hot profile
		}
		return nil
	})
	ctx := context.Background()
	var (
		wg               sync.WaitGroup
		mu               sync.Mutex
		admitted, denied int
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range calls {
				_, err := e.Identify(ctx, hot, engine.Request{Events: []engine.Event{track("tick")}})
				mu.Lock()
				switch {
				case err == nil:
					admitted++
				case errors.Is(err, engine.ErrOverload):
					denied++
				default:
					t.Error(err)
				}
				mu.Unlock()
			}
		}()
	}
	others := make(chan error, 1)
	go func() {
		defer close(others)
		for i := range 200 {
			if _, err := e.Identify(ctx, fmt.Sprintf("visitor-%d", i), engine.Request{Events: []engine.Event{page("/")}}); err != nil {
				others <- fmt.Errorf("visitor %d: %w", i, err)
				return
			}
		}
	}()
	wg.Wait()
	if err := <-others; err != nil {
		t.Fatal(err)
	}
	if denied == 0 {
		t.Fatalf("no call on the hammered profile was refused (%d admitted)", admitted)
	}
	r, err := e.Get(ctx, hot)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("ticks-%d", admitted)
	if !hasAudience(r.Profile, want) {
		t.Errorf("audiences %v, want %s: admitted calls and stored ticks differ", r.Profile.Audiences, want)
	}
	t.Logf("hammered profile: %d admitted, %d refused", admitted, denied)
}

// tickAudiences returns one audience per possible tick count 0..n, so the
// profile's audiences name its exact count.
func tickAudiences(n int) string {
	var b bytes.Buffer
	for i := 0; i <= n; i++ {
		fmt.Fprintf(&b, "  - id: ticks-%d\n    when: eventCount(\"tick\") == %d\n", i, i)
	}
	return b.String()
}

// TestProfileRate checks the per-profile rate limit on a fake clock: a
// burst passes, the next call is refused and writes nothing, other
// profiles are not affected, and the profile earns a call back per
// 1/rate.
func TestProfileRate(t *testing.T) {
	e := open(t, "", func(o *engine.Options) { o.ProfileRate = 10; o.ProfileBurst = 3 })
	ctx := context.Background()
	req := engine.Request{Events: []engine.Event{track("tick")}}
	for i := range 3 {
		if _, err := e.Identify(ctx, "fast", req); err != nil {
			t.Fatalf("burst call %d: %v", i, err)
		}
	}
	before := e.dump(t)
	if _, err := e.Identify(ctx, "fast", req); !errors.Is(err, engine.ErrOverload) {
		t.Fatalf("call beyond the burst: %v, want ErrOverload", err)
	}
	if after := e.dump(t); after != before {
		t.Errorf("a refused call wrote:\n%s\nwant\n%s", after, before)
	}
	if _, err := e.Identify(ctx, "slow", req); err != nil {
		t.Fatalf("other profile: %v", err)
	}
	e.clock.Advance(100 * time.Millisecond)
	if _, err := e.Identify(ctx, "fast", req); err != nil {
		t.Fatalf("after 1/rate: %v", err)
	}
	if _, err := e.Identify(ctx, "fast", req); !errors.Is(err, engine.ErrOverload) {
		t.Fatalf("second call after 1/rate: %v, want ErrOverload", err)
	}
	// New profiles (empty id) are never rate limited.
	for range 10 {
		if _, err := e.Identify(ctx, "", req); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOverloadOptionsValidated(t *testing.T) {
	tests := []struct {
		name string
		opt  func(*engine.Options)
	}{
		{"negative MaxWaiting", func(o *engine.Options) { o.MaxWaiting = -1 }},
		{"negative ProfileRate", func(o *engine.Options) { o.ProfileRate = -1 }},
		{"NaN ProfileRate", func(o *engine.Options) { o.ProfileRate = nan() }},
		{"negative ProfileBurst", func(o *engine.Options) { o.ProfileRate = 1; o.ProfileBurst = -1 }},
		{"burst without rate", func(o *engine.Options) { o.ProfileBurst = 5 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := &engine.Options{InMemory: true}
			tt.opt(o)
			e, err := engine.Open("", o)
			if err == nil {
				e.Close()
				t.Fatal("Open accepted invalid options")
			}
		})
	}
}

func nan() float64 { var z float64; return z / z }
