package badger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tailorhq/tailor/storage"
)

// TestWriteCancelWhileWaiting checks that a Write waiting for a busy
// committer gives up when its context is cancelled, and that its op is
// not handed over afterwards.
func TestWriteCancelWhileWaiting(t *testing.T) {
	// No committer goroutine reads commits: every Write waits.
	s := &Store{commits: make(chan *commitReq)}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := s.Write(ctx, storage.Op{Key: []byte("k"), Value: []byte("v")})
		errc <- err
	}()
	select {
	case err := <-errc:
		t.Fatalf("Write returned %v before the committer took its op", err)
	case <-time.After(20 * time.Millisecond):
	}
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Write = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Write still waiting 5s after its context was cancelled")
	}
	select {
	case r := <-s.commits:
		t.Fatalf("cancelled op handed to the committer: %q", r.op.Key)
	default:
	}
}

// TestCommitGroupOneWritePerKey hands the committer one group holding
// several writes of the same keys, unconditional and conditional: each
// write gets its own version, the last write of a key wins, and a
// condition on the version before the group fails once an earlier write
// of the group changed the key.
func TestCommitGroupOneWritePerKey(t *testing.T) {
	s, err := Open(Options{InMemory: true, DisableGroupCommit: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	v0, err := s.Write(ctx, storage.Op{Key: []byte("a"), Value: []byte("a0")})
	if err != nil {
		t.Fatal(err)
	}
	ops := []storage.Op{
		{Key: []byte("a"), Value: []byte("a1"), IfVersion: v0},
		{Key: []byte("b"), Value: []byte("b1")},
		{Key: []byte("a"), Value: []byte("a2")},
		{Key: []byte("a"), Value: []byte("stale"), IfVersion: v0},
		{Key: []byte("b"), Value: []byte("b2"), IfAbsent: true},
	}
	reqs := make([]*commitReq, len(ops))
	for i := range ops {
		reqs[i] = &commitReq{op: ops[i], done: make(chan struct{}, 1)}
	}
	s.commitGroup(reqs)
	wantErr := []error{nil, nil, nil, storage.ErrConflict, storage.ErrConflict}
	seen := map[storage.Version]string{}
	for i, r := range reqs {
		<-r.done
		if !errors.Is(r.err, wantErr[i]) || (wantErr[i] == nil) != (r.err == nil) {
			t.Fatalf("op %d (%s=%s): err %v, want %v", i, ops[i].Key, ops[i].Value, r.err, wantErr[i])
		}
		if r.err == nil {
			if prev, dup := seen[r.version]; dup && prev == string(ops[i].Key) {
				t.Fatalf("op %d: version %d given to two writes of %s", i, r.version, ops[i].Key)
			}
			seen[r.version] = string(ops[i].Key)
		}
	}
	for key, want := range map[string]string{"a": "a2", "b": "b1"} {
		got, v, err := s.Get(ctx, []byte(key), nil)
		if err != nil || string(got) != want {
			t.Fatalf("%s = %q, %v; want %q", key, got, err, want)
		}
		last := reqs[2]
		if key == "b" {
			last = reqs[1]
		}
		if v != last.version {
			t.Fatalf("%s at version %d, its last write returned %d", key, v, last.version)
		}
	}
}

// TestGroupCommitRacingConditions has many goroutines increment a few
// counters by conditional writes, so that the committer sees several
// writes of a key per group: no increment is lost.
func TestGroupCommitRacingConditions(t *testing.T) {
	s, err := Open(Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	const keys, workers, per = 3, 32, 30
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			key := fmt.Appendf(nil, "n/%d", w%keys)
			for range per {
				for {
					b, v, err := s.Get(ctx, key, nil)
					n := 0
					switch {
					case errors.Is(err, storage.ErrNotFound):
					case err != nil:
						t.Error(err)
						return
					default:
						fmt.Sscan(string(b), &n)
					}
					op := storage.Op{Key: key, Value: fmt.Append(nil, n+1), IfVersion: v, IfAbsent: v == 0}
					if _, err := s.Write(ctx, op); errors.Is(err, storage.ErrConflict) {
						continue
					} else if err != nil {
						t.Error(err)
						return
					}
					break
				}
			}
		})
	}
	wg.Wait()
	total := 0
	for k := range keys {
		b, _, err := s.Get(ctx, fmt.Appendf(nil, "n/%d", k), nil)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		fmt.Sscan(string(b), &n)
		total += n
	}
	if total != workers*per {
		t.Fatalf("counters sum to %d, want %d", total, workers*per)
	}
}

// TestVersionFilter drives conditional writes through a filter of two
// slots, where keys collide: a condition the filter cannot prove is
// checked in the tree, a stale one always fails, and a key written with a
// TTL is always checked in the tree (it may expire without a write).
func TestVersionFilter(t *testing.T) {
	s := twoSlotFilterStore(t)
	ctx := context.Background()
	write := func(key string, v storage.Version, ttl time.Duration) (storage.Version, error) {
		return s.Write(ctx, storage.Op{Key: []byte(key), Value: []byte("x"), IfVersion: v, TTL: ttl})
	}
	versions := map[string]storage.Version{}
	for i := range 40 {
		key := fmt.Sprint("k", i%5)
		v, err := write(key, versions[key], 0)
		if err != nil {
			t.Fatalf("write %d of %s on version %d: %v", i, key, versions[key], err)
		}
		if old := versions[key]; old != 0 {
			if _, err := write(key, old, 0); !errors.Is(err, storage.ErrConflict) {
				t.Fatalf("write of %s on its previous version %d: %v, want ErrConflict", key, old, err)
			}
		}
		versions[key] = v
	}
	v, err := write("ttl", 0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if s.filter.holds([]byte("ttl"), uint64(v)) {
		t.Fatal("the filter vouches for a key written with a TTL")
	}
	if _, err := write("ttl", v, time.Hour); err != nil {
		t.Fatalf("write on the TTL key's version: %v", err)
	}
}

// TestVersionFilterReads reads keys that collide in a filter of two slots
// while they are overwritten and deleted: every Get sees the latest write,
// whichever key last wrote its slot, and a key that was its slot's last
// writer is read at exactly its version (where Badger stops searching).
func TestVersionFilterReads(t *testing.T) {
	s := twoSlotFilterStore(t)
	ctx := context.Background()
	latest := map[string]string{}
	for i := range 60 {
		key := fmt.Sprint("k", i%7)
		op := storage.Op{Key: []byte(key), Value: []byte(fmt.Sprint("v", i))}
		if i%11 == 10 {
			op = storage.Op{Key: []byte(key), Delete: true}
		} else if i%13 == 12 {
			op.TTL = time.Hour
		}
		v, err := s.Write(ctx, op)
		if err != nil {
			t.Fatalf("write %d of %s: %v", i, key, err)
		}
		if op.Delete {
			delete(latest, key)
		} else {
			latest[key] = string(op.Value)
			if got := s.filter.readTs(op.Key); got != uint64(v) {
				t.Fatalf("after writing %s at %d, its slot reads at %d", key, v, got)
			}
		}
		for k := range 7 {
			key := fmt.Sprint("k", k)
			b, _, err := s.Get(ctx, []byte(key), nil)
			want, ok := latest[key]
			switch {
			case !ok && !errors.Is(err, storage.ErrNotFound):
				t.Fatalf("after write %d, Get(%s) = %q, %v; want ErrNotFound", i, key, b, err)
			case ok && (err != nil || string(b) != want):
				t.Fatalf("after write %d, Get(%s) = %q, %v; want %q", i, key, b, err, want)
			}
		}
	}
}

// twoSlotFilterStore opens an in-memory store whose version filter has
// two slots, so that keys collide in it all the time.
func twoSlotFilterStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(Options{InMemory: true, VersionFilterSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
