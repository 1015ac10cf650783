package badger_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tailorhq/tailor/storage"
	"github.com/tailorhq/tailor/storage/badger"
	"github.com/tailorhq/tailor/storage/storagetest"
)

// openBadger opens a store with opts and closes it at the end of the test.
func openBadger(t testing.TB, opts badger.Options) *badger.Store {
	t.Helper()
	s, err := badger.Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestBadgerConformance(t *testing.T) {
	const claimAfter = 300 * time.Millisecond
	reopen := func(t *testing.T, s storage.Store) storage.Store {
		b := s.(*badger.Store)
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		return openBadger(t, b.Options())
	}
	configs := []struct {
		name   string
		opts   func(t *testing.T) badger.Options
		reopen func(t *testing.T, s storage.Store) storage.Store
	}{
		{"disk/group", func(t *testing.T) badger.Options {
			return badger.Options{Dir: t.TempDir(), SyncWrites: true, ClaimAfter: claimAfter}
		}, reopen},
		{"disk/nogroup", func(t *testing.T) badger.Options {
			return badger.Options{Dir: t.TempDir(), DisableGroupCommit: true, ClaimAfter: claimAfter}
		}, reopen},
		{"memory/group", func(t *testing.T) badger.Options {
			return badger.Options{InMemory: true, ClaimAfter: claimAfter}
		}, nil},
		{"memory/nogroup", func(t *testing.T) badger.Options {
			return badger.Options{InMemory: true, DisableGroupCommit: true, ClaimAfter: claimAfter}
		}, nil},
		// A filter of two slots, so that keys collide in it all the
		// time, and none at all: conditions are checked in the tree.
		{"memory/tinyfilter", func(t *testing.T) badger.Options {
			return badger.Options{InMemory: true, VersionFilterSize: 16, ClaimAfter: claimAfter}
		}, nil},
		{"memory/nofilter", func(t *testing.T) badger.Options {
			return badger.Options{InMemory: true, VersionFilterSize: -1, ClaimAfter: claimAfter}
		}, nil},
	}
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			storagetest.Run(t, storagetest.Config{
				Open: func(t *testing.T) storage.Store {
					return openBadger(t, c.opts(t))
				},
				Reopen:     c.reopen,
				Ordered:    true,
				ClaimAfter: claimAfter,
			})
		})
	}
}

func TestOpenInvalidOptions(t *testing.T) {
	tests := []struct {
		name  string
		opts  badger.Options
		field string
	}{
		{"no dir", badger.Options{}, "Dir"},
		{"dir and memory", badger.Options{Dir: "x", InMemory: true}, "Dir"},
		{"threshold", badger.Options{InMemory: true, ValueThreshold: 2 << 20}, "ValueThreshold"},
		{"memtable", badger.Options{InMemory: true, MemTableSize: 1024}, "MemTableSize"},
		{"memtables", badger.Options{InMemory: true, NumMemtables: -1}, "NumMemtables"},
		{"block cache", badger.Options{InMemory: true, BlockCacheSize: -1}, "BlockCacheSize"},
		{"index cache", badger.Options{InMemory: true, IndexCacheSize: -1}, "IndexCacheSize"},
		{"compactors", badger.Options{InMemory: true, NumCompactors: 1}, "NumCompactors"},
		{"vlog file", badger.Options{InMemory: true, ValueLogFileSize: 4 << 30}, "ValueLogFileSize"},
		{"gc ratio", badger.Options{InMemory: true, GCDiscardRatio: 1}, "GCDiscardRatio"},
		{"gc idle ratio", badger.Options{InMemory: true, GCIdleDiscardRatio: -0.1}, "GCIdleDiscardRatio"},
		{"level 0 tables", badger.Options{InMemory: true, NumLevelZeroTables: -1}, "NumLevelZeroTables"},
		{"claim after", badger.Options{InMemory: true, ClaimAfter: -1}, "ClaimAfter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := badger.Open(tt.opts)
			if err == nil {
				s.Close()
				t.Fatal("Open accepted invalid options")
			}
			if !strings.Contains(err.Error(), "Options."+tt.field) {
				t.Fatalf("error %q does not name Options.%s", err, tt.field)
			}
		})
	}
}

// TestBadgerDurable writes concurrently with SyncWrites, closes, reopens
// and finds every acknowledged write.
func TestBadgerDurable(t *testing.T) {
	for _, group := range []bool{true, false} {
		t.Run(fmt.Sprintf("group=%v", group), func(t *testing.T) {
			dir := t.TempDir()
			opts := badger.Options{Dir: dir, SyncWrites: true, DisableGroupCommit: !group}
			s, err := badger.Open(opts)
			if err != nil {
				t.Fatal(err)
			}
			const writers, perWriter = 8, 12
			value := bytes.Repeat([]byte("v"), 1000) // above ValueThreshold: value log
			var wg sync.WaitGroup
			var mu sync.Mutex
			acked := map[string]bool{}
			for w := range writers {
				wg.Go(func() {
					for i := range perWriter {
						key := fmt.Sprintf("k/%d/%d", w, i)
						if _, err := s.Write(context.Background(), storage.Op{Key: []byte(key), Value: value}); err != nil {
							t.Errorf("Write: %v", err)
							return
						}
						mu.Lock()
						acked[key] = true
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			s = openBadger(t, opts)
			for key := range acked {
				got, _, err := s.Get(context.Background(), []byte(key), nil)
				if err != nil || !bytes.Equal(got, value) {
					t.Fatalf("after reopen Get(%q) = %d bytes, %v", key, len(got), err)
				}
			}
			if len(acked) != writers*perWriter {
				t.Fatalf("%d writes acknowledged, want %d", len(acked), writers*perWriter)
			}
		})
	}
}

// TestBadgerCloseWhileWriting closes the store while writers are busy:
// every Write either succeeds (and is then found after reopening) or
// returns ErrClosed.
func TestBadgerCloseWhileWriting(t *testing.T) {
	dir := t.TempDir()
	opts := badger.Options{Dir: dir}
	s, err := badger.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var acked []string
	started := make(chan struct{}, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				key := fmt.Sprintf("k/%d/%d", w, i)
				_, err := s.Write(context.Background(), storage.Op{Key: []byte(key), Value: []byte(key)})
				if errors.Is(err, storage.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Write: %v", err)
					return
				}
				mu.Lock()
				acked = append(acked, key)
				mu.Unlock()
				if i == 10 {
					started <- struct{}{}
				}
			}
		})
	}
	for range 8 {
		<-started
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	s = openBadger(t, opts)
	for _, key := range acked {
		if got, _, err := s.Get(context.Background(), []byte(key), nil); err != nil || string(got) != key {
			t.Fatalf("acknowledged %q lost after Close: %q, %v", key, got, err)
		}
	}
}

// TestBadgerTooBig checks that a value too big for one transaction fails
// alone while the writes grouped with it commit.
func TestBadgerTooBig(t *testing.T) {
	for _, group := range []bool{true, false} {
		t.Run(fmt.Sprintf("group=%v", group), func(t *testing.T) {
			// 1 MiB memtables allow transactions of ~150 KiB.
			s := openBadger(t, badger.Options{InMemory: true, MemTableSize: 1 << 20, DisableGroupCommit: !group})
			var wg sync.WaitGroup
			errs := make([]error, 161)
			for w := range errs {
				wg.Go(func() {
					if w == 0 {
						_, errs[w] = s.Write(context.Background(), storage.Op{Key: []byte("huge"), Value: make([]byte, 400<<10)})
						return
					}
					// 160 writes of 1 KiB: more than one transaction's worth.
					_, errs[w] = s.Write(context.Background(), storage.Op{Key: fmt.Appendf(nil, "small/%03d", w), Value: make([]byte, 1024)})
				})
			}
			wg.Wait()
			if errs[0] == nil {
				t.Fatal("a value too big for a transaction was accepted")
			}
			for w, err := range errs[1:] {
				if err != nil {
					t.Fatalf("small write %d: %v", w+1, err)
				}
			}
			n := 0
			if err := s.Scan(context.Background(), nil, func(k, _ []byte, _ storage.Version) error {
				if bytes.HasPrefix(k, []byte("huge")) {
					return fmt.Errorf("the rejected value was written: %q", k)
				}
				n++
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if n != 160 {
				t.Fatalf("%d keys, want %d", n, 160)
			}
		})
	}
}

// TestBadgerLogger checks that Badger's log reaches the slog.Logger, its
// INFO demoted to Debug.
func TestBadgerLogger(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	h := slog.NewTextHandler(&lockedWriter{mu: &mu, w: &buf}, &slog.HandlerOptions{Level: slog.LevelDebug})
	s, err := badger.Open(badger.Options{Dir: t.TempDir(), Logger: slog.New(h)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if !strings.Contains(out, "level=DEBUG") || !strings.Contains(out, "component=badger") {
		t.Fatalf("no Badger debug lines in log:\n%s", out)
	}
	if strings.Contains(out, "level=INFO") {
		t.Fatalf("Badger INFO not demoted to DEBUG:\n%s", out)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestBadgerSize(t *testing.T) {
	s := openBadger(t, badger.Options{Dir: t.TempDir()})
	if lsm, vlog := s.Size(); lsm != 0 || vlog > 64<<10 {
		t.Fatalf("empty store: Size() = %d, %d", lsm, vlog)
	}
	for i := range 100 {
		op := storage.Op{Key: fmt.Appendf(nil, "k%03d", i), Value: bytes.Repeat([]byte{byte(i)}, 10_000)}
		if _, err := s.Write(context.Background(), op); err != nil {
			t.Fatal(err)
		}
	}
	// 1 MB of values above ValueThreshold land in the value log.
	if _, vlog := s.Size(); vlog < 1_000_000 || vlog > 4<<20 {
		t.Fatalf("after writing 1 MB: value log %d bytes", vlog)
	}
	mem := openBadger(t, badger.Options{InMemory: true})
	if lsm, vlog := mem.Size(); lsm != 0 || vlog != 0 {
		t.Fatalf("in memory: Size() = %d, %d", lsm, vlog)
	}
}

// TestReservedPrefixes checks that Write refuses the keys of Badger, of the
// store's queues and of the GC's flush sentinel, naming the field.
func TestReservedPrefixes(t *testing.T) {
	s := openBadger(t, badger.Options{InMemory: true})
	for _, key := range []string{"!badger!head", "~q/imports/x", "~flush"} {
		_, err := s.Write(context.Background(), storage.Op{Key: []byte(key), Value: []byte("v")})
		if err == nil || !strings.Contains(err.Error(), "Op.Key") {
			t.Errorf("Write(%q) = %v, want an error naming Op.Key", key, err)
		}
	}
}
