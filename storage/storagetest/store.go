package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tailorhq/tailor/storage"
)

func set(key, value string) storage.Op {
	return storage.Op{Key: []byte(key), Value: []byte(value)}
}

func del(key string) storage.Op {
	return storage.Op{Key: []byte(key), Delete: true}
}

// mustWrite writes op and returns the new version.
func mustWrite(t *testing.T, s storage.Store, op storage.Op) storage.Version {
	t.Helper()
	v, err := s.Write(ctx, op)
	if err != nil {
		t.Fatalf("Write(%q): %v", op.Key, err)
	}
	if op.Delete && v != 0 {
		t.Fatalf("Write(delete %q) returned version %d, want 0", op.Key, v)
	}
	if !op.Delete && v == 0 {
		t.Fatalf("Write(%q) returned version 0", op.Key)
	}
	return v
}

func mustSet(t *testing.T, s storage.Store, kvs ...string) {
	t.Helper()
	for i := 0; i < len(kvs); i += 2 {
		mustWrite(t, s, set(kvs[i], kvs[i+1]))
	}
}

// wantValue fails t unless key holds want, and returns its version.
func wantValue(t *testing.T, s storage.Store, key, want string) storage.Version {
	t.Helper()
	got, v, err := s.Get(ctx, []byte(key), nil)
	if err != nil {
		t.Fatalf("Get(%q): %v, want %q", key, err, want)
	}
	if string(got) != want {
		t.Fatalf("Get(%q) = %q, want %q", key, got, want)
	}
	if v == 0 {
		t.Fatalf("Get(%q) returned version 0", key)
	}
	return v
}

// wantMissing fails t unless Get of key returns ErrNotFound.
func wantMissing(t *testing.T, s storage.Store, key string) {
	t.Helper()
	got, _, err := s.Get(ctx, []byte(key), nil)
	if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, got, err)
	}
}

// kv is one key and value as Scan reports them.
type kv struct{ Key, Value string }

// scanAll returns what Scan reports for prefix, copied and sorted by key
// (the contract leaves the order to the store), after checking that every
// key is reported once, with the version Get reports, and, for an
// ordered store, in key order.
func scanAll(t *testing.T, c Config, s storage.Store, prefix string) []kv {
	t.Helper()
	var out []kv
	versions := map[string]storage.Version{}
	err := s.Scan(ctx, []byte(prefix), func(k, v []byte, ver storage.Version) error {
		if _, dup := versions[string(k)]; dup {
			return fmt.Errorf("key %q reported twice", k)
		}
		versions[string(k)] = ver
		out = append(out, kv{string(k), string(v)})
		return nil
	})
	if err != nil {
		t.Fatalf("Scan(%q): %v", prefix, err)
	}
	sorted := slices.IsSortedFunc(out, func(a, b kv) int { return bytes.Compare([]byte(a.Key), []byte(b.Key)) })
	if c.Ordered && !sorted {
		t.Fatalf("Scan(%q) of an ordered store is out of key order: %q", prefix, out)
	}
	slices.SortFunc(out, func(a, b kv) int { return bytes.Compare([]byte(a.Key), []byte(b.Key)) })
	for _, e := range out {
		if _, v, err := s.Get(ctx, []byte(e.Key), nil); err != nil || v != versions[e.Key] {
			t.Fatalf("Scan reported %q at version %d; Get says %d, %v", e.Key, versions[e.Key], v, err)
		}
	}
	return out
}

func testGetMissing(t *testing.T, c Config) {
	s := c.Open(t)
	wantMissing(t, s, "nope")
	mustSet(t, s, "present", "x")
	wantMissing(t, s, "presen")
	wantMissing(t, s, "present\x00")
}

func testSetGet(t *testing.T, c Config) {
	s := c.Open(t)
	tests := []struct {
		name  string
		key   string
		value string
	}{
		{"empty value", "k-empty", ""},
		{"small", "k-small", "hello"},
		{"binary", "k-\x00\xff{}", "\x00\x01\x02\xff\x00"},
		{"2KB", "k-2kb", string(bytes.Repeat([]byte("0123456789abcdef"), 128))},
		{"64KB", "k-64kb", string(bytes.Repeat([]byte("0123456789abcdef"), 4096))},
		{"overwrite", "k-small", "hello again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := mustWrite(t, s, set(tt.key, tt.value))
			if got := wantValue(t, s, tt.key, tt.value); got != v {
				t.Fatalf("Get version %d, Write returned %d", got, v)
			}
		})
	}
}

func testGetCopiesOut(t *testing.T, c Config) {
	s := c.Open(t)
	const value = "the stored value"
	mustSet(t, s, "k", value)

	got, _, err := s.Get(ctx, []byte("k"), nil)
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
	got, _, err = s.Get(ctx, []byte("k"), dst)
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
	got, _, err = s.Get(ctx, []byte("k"), make([]byte, 0, 2))
	if err != nil || string(got) != value {
		t.Fatalf("Get into small dst = %q, %v; want %q", got, err, value)
	}
}

// testVersions checks that every write gives its key a version the key
// never had, also across a delete, and that the same value written again
// still gets a new version.
func testVersions(t *testing.T, c Config) {
	s := c.Open(t)
	seen := map[storage.Version]bool{}
	fresh := func(v storage.Version, what string) {
		t.Helper()
		if seen[v] {
			t.Fatalf("%s: version %d seen before for this key", what, v)
		}
		seen[v] = true
	}
	for i := range 20 {
		fresh(mustWrite(t, s, set("k", "same")), fmt.Sprintf("write %d", i))
		if i%5 == 4 {
			mustWrite(t, s, del("k"))
			wantMissing(t, s, "k")
		}
	}
	// Another key's writes do not change this key's version.
	v := mustWrite(t, s, set("k", "same"))
	fresh(v, "last write")
	mustSet(t, s, "other", "x", "other", "y")
	if got := wantValue(t, s, "k", "same"); got != v {
		t.Fatalf("version of k changed from %d to %d by writes of another key", v, got)
	}
}

// testConditional checks IfVersion and IfAbsent: a write whose condition
// holds applies, one whose condition fails returns ErrConflict and
// changes nothing, and a delete can be conditional too.
func testConditional(t *testing.T, c Config) {
	s := c.Open(t)
	conflict := func(op storage.Op, what string) {
		t.Helper()
		if v, err := s.Write(ctx, op); !errors.Is(err, storage.ErrConflict) {
			t.Fatalf("%s: Write = %d, %v; want ErrConflict", what, v, err)
		}
	}

	v1 := mustWrite(t, s, storage.Op{Key: []byte("k"), Value: []byte("one"), IfAbsent: true})
	conflict(storage.Op{Key: []byte("k"), Value: []byte("two"), IfAbsent: true}, "IfAbsent on an existing key")
	wantValue(t, s, "k", "one")

	v2 := mustWrite(t, s, storage.Op{Key: []byte("k"), Value: []byte("two"), IfVersion: v1})
	conflict(storage.Op{Key: []byte("k"), Value: []byte("stale"), IfVersion: v1}, "IfVersion of an older version")
	if got := wantValue(t, s, "k", "two"); got != v2 {
		t.Fatalf("version %d after a failed write, want %d", got, v2)
	}

	conflict(storage.Op{Key: []byte("missing"), Value: []byte("x"), IfVersion: v2}, "IfVersion on a missing key")
	wantMissing(t, s, "missing")

	conflict(storage.Op{Key: []byte("k"), Delete: true, IfVersion: v1}, "conditional delete at an older version")
	wantValue(t, s, "k", "two")
	mustWrite(t, s, storage.Op{Key: []byte("k"), Delete: true, IfVersion: v2})
	wantMissing(t, s, "k")
	conflict(storage.Op{Key: []byte("k"), Value: []byte("back"), IfVersion: v2}, "IfVersion of a deleted key's last version")
	mustWrite(t, s, storage.Op{Key: []byte("k"), Delete: true, IfAbsent: true}) // absent: holds
	v3 := mustWrite(t, s, storage.Op{Key: []byte("k"), Value: []byte("again"), IfAbsent: true})
	if v3 == v1 || v3 == v2 {
		t.Fatalf("recreated key got an old version %d", v3)
	}
}

func testInvalidOps(t *testing.T, c Config) {
	s := c.Open(t)
	mustSet(t, s, "keep", "v")
	tests := []struct {
		name string
		op   storage.Op
	}{
		{"nil key", storage.Op{Value: []byte("v")}},
		{"empty key", storage.Op{Key: []byte{}, Value: []byte("v")}},
		{"both conditions", storage.Op{Key: []byte("keep"), Value: []byte("x"), IfAbsent: true, IfVersion: 1}},
		{"negative TTL", storage.Op{Key: []byte("keep"), Value: []byte("x"), TTL: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Write(ctx, tt.op); err == nil || errors.Is(err, storage.ErrConflict) {
				t.Fatalf("Write accepted an invalid op (%v)", err)
			}
			if got := scanAll(t, c, s, ""); !slices.Equal(got, []kv{{"keep", "v"}}) {
				t.Fatalf("after a rejected op: %q", got)
			}
		})
	}
}

func testDelete(t *testing.T, c Config) {
	s := c.Open(t)
	mustSet(t, s, "k", "v", "k2", "v2")
	mustWrite(t, s, del("k"))
	wantMissing(t, s, "k")
	wantValue(t, s, "k2", "v2")
	mustWrite(t, s, del("k")) // deleting a missing key is fine
	wantMissing(t, s, "k")
	mustSet(t, s, "k", "again")
	wantValue(t, s, "k", "again")
}

func testScanPrefix(t *testing.T, c Config) {
	s := c.Open(t)
	keys := []string{"b", "ab", "a", "abc", "a\x00", "ab\xff", "a1", "ac", "\xff", "ba", "`", "a*", "a?", "a[x]", "a\\"}
	for _, k := range keys {
		mustSet(t, s, k, "v:"+k)
	}
	mustSet(t, s, "gone", "x")
	mustWrite(t, s, del("gone"))
	pairs := func(keys ...string) []kv {
		out := make([]kv, len(keys))
		for i, k := range keys {
			out[i] = kv{k, "v:" + k}
		}
		slices.SortFunc(out, func(a, b kv) int { return bytes.Compare([]byte(a.Key), []byte(b.Key)) })
		return out
	}
	tests := []struct {
		prefix string
		want   []kv
	}{
		{"a", pairs("a", "a\x00", "a1", "ab", "abc", "ab\xff", "ac", "a*", "a?", "a[x]", "a\\")},
		{"ab", pairs("ab", "abc", "ab\xff")},
		{"abc", pairs("abc")},
		{"a*", pairs("a*")},
		{"a[", pairs("a[x]")},
		{"b", pairs("b", "ba")},
		{"\xff", pairs("\xff")},
		{"", pairs(keys...)},
		{"zz", nil},
		{"abcd", nil},
		{"gone", nil},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.prefix), func(t *testing.T) {
			if got := scanAll(t, c, s, tt.prefix); !slices.Equal(got, tt.want) {
				t.Fatalf("Scan(%q) = %q, want %q", tt.prefix, got, tt.want)
			}
		})
	}
}

func testScanStop(t *testing.T, c Config) {
	s := c.Open(t)
	mustSet(t, s, "p1", "1", "p2", "2", "p3", "3")
	errStop := errors.New("stop here")
	var seen []string
	err := s.Scan(ctx, []byte("p"), func(k, _ []byte, _ storage.Version) error {
		seen = append(seen, string(k))
		if len(seen) == 2 {
			return fmt.Errorf("wrapped: %w", errStop)
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("Scan returned %v, want the callback's error", err)
	}
	if len(seen) != 2 {
		t.Fatalf("Scan visited %q after the callback's error, want it to stop at 2", seen)
	}
}

func testTTL(t *testing.T, c Config) {
	s := c.Open(t)
	// Badger counts TTL in whole seconds: a 2 s TTL lives between 1 and
	// 2 s, so the key is certainly still there right after the write.
	mustWrite(t, s, storage.Op{Key: []byte("t-short"), Value: []byte("v"), TTL: 2 * time.Second})
	mustWrite(t, s, storage.Op{Key: []byte("t-long"), Value: []byte("v"), TTL: time.Hour})
	mustSet(t, s, "t-none", "v")
	// A write without TTL removes an earlier expiry.
	mustWrite(t, s, storage.Op{Key: []byte("t-cleared"), Value: []byte("v"), TTL: 2 * time.Second})
	mustSet(t, s, "t-cleared", "v")
	wantValue(t, s, "t-short", "v")
	deadline := time.Now().Add(4 * time.Second)
	for {
		_, _, err := s.Get(ctx, []byte("t-short"), nil)
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
	// t-cleared was written with the same TTL before t-short was checked
	// gone, so it would have expired by now too.
	want := []kv{{"t-cleared", "v"}, {"t-long", "v"}, {"t-none", "v"}}
	if got := scanAll(t, c, s, "t-"); !slices.Equal(got, want) {
		t.Fatalf("Scan after expiry = %q, want %q", got, want)
	}
}

// testConcurrentWrites writes distinct keys from many goroutines: every
// acknowledged write is there.
func testConcurrentWrites(t *testing.T, c Config) {
	s := c.Open(t)
	const writers, perWriter = 16, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				if _, err := s.Write(ctx, set(fmt.Sprintf("c/%02d/%03d", w, i), fmt.Sprint(w*1000+i))); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Write: %v", err)
	}
	got := scanAll(t, c, s, "c/")
	if len(got) != writers*perWriter {
		t.Fatalf("%d keys after %d concurrent writes, want all", len(got), writers*perWriter)
	}
	for i, e := range got {
		w, j := i/perWriter, i%perWriter
		if want := (kv{fmt.Sprintf("c/%02d/%03d", w, j), fmt.Sprint(w*1000 + j)}); e != want {
			t.Fatalf("got %q, want %q", e, want)
		}
	}
}

// instances returns the stores to race writers on: two instances over the
// same data when the store can be shared, else one.
func instances(t *testing.T, c Config) []storage.Store {
	s := c.Open(t)
	if c.Share == nil {
		return []storage.Store{s}
	}
	return []storage.Store{s, c.Share(t, s)}
}

// testRacingConditionalWrites has goroutines spread over the instances
// increment one counter by read, compute, conditional write, retrying on
// ErrConflict: no increment may be lost or counted twice, and conflicts
// must actually occur (the writers do race).
func testRacingConditional(t *testing.T, c Config) {
	stores := instances(t, c)
	const writers, perWriter = 8, 50
	mustWrite(t, stores[0], set("counter", "0"))
	var wg sync.WaitGroup
	var mu sync.Mutex
	conflicts := 0
	errs := make(chan error, writers)
	for w := range writers {
		s := stores[w%len(stores)]
		wg.Go(func() {
			for range perWriter {
				for {
					b, v, err := s.Get(ctx, []byte("counter"), nil)
					if err != nil {
						errs <- err
						return
					}
					n, _ := strconv.Atoi(string(b))
					_, err = s.Write(ctx, storage.Op{Key: []byte("counter"), Value: []byte(strconv.Itoa(n + 1)), IfVersion: v})
					if errors.Is(err, storage.ErrConflict) {
						mu.Lock()
						conflicts++
						mu.Unlock()
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					break
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("racing writer: %v", err)
	}
	for _, s := range stores {
		wantValue(t, s, "counter", strconv.Itoa(writers*perWriter))
	}
	t.Logf("%d increments over %d instance(s), %d conflicts retried", writers*perWriter, len(stores), conflicts)
	if conflicts == 0 {
		t.Log("no conflict occurred: the writers never overlapped")
	}
}

// testRacingCreate has goroutines spread over the instances create the
// same keys with IfAbsent: exactly one creator wins each key.
func testRacingCreate(t *testing.T, c Config) {
	stores := instances(t, c)
	const creators, keys = 8, 20
	wins := make([]int, keys)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, creators)
	for w := range creators {
		s := stores[w%len(stores)]
		wg.Go(func() {
			for k := range keys {
				_, err := s.Write(ctx, storage.Op{Key: fmt.Appendf(nil, "claim/%02d", k), Value: []byte(strconv.Itoa(w)), IfAbsent: true})
				switch {
				case err == nil:
					mu.Lock()
					wins[k]++
					mu.Unlock()
				case !errors.Is(err, storage.ErrConflict):
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("creator: %v", err)
	}
	for k, n := range wins {
		if n != 1 {
			t.Fatalf("key %d created %d times, want exactly once", k, n)
		}
	}
}

func testBackupRestore(t *testing.T, c Config) {
	src := c.Open(t)
	if c.NoBackup {
		if err := src.Backup(ctx, &bytes.Buffer{}); !errors.Is(err, storage.ErrUnsupported) {
			t.Fatalf("Backup = %v, want an error wrapping ErrUnsupported", err)
		}
		if err := src.Restore(ctx, bytes.NewReader(nil)); !errors.Is(err, storage.ErrUnsupported) {
			t.Fatalf("Restore = %v, want an error wrapping ErrUnsupported", err)
		}
		return
	}
	big := string(bytes.Repeat([]byte("x"), 4096))
	mustSet(t, src, "p/1", "one", "p/2", "two", "p/big", big, "gone", "x", "shared", "from backup")
	mustWrite(t, src, storage.Op{Key: []byte("p/ttl"), Value: []byte("lives"), TTL: time.Hour})
	mustWrite(t, src, del("gone"))
	mustSet(t, src, "p/2", "two v2")
	q, err := src.Queue("restored")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Enqueue(ctx, []byte("queued before the backup"), 0); err != nil {
		t.Fatal(err)
	}
	want := scanAll(t, c, src, "")

	var buf bytes.Buffer
	if err := src.Backup(ctx, &buf); err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if buf.Len() == 0 {
		t.Fatal("Backup wrote nothing")
	}

	// The destination has its own keys, some written more often (newer
	// versions) than in the source: Restore replaces the whole contents.
	dst := c.Open(t)
	for i := range 50 {
		mustSet(t, dst, "shared", fmt.Sprintf("old %d", i), "p/2", "dst", "only-in-dst", "x")
	}
	mustWrite(t, dst, del("p/1"))
	dq, err := dst.Queue("restored")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dq.Enqueue(ctx, []byte("only in dst"), 0); err != nil {
		t.Fatal(err)
	}
	if err := dst.Restore(ctx, bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if got := scanAll(t, c, dst, ""); !slices.Equal(got, want) {
		t.Fatalf("restored store holds %q, want %q", got, want)
	}
	wantMissing(t, dst, "gone")
	wantMissing(t, dst, "only-in-dst")
	if n, err := dq.Len(ctx); err != nil || n != 1 {
		t.Fatalf("restored queue holds %d messages (%v), want the snapshot's 1", n, err)
	}
	m, err := dq.Next(ctx)
	if err != nil || string(m.Value) != "queued before the backup" {
		t.Fatalf("restored queue: Next = %q, %v", m.Value, err)
	}

	// A second, empty store restored from the same bytes is identical too.
	fresh := c.Open(t)
	if err := fresh.Restore(ctx, bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatalf("Restore into empty store: %v", err)
	}
	if got := scanAll(t, c, fresh, ""); !slices.Equal(got, want) {
		t.Fatalf("restored empty store holds %q, want %q", got, want)
	}

	// Writes after a Restore win over the restored values, in a store
	// whose own history was shorter than the snapshot's, and conditional
	// writes work on the restored versions.
	v := wantValue(t, fresh, "p/1", "one")
	mustWrite(t, fresh, storage.Op{Key: []byte("p/1"), Value: []byte("after restore"), IfVersion: v})
	mustWrite(t, fresh, del("p/2"))
	wantValue(t, fresh, "p/1", "after restore")
	wantMissing(t, fresh, "p/2")
	// The source keeps working after a Backup.
	mustSet(t, src, "p/1", "source after backup")
	wantValue(t, src, "p/1", "source after backup")
}

func testCancelled(t *testing.T, c Config) {
	s := c.Open(t)
	mustSet(t, s, "k", "v")
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Write(cctx, set("new", "v")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Write with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := s.Write(cctx, del("k")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Write(delete) with a cancelled context = %v, want context.Canceled", err)
	}
	wantMissing(t, s, "new")
	wantValue(t, s, "k", "v")
	if _, _, err := s.Get(cctx, []byte("k"), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a cancelled context = %v, want context.Canceled", err)
	}
	called := false
	err := s.Scan(cctx, nil, func(_, _ []byte, _ storage.Version) error { called = true; return nil })
	if !errors.Is(err, context.Canceled) || called {
		t.Errorf("Scan with a cancelled context = %v (callback called: %v), want context.Canceled", err, called)
	}
	if !c.NoBackup {
		if err := s.Backup(cctx, &bytes.Buffer{}); !errors.Is(err, context.Canceled) {
			t.Errorf("Backup with a cancelled context = %v, want context.Canceled", err)
		}
	}
}

func testCloseTwice(t *testing.T, c Config) {
	s := c.Open(t)
	mustSet(t, s, "k", "v")
	if err := s.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func testClosedErrors(t *testing.T, c Config) {
	s := c.Open(t)
	mustSet(t, s, "k", "v")
	q, err := s.Queue("closed")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, _, err := s.Get(ctx, []byte("k"), nil); return err }},
		{"Write", func() error { _, err := s.Write(ctx, set("k2", "v")); return err }},
		{"Scan", func() error { return s.Scan(ctx, nil, func(_, _ []byte, _ storage.Version) error { return nil }) }},
		{"Backup", func() error { return s.Backup(ctx, &bytes.Buffer{}) }},
		{"Restore", func() error { return s.Restore(ctx, bytes.NewReader(nil)) }},
		{"Enqueue", func() error { _, err := q.Enqueue(ctx, []byte("x"), 0); return err }},
		{"Next", func() error { _, err := q.Next(ctx); return err }},
		{"Len", func() error { _, err := q.Len(ctx); return err }},
	}
	for _, call := range calls {
		t.Run(call.name, func(t *testing.T) {
			if err := call.call(); !errors.Is(err, storage.ErrClosed) {
				t.Fatalf("%s after Close = %v, want ErrClosed", call.name, err)
			}
		})
	}
}

// testDurable closes and reopens the store: values and versions are kept,
// so a conditional write based on a read before the restart still works.
func testDurable(t *testing.T, c Config) {
	if c.Reopen == nil {
		t.Skip("the store does not outlive Close")
	}
	s := c.Open(t)
	mustSet(t, s, "a", "1", "b", "2")
	mustWrite(t, s, del("b"))
	v := wantValue(t, s, "a", "1")
	s = c.Reopen(t, s)
	if got := wantValue(t, s, "a", "1"); got != v {
		t.Fatalf("version of a changed across a restart: %d, was %d", got, v)
	}
	wantMissing(t, s, "b")
	mustWrite(t, s, storage.Op{Key: []byte("a"), Value: []byte("1+"), IfVersion: v})
}

// testLatest checks storage.Latest: it reads what is stored now, even when
// the reading instance holds an older copy in a cache (storage.Cached) and
// another instance wrote since.
func testLatest(t *testing.T, c Config) {
	stores := instances(t, c)
	w, r := stores[0], stores[len(stores)-1]
	mustSet(t, w, "latest", "1")
	for range 3 { // warm r's cache, if it has one
		if _, _, err := r.Get(ctx, []byte("latest"), nil); err != nil {
			t.Fatal(err)
		}
	}
	for i := 2; i < 50; i++ {
		want := strconv.Itoa(i)
		v := mustWrite(t, w, set("latest", want))
		got, gv, err := storage.Latest(ctx, r, []byte("latest"), nil)
		if err != nil || string(got) != want || gv != v {
			t.Fatalf("Latest after another instance's write %d = %q at %d, %v; want %q at %d", i, got, gv, err, want, v)
		}
	}
	mustWrite(t, w, del("latest"))
	if _, _, err := storage.Latest(ctx, r, []byte("latest"), nil); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Latest after another instance's delete: %v, want ErrNotFound", err)
	}
}
