package badger_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/tailorhq/tailor/storage"
	"github.com/tailorhq/tailor/storage/badger"
)

// TestOpenAfterCrashEmptyFiles recreates what a crash between creating a
// memtable's (or a value-log file's) file and sizing it leaves behind: a
// zero-length .mem or .vlog file with the next file id. Badger 4.9.6
// refuses to open such a directory ("while opening memtables err: while
// opening fid: N err: Create a new file", Badger issue 2207); the store
// must open it the first time, with every value written before intact.
func TestOpenAfterCrashEmptyFiles(t *testing.T) {
	// Badger names memtables %05d.mem and value-log files %06d.vlog.
	for _, name := range []string{"%05d.mem", "%06d.vlog"} {
		ext := filepath.Ext(name)
		t.Run(ext, func(t *testing.T) {
			dir := t.TempDir()
			ctx := context.Background()
			s, err := badger.Open(badger.Options{Dir: dir, GCInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 100 {
				if _, err := s.Write(ctx, storage.Op{Key: fmt.Appendf(nil, "k/%03d", i), Value: fmt.Appendf(nil, "%0300d", i)}); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			// The file id after every existing one, as Badger would
			// create next.
			next := 0
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				var fid int
				if filepath.Ext(e.Name()) != ext {
					continue
				}
				if _, err := fmt.Sscanf(e.Name(), "%d.", &fid); err == nil && fid >= next {
					next = fid + 1
				}
			}
			empty := filepath.Join(dir, fmt.Sprintf(name, next))
			if err := os.WriteFile(empty, nil, 0o644); err != nil {
				t.Fatal(err)
			}

			s, err = badger.Open(badger.Options{Dir: dir, GCInterval: -1})
			if err != nil {
				t.Fatalf("first open after a crash left %s empty: %v", filepath.Base(empty), err)
			}
			defer s.Close()
			for i := range 100 {
				got, _, err := s.Get(ctx, fmt.Appendf(nil, "k/%03d", i), nil)
				if want := fmt.Sprintf("%0300d", i); err != nil || string(got) != want {
					t.Fatalf("key %d after reopen = %.10q…, %v; want %.10q…", i, got, err, want)
				}
			}
			if _, err := s.Write(ctx, storage.Op{Key: []byte("k/after"), Value: []byte("x")}); err != nil {
				t.Fatalf("write after reopen: %v", err)
			}
		})
	}
}
