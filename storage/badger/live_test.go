package badger_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/tailorhq/tailor/storage"
	"github.com/tailorhq/tailor/storage/badger"
)

// TestLive checks that Live counts each live key once, with its latest
// value, whether that value sits inline in the LSM tree or in the value
// log, and leaves out overwritten and deleted values.
func TestLive(t *testing.T) {
	for _, reopen := range []bool{false, true} {
		t.Run(fmt.Sprint("reopen=", reopen), func(t *testing.T) {
			opts := badger.Options{Dir: t.TempDir(), GCInterval: -1}
			s := openBadger(t, opts)
			ctx := context.Background()
			var wantKeys, wantBytes, vlogValues int64
			for i := range 300 {
				key := fmt.Appendf(nil, "k/%03d", i)
				size := 100 // inline
				if i%2 == 0 {
					size = 2000 // in the value log
				}
				// Overwritten twice: only the last value is live.
				for round := range 3 {
					op := storage.Op{Key: key, Value: bytes.Repeat([]byte{byte(round)}, size+round)}
					if _, err := s.Write(ctx, op); err != nil {
						t.Fatal(err)
					}
				}
				if i%3 == 0 {
					if _, err := s.Write(ctx, storage.Op{Key: key, Delete: true}); err != nil {
						t.Fatal(err)
					}
					continue
				}
				wantKeys++
				wantBytes += int64(len(key) + size + 2)
				if size > badger.DefaultValueThreshold {
					vlogValues++
				}
			}
			if reopen {
				// Flushed to level 0: read from tables, not the memtable.
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				s = openBadger(t, opts)
			}
			keys, n, err := s.Live(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// Badger estimates a value-log value's length from its
			// pointer to within the few bytes of its varint header.
			if keys != wantKeys || n < wantBytes-4*vlogValues || n > wantBytes+4*vlogValues {
				t.Fatalf("Live = %d keys, %d bytes; want %d keys, %d bytes (± %d)", keys, n, wantKeys, wantBytes, 4*vlogValues)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.Live(ctx); !errors.Is(err, storage.ErrClosed) {
				t.Fatalf("Live after Close = %v, want ErrClosed", err)
			}
		})
	}
}

// TestLiveCountsQueues checks that messages of the store's queues, kept in
// its own keys, count as live data.
func TestLiveCountsQueues(t *testing.T) {
	s := openBadger(t, badger.Options{InMemory: true})
	ctx := context.Background()
	_, before, err := s.Live(ctx)
	if err != nil {
		t.Fatal(err)
	}
	q, err := s.Queue("imports")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Enqueue(ctx, bytes.Repeat([]byte("x"), 500), 10); err != nil {
		t.Fatal(err)
	}
	keys, after, err := s.Live(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if keys != 1 || after-before < 500 {
		t.Fatalf("after appending 500 bytes: Live = %d keys, %d bytes (before %d)", keys, after, before)
	}
}
