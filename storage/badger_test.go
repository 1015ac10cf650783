package storage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/tailorhq/tailor/storage"
	"github.com/tailorhq/tailor/storage/storagetest"
)

// openBadger opens a store with opts and closes it at the end of the test.
func openBadger(t testing.TB, opts storage.BadgerOptions) *storage.Badger {
	t.Helper()
	s, err := storage.OpenBadger(opts)
	if err != nil {
		t.Fatalf("OpenBadger: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestBadgerConformance(t *testing.T) {
	configs := []struct {
		name string
		opts func(t *testing.T) storage.BadgerOptions
	}{
		{"disk/group", func(t *testing.T) storage.BadgerOptions {
			return storage.BadgerOptions{Dir: t.TempDir(), SyncWrites: true}
		}},
		{"disk/nogroup", func(t *testing.T) storage.BadgerOptions {
			return storage.BadgerOptions{Dir: t.TempDir(), DisableGroupCommit: true}
		}},
		{"memory/group", func(t *testing.T) storage.BadgerOptions {
			return storage.BadgerOptions{InMemory: true}
		}},
		{"memory/nogroup", func(t *testing.T) storage.BadgerOptions {
			return storage.BadgerOptions{InMemory: true, DisableGroupCommit: true}
		}},
	}
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			storagetest.Run(t, func(t *testing.T) storage.Store {
				return openBadger(t, c.opts(t))
			})
		})
	}
}

func TestOpenBadgerInvalidOptions(t *testing.T) {
	tests := []struct {
		name  string
		opts  storage.BadgerOptions
		field string
	}{
		{"no dir", storage.BadgerOptions{}, "Dir"},
		{"dir and memory", storage.BadgerOptions{Dir: "x", InMemory: true}, "Dir"},
		{"threshold", storage.BadgerOptions{InMemory: true, ValueThreshold: 2 << 20}, "ValueThreshold"},
		{"memtable", storage.BadgerOptions{InMemory: true, MemTableSize: 1024}, "MemTableSize"},
		{"memtables", storage.BadgerOptions{InMemory: true, NumMemtables: -1}, "NumMemtables"},
		{"block cache", storage.BadgerOptions{InMemory: true, BlockCacheSize: -1}, "BlockCacheSize"},
		{"index cache", storage.BadgerOptions{InMemory: true, IndexCacheSize: -1}, "IndexCacheSize"},
		{"compactors", storage.BadgerOptions{InMemory: true, NumCompactors: 1}, "NumCompactors"},
		{"vlog file", storage.BadgerOptions{InMemory: true, ValueLogFileSize: 4 << 30}, "ValueLogFileSize"},
		{"gc ratio", storage.BadgerOptions{InMemory: true, GCDiscardRatio: 1}, "GCDiscardRatio"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := storage.OpenBadger(tt.opts)
			if err == nil {
				s.Close()
				t.Fatal("OpenBadger accepted invalid options")
			}
			if !strings.Contains(err.Error(), "BadgerOptions."+tt.field) {
				t.Fatalf("error %q does not name BadgerOptions.%s", err, tt.field)
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
			opts := storage.BadgerOptions{Dir: dir, SyncWrites: true, DisableGroupCommit: !group}
			s, err := storage.OpenBadger(opts)
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
						if err := s.Apply(context.Background(), []storage.Op{{Key: []byte(key), Value: value}}); err != nil {
							t.Errorf("Apply: %v", err)
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
				got, err := s.Get(context.Background(), []byte(key), nil)
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

// TestBadgerCloseWhileApplying closes the store while writers are busy:
// every Apply either succeeds (and is then found after reopening) or
// returns ErrClosed.
func TestBadgerCloseWhileApplying(t *testing.T) {
	dir := t.TempDir()
	opts := storage.BadgerOptions{Dir: dir}
	s, err := storage.OpenBadger(opts)
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
				err := s.Apply(context.Background(), []storage.Op{{Key: []byte(key), Value: []byte(key)}})
				if errors.Is(err, storage.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Apply: %v", err)
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
		if got, err := s.Get(context.Background(), []byte(key), nil); err != nil || string(got) != key {
			t.Fatalf("acknowledged %q lost after Close: %q, %v", key, got, err)
		}
	}
}

// TestBadgerTooBig checks that a batch too big for one transaction fails
// alone while the batches grouped with it commit.
func TestBadgerTooBig(t *testing.T) {
	for _, group := range []bool{true, false} {
		t.Run(fmt.Sprintf("group=%v", group), func(t *testing.T) {
			// 1 MiB memtables allow transactions of ~150 KiB.
			s := openBadger(t, storage.BadgerOptions{InMemory: true, MemTableSize: 1 << 20, DisableGroupCommit: !group})
			huge := make([]storage.Op, 2000)
			for i := range huge {
				huge[i] = storage.Op{Key: fmt.Appendf(nil, "huge/%04d", i), Value: make([]byte, 200)}
			}
			var wg sync.WaitGroup
			errs := make([]error, 33)
			for w := range errs {
				wg.Go(func() {
					if w == 0 {
						errs[w] = s.Apply(context.Background(), huge)
						return
					}
					// 32 batches of 5 KiB: more than one transaction's worth.
					ops := make([]storage.Op, 5)
					for i := range ops {
						ops[i] = storage.Op{Key: fmt.Appendf(nil, "small/%02d/%d", w, i), Value: make([]byte, 1024)}
					}
					errs[w] = s.Apply(context.Background(), ops)
				})
			}
			wg.Wait()
			if errs[0] == nil {
				t.Fatal("a batch too big for a transaction was accepted")
			}
			for w, err := range errs[1:] {
				if err != nil {
					t.Fatalf("small batch %d: %v", w+1, err)
				}
			}
			n := 0
			if err := s.Scan(context.Background(), nil, func(k, _ []byte) error {
				if bytes.HasPrefix(k, []byte("huge/")) {
					return fmt.Errorf("part of the rejected batch was written: %q", k)
				}
				n++
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if n != 32*5 {
				t.Fatalf("%d keys, want %d", n, 32*5)
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
	s, err := storage.OpenBadger(storage.BadgerOptions{Dir: t.TempDir(), Logger: slog.New(h)})
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
	s := openBadger(t, storage.BadgerOptions{Dir: t.TempDir()})
	if lsm, vlog := s.Size(); lsm != 0 || vlog > 64<<10 {
		t.Fatalf("empty store: Size() = %d, %d", lsm, vlog)
	}
	ops := make([]storage.Op, 100)
	for i := range ops {
		ops[i] = storage.Op{Key: fmt.Appendf(nil, "k%03d", i), Value: bytes.Repeat([]byte{byte(i)}, 10_000)}
	}
	if err := s.Apply(context.Background(), ops); err != nil {
		t.Fatal(err)
	}
	// 1 MB of values above ValueThreshold land in the value log.
	if _, vlog := s.Size(); vlog < 1_000_000 || vlog > 4<<20 {
		t.Fatalf("after writing 1 MB: value log %d bytes", vlog)
	}
	mem := openBadger(t, storage.BadgerOptions{InMemory: true})
	if lsm, vlog := mem.Size(); lsm != 0 || vlog != 0 {
		t.Fatalf("in memory: Size() = %d, %d", lsm, vlog)
	}
}
