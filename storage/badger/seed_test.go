package badger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/tailorhq/tailor/storage"
)

// seededStore writes keys k0..k(n-1) (k1 overwritten, k2 deleted, k3 with
// a TTL) to a store in dir, closes it and reopens it with opts, waiting
// for the seeding to end. It returns the reopened store and the version
// of each live key.
func seededStore(t *testing.T, n int, opts Options) (*Store, map[string]storage.Version) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	versions := map[string]storage.Version{}
	for i := range n {
		key := fmt.Sprint("k", i)
		op := storage.Op{Key: []byte(key), Value: []byte("v0")}
		if i == 3 {
			op.TTL = time.Hour
		}
		if versions[key], err = s.Write(ctx, op); err != nil {
			t.Fatal(err)
		}
	}
	if versions["k1"], err = s.Write(ctx, storage.Op{Key: []byte("k1"), Value: []byte("v1"), IfVersion: versions["k1"]}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(ctx, storage.Op{Key: []byte("k2"), Delete: true}); err != nil {
		t.Fatal(err)
	}
	delete(versions, "k2")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	opts.Dir, opts.GCInterval = dir, -1
	if s, err = Open(opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	<-s.seeding.done
	if !s.filter.complete.Load() {
		t.Fatal("seeding ended and the filter is not complete")
	}
	return s, versions
}

// TestVersionFilterSeeded checks that a reopened store's filter knows the
// versions written before it closed: conditions on them skip the lookup,
// except for a key written with a TTL, and reads at the filter's
// timestamps see every key's latest version, the deleted one's deletion
// included.
func TestVersionFilterSeeded(t *testing.T) {
	s, versions := seededStore(t, 50, Options{})
	for key, v := range versions {
		if got, want := s.filter.holds([]byte(key), uint64(v)), key != "k3"; got != want {
			t.Errorf("after reopening, holds(%s, %d) = %v, want %v", key, v, got, want)
		}
		if ts := s.filter.readTs([]byte(key)); ts < uint64(v) {
			t.Errorf("after reopening, %s (version %d) reads at %d", key, v, ts)
		}
	}
	checkSeededContents(t, s, versions)
}

// TestVersionFilterSeededCollisions reopens on a two-slot filter, where
// every slot holds many keys, and checks that reads and conditions are
// still right: a slot's timestamp bounds all its keys' versions, the
// deleted key's included.
func TestVersionFilterSeededCollisions(t *testing.T) {
	s, versions := seededStore(t, 30, Options{VersionFilterSize: 16})
	checkSeededContents(t, s, versions)
}

// checkSeededContents checks every key's value through Get, and that a
// write on each key's version succeeds and one on another version
// conflicts.
func checkSeededContents(t *testing.T, s *Store, versions map[string]storage.Version) {
	t.Helper()
	ctx := context.Background()
	if b, _, err := s.Get(ctx, []byte("k2"), nil); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Get(k2) after reopening = %q, %v; want ErrNotFound (it was deleted)", b, err)
	}
	for key, v := range versions {
		want := "v0"
		if key == "k1" {
			want = "v1"
		}
		b, got, err := s.Get(ctx, []byte(key), nil)
		if err != nil || string(b) != want || got != v {
			t.Fatalf("Get(%s) after reopening = %q at %d, %v; want %q at %d", key, b, got, err, want, v)
		}
		// v+1 is the version of another key, or of none.
		if _, err := s.Write(ctx, storage.Op{Key: []byte(key), Value: []byte("x"), IfVersion: v + 1}); !errors.Is(err, storage.ErrConflict) {
			t.Fatalf("write of %s on version %d, not its %d: %v, want ErrConflict", key, v+1, v, err)
		}
		if _, err := s.Write(ctx, storage.Op{Key: []byte(key), Value: []byte("x"), IfVersion: v}); err != nil {
			t.Fatalf("write of %s on its version %d: %v", key, v, err)
		}
	}
}

// TestVersionFilterSeedLoses checks that a seed never replaces a later
// timestamp, so that a write made while the seeder ran wins over the
// snapshot's version, and that reads use no slot until the filter is
// complete.
func TestVersionFilterSeedLoses(t *testing.T) {
	f := newVersionFilter(16)
	f.complete.Store(false)
	key := []byte("k")
	f.wrote(key, 10, false)
	if ts := f.readTs(key); ts != 0 {
		t.Fatalf("readTs during seeding = %d, want 0", ts)
	}
	f.seed([]seedEntry{{hash: xxhash.Sum64(key), ts: 7}})
	if !f.holds(key, 10) || f.holds(key, 7) {
		t.Fatal("a seed older than the slot's write replaced it")
	}
	f.complete.Store(true)
	if ts := f.readTs(key); ts != 10 {
		t.Fatalf("readTs after seeding = %d, want 10", ts)
	}
	f.seed([]seedEntry{{hash: xxhash.Sum64(key), ts: 12 | filterTTL}})
	if f.holds(key, 12) || f.readTs(key) != 12 {
		t.Fatal("a later seed of a key with a TTL: want no proof, and reads at its version")
	}
}

// TestRestoreStopsSeeding checks that Restore right after Open, while the
// seeder may still run, leaves the snapshot's contents and a filter that
// reads them right.
func TestRestoreStopsSeeding(t *testing.T) {
	ctx := context.Background()
	src, versions := seededStore(t, 20, Options{})
	var backup bytes.Buffer
	if err := src.Backup(ctx, &backup); err != nil {
		t.Fatal(err)
	}
	dst, _ := seededStore(t, 200, Options{})
	dst.seeding = seeding{stop: make(chan struct{}), done: make(chan struct{})}
	dst.filter.complete.Store(false)
	go func() { <-dst.seeding.stop; close(dst.seeding.done) }() // a seeder that runs until stopped
	if err := dst.Restore(ctx, &backup); err != nil {
		t.Fatal(err)
	}
	if !dst.filter.complete.Load() {
		t.Fatal("after Restore the filter waits for a seeding that was stopped")
	}
	checkSeededContents(t, dst, versions)
}
