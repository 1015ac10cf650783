// Package storagetest is the conformance suite for implementations of
// [storage.Store]: run it from a test of the implementation with
//
//	storagetest.Run(t, func(t *testing.T) storage.Store { ... })
//
// where the function opens a new, empty store and registers its Close with
// t.Cleanup. The suite checks the contract documented on storage.Store:
// ErrNotFound, copy-out Get, atomic Apply, Delete, ordered prefix Scan,
// TTL expiry, no lost write under concurrent Apply, Backup/Restore,
// cancellation and Close. It takes a few seconds, mostly waiting for TTLs,
// which are checked at one-second granularity (Badger's).
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tailorhq/tailor/storage"
)

// Run runs the conformance suite against the stores open returns. open is
// called once or more per subtest, each time for a new, empty store, and
// must register the store's Close with t.Cleanup (Close is then called
// twice for the subtests that close it themselves, which the contract
// allows).
func Run(t *testing.T, open func(t *testing.T) storage.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, open func(t *testing.T) storage.Store)
	}{
		{"GetMissing", testGetMissing},
		{"SetGet", testSetGet},
		{"GetCopiesOut", testGetCopiesOut},
		{"ApplyAtomic", testApplyAtomic},
		{"ApplyInvalidWritesNothing", testApplyInvalid},
		{"Delete", testDelete},
		{"ScanPrefixOrder", testScanPrefixOrder},
		{"ScanStop", testScanStop},
		{"TTL", testTTL},
		{"ConcurrentApply", testConcurrentApply},
		{"BackupRestore", testBackupRestore},
		{"CancelledContext", testCancelled},
		{"CloseTwice", testCloseTwice},
		{"ClosedErrors", testClosedErrors},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, open)
		})
	}
}

var ctx = context.Background()

func set(key, value string) storage.Op {
	return storage.Op{Key: []byte(key), Value: []byte(value)}
}

func del(key string) storage.Op {
	return storage.Op{Key: []byte(key), Delete: true}
}

func mustApply(t *testing.T, s storage.Store, ops ...storage.Op) {
	t.Helper()
	if err := s.Apply(ctx, ops); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

// wantValue fails t unless key holds want.
func wantValue(t *testing.T, s storage.Store, key, want string) {
	t.Helper()
	got, err := s.Get(ctx, []byte(key), nil)
	if err != nil {
		t.Fatalf("Get(%q): %v, want %q", key, err, want)
	}
	if string(got) != want {
		t.Fatalf("Get(%q) = %q, want %q", key, got, want)
	}
}

// wantMissing fails t unless Get of key returns ErrNotFound.
func wantMissing(t *testing.T, s storage.Store, key string) {
	t.Helper()
	got, err := s.Get(ctx, []byte(key), nil)
	if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, got, err)
	}
}

// kv is one key and value as Scan reports them.
type kv struct{ Key, Value string }

// scanAll returns what Scan reports for prefix, copied.
func scanAll(t *testing.T, s storage.Store, prefix string) []kv {
	t.Helper()
	var out []kv
	err := s.Scan(ctx, []byte(prefix), func(k, v []byte) error {
		out = append(out, kv{string(k), string(v)})
		return nil
	})
	if err != nil {
		t.Fatalf("Scan(%q): %v", prefix, err)
	}
	return out
}

func testGetMissing(t *testing.T, open func(t *testing.T) storage.Store) {
	s := open(t)
	wantMissing(t, s, "nope")
	mustApply(t, s, set("present", "x"))
	wantMissing(t, s, "presen")
	wantMissing(t, s, "present\x00")
}

func testSetGet(t *testing.T, open func(t *testing.T) storage.Store) {
	s := open(t)
	tests := []struct {
		name  string
		key   string
		value string
	}{
		{"empty value", "k-empty", ""},
		{"small", "k-small", "hello"},
		{"binary", "k-\x00\xff", "\x00\x01\x02\xff\x00"},
		{"2KB", "k-2kb", string(bytes.Repeat([]byte("0123456789abcdef"), 128))},
		{"overwrite", "k-small", "hello again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mustApply(t, s, set(tt.key, tt.value))
			wantValue(t, s, tt.key, tt.value)
		})
	}
}

func testGetCopiesOut(t *testing.T, open func(t *testing.T) storage.Store) {
	s := open(t)
	const value = "the stored value"
	mustApply(t, s, set("k", value))

	got, err := s.Get(ctx, []byte("k"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		got[i] = 'X'
	}
	wantValue(t, s, "k", value)

	// Get appends to dst[:0]: stale contents are dropped, and dst's array
	// is reused when it is large enough.
	dst := []byte("stale contents much longer than the stored value")
	got, err = s.Get(ctx, []byte("k"), dst)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != value {
		t.Fatalf("Get into dst = %q, want %q", got, value)
	}
	if &got[0] != &dst[0] {
		t.Errorf("Get did not reuse dst, whose capacity %d suffices for %d bytes", cap(dst), len(value))
	}
	got[0] = 'X'
	wantValue(t, s, "k", value)

	// A too-small dst grows.
	got, err = s.Get(ctx, []byte("k"), make([]byte, 0, 2))
	if err != nil || string(got) != value {
		t.Fatalf("Get into small dst = %q, %v; want %q", got, err, value)
	}
}

func testApplyAtomic(t *testing.T, open func(t *testing.T) storage.Store) {
	s := open(t)
	mustApply(t, s, set("a", "1"), set("b", "1"), set("c", "1"))
	mustApply(t, s, del("a"), set("b", "2"), set("d", "2"), del("never-existed"))
	want := []kv{{"b", "2"}, {"c", "1"}, {"d", "2"}}
	if got := scanAll(t, s, ""); !slices.Equal(got, want) {
		t.Fatalf("after batch: %q, want %q", got, want)
	}
	// An empty batch is a no-op.
	mustApply(t, s)
	if got := scanAll(t, s, ""); !slices.Equal(got, want) {
		t.Fatalf("after empty batch: %q, want %q", got, want)
	}
}

func testApplyInvalid(t *testing.T, open func(t *testing.T) storage.Store) {
	s := open(t)
	mustApply(t, s, set("keep", "v"))
	tests := []struct {
		name string
		ops  []storage.Op
	}{
		{"empty key last", []storage.Op{set("x", "1"), del("keep"), {Key: nil, Value: []byte("v")}}},
		{"empty key first", []storage.Op{{Key: []byte{}}, set("x", "1")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.Apply(ctx, tt.ops); err == nil {
				t.Fatal("Apply accepted an op with an empty key")
			}
			want := []kv{{"keep", "v"}}
			if got := scanAll(t, s, ""); !slices.Equal(got, want) {
				t.Fatalf("after rejected batch: %q, want %q", got, want)
			}
		})
	}
}

func testDelete(t *testing.T, open func(t *testing.T) storage.Store) {
	s := open(t)
	mustApply(t, s, set("k", "v"), set("k2", "v2"))
	mustApply(t, s, del("k"))
	wantMissing(t, s, "k")
	wantValue(t, s, "k2", "v2")
	mustApply(t, s, del("k")) // deleting a missing key is fine
	wantMissing(t, s, "k")
	mustApply(t, s, set("k", "again"))
	wantValue(t, s, "k", "again")
}

func testScanPrefixOrder(t *testing.T, open func(t *testing.T) storage.Store) {
	s := open(t)
	keys := []string{"b", "ab", "a", "abc", "a\x00", "ab\xff", "a1", "ac", "\xff", "ba", "`"}
	ops := make([]storage.Op, len(keys))
	for i, k := range keys {
		ops[i] = set(k, "v:"+k)
	}
	mustApply(t, s, ops...)
	pairs := func(keys ...string) []kv {
		out := make([]kv, len(keys))
		for i, k := range keys {
			out[i] = kv{k, "v:" + k}
		}
		return out
	}
	tests := []struct {
		prefix string
		want   []kv
	}{
		{"a", pairs("a", "a\x00", "a1", "ab", "abc", "ab\xff", "ac")},
		{"ab", pairs("ab", "abc", "ab\xff")},
		{"abc", pairs("abc")},
		{"b", pairs("b", "ba")},
		{"\xff", pairs("\xff")},
		{"", pairs("`", "a", "a\x00", "a1", "ab", "abc", "ab\xff", "ac", "b", "ba", "\xff")},
		{"zz", nil},
		{"abcd", nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.prefix), func(t *testing.T) {
			if got := scanAll(t, s, tt.prefix); !slices.Equal(got, tt.want) {
				t.Fatalf("Scan(%q) = %q, want %q", tt.prefix, got, tt.want)
			}
		})
	}
}

func testScanStop(t *testing.T, open func(t *testing.T) storage.Store) {
	s := open(t)
	mustApply(t, s, set("p1", "1"), set("p2", "2"), set("p3", "3"))
	errStop := errors.New("stop here")
	var seen []string
	err := s.Scan(ctx, []byte("p"), func(k, _ []byte) error {
		seen = append(seen, string(k))
		if len(seen) == 2 {
			return fmt.Errorf("wrapped: %w", errStop)
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("Scan returned %v, want the callback's error", err)
	}
	if want := []string{"p1", "p2"}; !slices.Equal(seen, want) {
		t.Fatalf("Scan visited %q, want %q", seen, want)
	}
}

func testTTL(t *testing.T, open func(t *testing.T) storage.Store) {
	s := open(t)
	// Badger counts TTL in whole seconds: a 2 s TTL lives between 1 and
	// 2 s, so the key is certainly still there right after the write.
	mustApply(t, s,
		storage.Op{Key: []byte("t-short"), Value: []byte("v"), TTL: 2 * time.Second},
		storage.Op{Key: []byte("t-long"), Value: []byte("v"), TTL: time.Hour},
		set("t-none", "v"),
	)
	wantValue(t, s, "t-short", "v")
	deadline := time.Now().Add(4 * time.Second)
	for {
		_, err := s.Get(ctx, []byte("t-short"), nil)
		if errors.Is(err, storage.ErrNotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("key with a 2s TTL still there after 4s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	want := []kv{{"t-long", "v"}, {"t-none", "v"}}
	if got := scanAll(t, s, "t-"); !slices.Equal(got, want) {
		t.Fatalf("Scan after expiry = %q, want %q", got, want)
	}
}

func testConcurrentApply(t *testing.T, open func(t *testing.T) storage.Store) {
	s := open(t)
	const writers, perWriter = 16, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				// Each batch writes a pair that must land together and
				// deletes the previous pair's marker.
				ops := []storage.Op{
					set(fmt.Sprintf("c/%02d/%03d/a", w, i), fmt.Sprint(w*1000+i)),
					set(fmt.Sprintf("c/%02d/%03d/b", w, i), fmt.Sprint(w*1000+i)),
					set(fmt.Sprintf("m/%02d/%03d", w, i), "marker"),
				}
				if i > 0 {
					ops = append(ops, del(fmt.Sprintf("m/%02d/%03d", w, i-1)))
				}
				if err := s.Apply(ctx, ops); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Apply: %v", err)
	}
	got := scanAll(t, s, "c/")
	if len(got) != 2*writers*perWriter {
		t.Fatalf("%d keys after %d concurrent writes of 2 keys, want %d", len(got), writers*perWriter, 2*writers*perWriter)
	}
	for w := range writers {
		for i := range perWriter {
			want := fmt.Sprint(w*1000 + i)
			for j, suffix := range []string{"a", "b"} {
				e := got[((w*perWriter)+i)*2+j]
				if wantKey := fmt.Sprintf("c/%02d/%03d/%s", w, i, suffix); e.Key != wantKey || e.Value != want {
					t.Fatalf("got %q=%q, want %q=%q", e.Key, e.Value, wantKey, want)
				}
			}
		}
	}
	markers := scanAll(t, s, "m/")
	if len(markers) != writers {
		t.Fatalf("%d markers left, want one per writer (%d): %q", len(markers), writers, markers)
	}
	for w, m := range markers {
		if want := fmt.Sprintf("m/%02d/%03d", w, perWriter-1); m.Key != want {
			t.Fatalf("marker %q left, want %q", m.Key, want)
		}
	}
}

func testBackupRestore(t *testing.T, open func(t *testing.T) storage.Store) {
	src := open(t)
	big := string(bytes.Repeat([]byte("x"), 4096))
	mustApply(t, src, set("p/1", "one"), set("p/2", "two"), set("p/big", big), set("gone", "x"), set("shared", "from backup"))
	mustApply(t, src, storage.Op{Key: []byte("p/ttl"), Value: []byte("lives"), TTL: time.Hour})
	mustApply(t, src, del("gone"), set("p/2", "two v2"))
	want := scanAll(t, src, "")

	var buf bytes.Buffer
	if err := src.Backup(ctx, &buf); err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if buf.Len() == 0 {
		t.Fatal("Backup wrote nothing")
	}

	// The destination has its own keys, some written more often (newer
	// versions) than in the source: Restore replaces the whole contents.
	dst := open(t)
	for i := range 50 {
		mustApply(t, dst, set("shared", fmt.Sprintf("old %d", i)), set("p/2", "dst"), set("only-in-dst", "x"))
	}
	mustApply(t, dst, del("p/1"))
	if err := dst.Restore(ctx, bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if got := scanAll(t, dst, ""); !slices.Equal(got, want) {
		t.Fatalf("restored store holds %q, want %q", got, want)
	}
	wantMissing(t, dst, "gone")
	wantMissing(t, dst, "only-in-dst")

	// A second, empty store restored from the same bytes is identical too.
	fresh := open(t)
	if err := fresh.Restore(ctx, bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatalf("Restore into empty store: %v", err)
	}
	if got := scanAll(t, fresh, ""); !slices.Equal(got, want) {
		t.Fatalf("restored empty store holds %q, want %q", got, want)
	}

	// Writes after a Restore win over the restored values, in a store
	// whose own history was shorter than the snapshot's.
	mustApply(t, fresh, set("p/1", "after restore"), del("p/2"))
	wantValue(t, fresh, "p/1", "after restore")
	wantMissing(t, fresh, "p/2")
	// The source keeps working after a Backup.
	mustApply(t, src, set("p/1", "source after backup"))
	wantValue(t, src, "p/1", "source after backup")
}

func testCancelled(t *testing.T, open func(t *testing.T) storage.Store) {
	s := open(t)
	mustApply(t, s, set("k", "v"))
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Apply(cctx, []storage.Op{set("new", "v"), del("k")}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Apply with a cancelled context = %v, want context.Canceled", err)
	}
	wantMissing(t, s, "new")
	wantValue(t, s, "k", "v")
	if _, err := s.Get(cctx, []byte("k"), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a cancelled context = %v, want context.Canceled", err)
	}
	called := false
	err := s.Scan(cctx, nil, func(_, _ []byte) error { called = true; return nil })
	if !errors.Is(err, context.Canceled) || called {
		t.Errorf("Scan with a cancelled context = %v (callback called: %v), want context.Canceled", err, called)
	}
	if err := s.Backup(cctx, &bytes.Buffer{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Backup with a cancelled context = %v, want context.Canceled", err)
	}
}

func testCloseTwice(t *testing.T, open func(t *testing.T) storage.Store) {
	s := open(t)
	mustApply(t, s, set("k", "v"))
	if err := s.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func testClosedErrors(t *testing.T, open func(t *testing.T) storage.Store) {
	s := open(t)
	mustApply(t, s, set("k", "v"))
	var buf bytes.Buffer
	if err := s.Backup(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, err := s.Get(ctx, []byte("k"), nil); return err }},
		{"Apply", func() error { return s.Apply(ctx, []storage.Op{set("k2", "v")}) }},
		{"Scan", func() error { return s.Scan(ctx, nil, func(_, _ []byte) error { return nil }) }},
		{"Backup", func() error { return s.Backup(ctx, &bytes.Buffer{}) }},
		{"Restore", func() error { return s.Restore(ctx, bytes.NewReader(buf.Bytes())) }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			if err := c.call(); !errors.Is(err, storage.ErrClosed) {
				t.Fatalf("%s after Close = %v, want ErrClosed", c.name, err)
			}
		})
	}
}
