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
	rewrites := s.gcRound()
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
