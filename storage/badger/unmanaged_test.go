package badger

import (
	"context"
	"fmt"
	"testing"

	bdb "github.com/dgraph-io/badger/v4"

	"github.com/tailorhq/tailor/storage"
)

// TestOpensUnmanagedDirectory opens a directory written by Badger's own
// clock (as tailor wrote before the store chose its timestamps): values
// read back with their versions, and new writes get later versions and
// win, also after compaction.
func TestOpensUnmanagedDirectory(t *testing.T) {
	dir := t.TempDir()
	db, err := bdb.Open(bdb.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if err := db.Update(func(txn *bdb.Txn) error {
			return txn.Set(fmt.Appendf(nil, "k/%02d", i%10), fmt.Appendf(nil, "old %d", i))
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	for i := range 10 {
		key := fmt.Appendf(nil, "k/%02d", i)
		got, v, err := s.Get(ctx, key, nil)
		if want := fmt.Sprintf("old %d", 40+i); err != nil || string(got) != want {
			t.Fatalf("%s = %q, %v; want %q", key, got, err, want)
		}
		nv, err := s.Write(ctx, storage.Op{Key: key, Value: []byte("new"), IfVersion: v})
		if err != nil || nv <= v {
			t.Fatalf("write of %s on version %d: version %d, %v", key, v, nv, err)
		}
	}
	if err := s.db.Flatten(2); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if got, _, err := s.Get(ctx, fmt.Appendf(nil, "k/%02d", i), nil); err != nil || string(got) != "new" {
			t.Fatalf("after compaction k/%02d = %q, %v", i, got, err)
		}
	}
}
