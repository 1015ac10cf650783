package badger

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/tailorhq/tailor/storage"
)

// TestValueLogGC overwrites the same keys until most of the value log is
// garbage, then runs a GC round and checks that it shrank the value log
// and kept every live value.
//
// Badger picks the file a GC round rewrites from discard statistics, which
// only compactions produce, and its compactors start after a random delay
// of up to a second: left to itself, whether the round finds a file
// depends on how busy the machine is. So the test brings the statistics
// about: reopening flushes every memtable to level 0, and Flatten then
// compacts the whole tree into one level on this goroutine, dropping the
// overwritten versions and counting their bytes as discardable.
//
// The round runs on the test goroutine, after the writes: Badger 4.9.6
// reads a memtable's maxVersion without synchronization when a rewrite
// starts (DB.MaxVersion against memTable.Put), which the race detector
// reports when a rewrite runs concurrently with writes.
func TestValueLogGC(t *testing.T) {
	t.Parallel()
	s := garbageStore(t, gcOptions(t.TempDir()))
	_, before := s.Size()
	rewrites := s.gcRound(s.opts.GCDiscardRatio)
	_, after := s.Size()
	t.Logf("%d value-log files rewritten: %d KB -> %d KB", rewrites, before>>10, after>>10)
	if rewrites == 0 || after >= before*3/4 {
		t.Fatalf("GC rewrote %d files, value log %d KB -> %d KB; want it shrunk by a quarter at least", rewrites, before>>10, after>>10)
	}
	for i := range garbageKeys {
		got, _, err := s.Get(context.Background(), fmt.Appendf(nil, "k/%04d", i), nil)
		if want := fmt.Sprintf("%04d:%01000d", garbageRounds-1, i); err != nil || string(got) != want {
			t.Fatalf("after GC, key %d = %.20q…, %v; want %.20q…", i, got, err, want)
		}
	}
}

// gcOptions are the options of a store in dir whose value log fills
// quickly and whose background GC is off, so a test runs the rounds.
func gcOptions(dir string) Options {
	return Options{
		Dir:              dir,
		ValueLogFileSize: 1 << 20,
		GCInterval:       -1,
		// Small memtables and tables, so that the writes span many
		// level-0 tables, which Flatten must then compact (it leaves a
		// tree alone that already sits on one level).
		tune: func(o *badger.Options) {
			o.MemTableSize = 64 << 10
			o.NumLevelZeroTables = 1
			o.BaseTableSize = 64 << 10
			o.BaseLevelSize = 256 << 10
		},
	}
}

// garbageKeys values of garbageValueLen bytes are written garbageRounds
// times by garbageStore.
const garbageKeys, garbageRounds, garbageValueLen = 500, 16, 1005

// garbageStore opens a store with opts, overwrites the same keys until
// most of its value log is garbage, and returns it reopened and compacted
// (reopenCompacted), ready for a GC round that rewrites files.
func garbageStore(t *testing.T, opts Options) *Store {
	t.Helper()
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for round := range garbageRounds {
		for i := range garbageKeys {
			op := storage.Op{Key: fmt.Appendf(nil, "k/%04d", i), Value: fmt.Appendf(make([]byte, 0, 1024), "%04d:%01000d", round, i)}
			if _, err := s.Write(context.Background(), op); err != nil {
				t.Fatal(err)
			}
		}
	}
	return reopenCompacted(t, s, opts)
}

// reopenCompacted closes s, which flushes its memtables to level 0, opens
// the store again and compacts the whole LSM tree into one level before
// returning it, so that Badger's discard statistics count every
// overwritten value. The returned store is closed when the test ends.
func reopenCompacted(t *testing.T, s *Store, opts Options) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.db.Flatten(s.opts.NumCompactors); err != nil {
		t.Fatalf("Flatten: %v", err)
	}
	return s
}

// TestGCLoop checks that the background GC runs every GCInterval and
// stops with Close.
func TestGCLoop(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir(), GCInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.gcRounds.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d GC rounds in 5s with a 5ms interval", s.gcRounds.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Close has waited for the GC loop to return, so the count is final
	// and goleak (TestMain) checks that no goroutine is left.
	n := s.gcRounds.Load()
	if _, _, err := s.Get(context.Background(), []byte("k"), nil); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("Get after Close = %v, want ErrClosed", err)
	}
	if m := s.gcRounds.Load(); m != n {
		t.Fatalf("GC ran %d rounds after Close", m-n)
	}
}

// TestGCPolicy drives the GC policy with its own clock and byte counts: a
// write step runs a round, a wake-up without one runs a round until the
// writes have stayed below a step for idleAfter, then the idle pass once,
// then nothing until the next step.
func TestGCPolicy(t *testing.T) {
	const step = 100
	t0 := time.Unix(1_000_000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	type wake struct {
		at      float64 // seconds after Open
		written int64   // bytes written since Open
		want    gcAction
	}
	for _, tc := range []struct {
		name      string
		idleAfter time.Duration
		wakes     []wake
	}{
		{"idle after open", 10 * time.Second, []wake{
			{5, 0, gcRoundAt},
			{10, 0, gcIdlePass}, // Open counts as a step: a store reopened with garbage is cleaned
			{20, 0, gcNothing},
			{30, 50, gcNothing}, // less than a step
		}},
		{"load then idle", 10 * time.Second, []wake{
			{1, 100, gcRoundAt},
			{2, 250, gcRoundAt},
			{10, 320, gcRoundAt}, // 8 s since the last step
			{12, 340, gcIdlePass},
			{13, 340, gcNothing},
			{14, 350, gcRoundAt}, // a step since the last one seen (250)
			{20, 360, gcRoundAt},
			{24, 360, gcIdlePass},
			{60, 360, gcNothing},
		}},
		{"a long round", 10 * time.Second, []wake{
			{1, 100, gcRoundAt},
			// The round took 30 s; the writes went on. The ticker may
			// wake the loop before the pending signal does: it is still
			// a step, not an idle spell.
			{31, 3000, gcRoundAt},
			{32, 3050, gcRoundAt},
			{42, 3050, gcIdlePass},
		}},
		{"sustained load", 10 * time.Second, []wake{
			{3, 100, gcRoundAt}, {6, 150, gcRoundAt}, {9, 200, gcRoundAt}, {12, 260, gcRoundAt},
			{15, 300, gcRoundAt}, {18, 390, gcRoundAt}, {21, 400, gcRoundAt}, {24, 450, gcRoundAt},
		}},
		{"no idle pass", -1, []wake{
			{1, 100, gcRoundAt}, {100, 100, gcRoundAt}, {1000, 100, gcRoundAt},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newGCPolicy(step, tc.idleAfter, t0)
			for _, w := range tc.wakes {
				if got := p.decide(at(w.at), w.written); got != w.want {
					t.Fatalf("at %vs with %d bytes written: %v, want %v", w.at, w.written, got, w.want)
				}
			}
		})
	}
}

// TestGCCounter checks that the counter signals once per step of bytes
// and keeps at most one signal pending.
func TestGCCounter(t *testing.T) {
	c := newGCCounter(100)
	pending := func() bool {
		select {
		case <-c.kick:
			return true
		default:
			return false
		}
	}
	c.wrote(60)
	if pending() {
		t.Fatal("signalled after 60 of 100 bytes")
	}
	c.wrote(60) // 120: crosses 100
	if !pending() {
		t.Fatal("no signal after 120 of 100 bytes")
	}
	c.wrote(50) // 170
	if pending() {
		t.Fatal("signalled again within the second step")
	}
	c.wrote(100) // 270: crosses 200
	c.wrote(100) // 370: crosses 300, while one is pending
	if !pending() || pending() {
		t.Fatal("want exactly one pending signal after two steps")
	}
	c.wrote(1000) // several steps at once: one signal
	if !pending() {
		t.Fatal("no signal after a write of several steps")
	}
	var none *gcCounter // no background GC
	none.wrote(1 << 30)
}

// TestIdlePassReclaims overwrites the same keys while every write stays
// in the memtable, so that Badger's discard statistics know of no
// garbage and a GC round rewrites nothing. The idle pass must flush,
// compact and rewrite until the value log holds little more than the
// live data, keeping every live value.
func TestIdlePassReclaims(t *testing.T) {
	t.Parallel()
	opts := Options{
		Dir:              t.TempDir(),
		ValueLogFileSize: 1 << 20,
		GCInterval:       -1, // the test runs the GC steps itself
	}
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	const keys, rounds = 400, 20
	for round := range rounds {
		for i := range keys {
			op := storage.Op{Key: fmt.Appendf(nil, "k/%04d", i), Value: fmt.Appendf(make([]byte, 0, 1024), "%04d:%01000d", round, i)}
			if _, err := s.Write(ctx, op); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, live, err := s.Live(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, before := s.Size()
	if n := s.gcRun(gcRoundAt); n != 0 {
		t.Fatalf("a round rewrote %d files with every write in the memtable; the test no longer shows what the idle pass adds", n)
	}
	rewrites := s.gcRun(gcIdlePass)
	_, after := s.Size()
	t.Logf("live %d KB; idle pass rewrote %d value-log files: %d KB -> %d KB", live>>10, rewrites, before>>10, after>>10)
	// Every file but the one being written (which GC never rewrites)
	// is less than GCIdleDiscardRatio garbage.
	if limit := int64(float64(live)/(1-s.opts.GCIdleDiscardRatio)) + opts.ValueLogFileSize; rewrites == 0 || after > limit {
		t.Fatalf("after the idle pass the value log is %d KB for %d KB live; want at most %d KB", after>>10, live>>10, limit>>10)
	}
	for i := range keys {
		got, _, err := s.Get(ctx, fmt.Appendf(nil, "k/%04d", i), nil)
		if want := fmt.Sprintf("%04d:%01000d", rounds-1, i); err != nil || string(got) != want {
			t.Fatalf("after the idle pass, key %d = %.20q…, %v; want %.20q…", i, got, err, want)
		}
	}
	// The flush sentinel is gone.
	err = s.scan(ctx, nil, false, func(key, _ []byte, _ storage.Version) error {
		if string(key) == flushPrefix {
			return fmt.Errorf("the flush sentinel %q is still stored", key)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestFlushMemtablesUnderWrites flushes the memtables while writers
// write and readers read: DropPrefix, which the flush relies on, fails
// every write that reaches Badger meanwhile, so the flush must hold the
// writes back, not fail them.
func TestFlushMemtablesUnderWrites(t *testing.T) {
	for _, group := range []bool{true, false} {
		t.Run(fmt.Sprint("group=", group), func(t *testing.T) {
			s, err := Open(Options{Dir: t.TempDir(), GCInterval: -1, DisableGroupCommit: !group})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			ctx, cancel := context.WithCancel(context.Background())
			const writers, readers = 4, 2
			errs := make(chan error, writers+readers)
			written := make([]int, writers)
			for r := range readers {
				go func() {
					var err error
					for i := 0; ctx.Err() == nil; i++ {
						_, _, err = s.Get(context.Background(), fmt.Appendf(nil, "w%d/%d", r, i%50), nil)
						if errors.Is(err, storage.ErrNotFound) {
							err = nil
						}
						if err != nil {
							break
						}
					}
					errs <- err
				}()
			}
			for w := range writers {
				go func() {
					var err error
					for i := 0; ctx.Err() == nil; i++ {
						op := storage.Op{Key: fmt.Appendf(nil, "w%d/%d", w, i%50), Value: fmt.Appendf(nil, "%d:%0500d", i, w)}
						if _, err = s.Write(context.Background(), op); err != nil {
							break
						}
						written[w] = i
					}
					errs <- err
				}()
			}
			for range 5 {
				if err := s.flushMemtables(); err != nil {
					t.Errorf("flush: %v", err)
				}
			}
			cancel()
			for range writers + readers {
				if err := <-errs; err != nil {
					t.Errorf("a write or read during the flushes failed: %v", err)
				}
			}
			for w, last := range written {
				got, _, err := s.Get(context.Background(), fmt.Appendf(nil, "w%d/%d", w, last%50), nil)
				if want := fmt.Sprintf("%d:%0500d", last, w); err != nil || string(got) != want {
					t.Fatalf("writer %d's last write: %.10q…, %v; want %.10q…", w, got, err, want)
				}
			}
		})
	}
}

// TestGCLoopPacing checks that the loop runs a round when the writes fill
// a step, with a ticker that never fires, and runs the idle pass once
// the writes stop, once per quiet spell.
func TestGCLoopPacing(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir(), GCInterval: time.Hour, GCWriteStep: 64 << 10, GCIdleAfter: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	value := make([]byte, 1000) // above ValueThreshold
	for i := range 70 {         // 70,000 bytes: one step of 65,536
		if _, err := s.Write(context.Background(), storage.Op{Key: fmt.Appendf(nil, "k%d", i), Value: value}); err != nil {
			t.Fatal(err)
		}
	}
	// The write step signals the loop; the hour-long ticker cannot
	// wake it.
	waitFor(t, "a round after a write step", func() bool { return s.gcRounds.Load() >= 1 })

	idle, err := Open(Options{Dir: t.TempDir(), GCInterval: 2 * time.Millisecond, GCIdleAfter: time.Millisecond, GCWriteStep: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idle.Close() })
	waitFor(t, "the idle pass after Open", func() bool { return idle.gcIdles.Load() == 1 })
	r := idle.gcRounds.Load()
	waitFor(t, "five more wake-ups", func() bool { return idle.gcRounds.Load() >= r+5 })
	if n := idle.gcIdles.Load(); n != 1 {
		t.Fatalf("%d idle passes without a write since the first", n)
	}
	for i := range 70 {
		if _, err := idle.Write(context.Background(), storage.Op{Key: fmt.Appendf(nil, "k%d", i), Value: value}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "a second idle pass after a write step", func() bool { return idle.gcIdles.Load() == 2 })
}

// waitFor polls cond until it holds, failing the test after a minute: for
// a condition the test has brought about and that background work must
// now see, however busy the machine.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
