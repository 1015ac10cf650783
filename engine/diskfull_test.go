package engine_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tailorhq/tailor/engine"
	"github.com/tailorhq/tailor/storage"
)

// mountTmpfs mounts a tmpfs of the given size on a fresh directory and
// unmounts it at cleanup (registered first, so it runs after the cleanups
// of engines opened on it). It skips the test where mounting is not
// permitted (not root, no CAP_SYS_ADMIN).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount a tmpfs (%v): needs root", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

func bigTraits(i int) map[string]any {
	return map[string]any{"i": float64(i), "blob": strings.Repeat("x", 16<<10)}
}

// TestDiskFull fills a real (tmpfs) filesystem through Identify. Without
// the guard Badger dies with SIGBUS writing to its memory-mapped value
// log; with it, Identify returns ErrDiskFull, nothing of the refused call
// is stored, reads keep working, writes resume once space is added, and
// the store closes and reopens with everything acknowledged.
func TestDiskFull(t *testing.T) {
	dir := mountTmpfs(t, "40m")
	ctx := context.Background()
	o := &engine.Options{SyncWrites: true, MinFreeBytes: 16 << 20}
	e, err := engine.Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })

	acked := 0
	var full error
	for i := range 5000 {
		_, err := e.Identify(ctx, fmt.Sprintf("p%d", i), engine.Request{Events: []engine.Event{identifyEv("", bigTraits(i))}})
		if err != nil {
			full = err
			break
		}
		acked++
	}
	if !errors.Is(full, engine.ErrDiskFull) {
		t.Fatalf("after %d calls: %v, want ErrDiskFull", acked, full)
	}
	t.Logf("disk full after %d acknowledged calls: %v", acked, full)

	// The refused profile does not exist; an existing one can be read and
	// a refused update leaves it as it was.
	if _, err := e.Get(ctx, fmt.Sprintf("p%d", acked)); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("Get(refused profile): %v, want ErrNotFound", err)
	}
	before, err := e.Get(ctx, "p0")
	if err != nil {
		t.Fatalf("Get while full: %v", err)
	}
	if _, err := e.Identify(ctx, "p0", engine.Request{Events: []engine.Event{identifyEv("", map[string]any{"late": true})}}); !errors.Is(err, engine.ErrDiskFull) {
		t.Errorf("update while full: %v, want ErrDiskFull", err)
	}
	after, err := e.Get(ctx, "p0")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := after.Profile.Traits["late"]; ok || after.Profile.Session.Count != before.Profile.Session.Count {
		t.Errorf("a refused update changed the profile: %v", after.Profile.Traits["late"])
	}

	// More room: writes resume by themselves.
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT, "size=80m"); err != nil {
		t.Fatalf("grow tmpfs: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := e.Identify(ctx, "after-grow", engine.Request{Events: []engine.Event{page("/")}})
		if err == nil {
			break
		}
		if !errors.Is(err, engine.ErrDiskFull) || time.Now().After(deadline) {
			t.Fatalf("Identify after growing the disk: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	e, err = engine.Open(dir, o)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	for _, i := range []int{0, acked / 2, acked - 1} {
		r, err := e.Get(ctx, fmt.Sprintf("p%d", i))
		if err != nil || r.Profile.Traits["i"] != float64(i) {
			t.Errorf("acknowledged profile p%d after reopen: %v", i, err)
		}
	}
}

// TestStoreWriteFailure injects the errors a failing disk gives (ENOSPC,
// EROFS, EIO) into every write: Identify fails with the cause wrapped,
// nothing is written (a failed merge included), reads keep working, and
// the engine recovers when the fault clears.
func TestStoreWriteFailure(t *testing.T) {
	for _, cause := range []error{syscall.ENOSPC, syscall.EROFS, syscall.EIO} {
		t.Run(cause.Error(), func(t *testing.T) {
			e, fs := openFaulty(t, nil)
			e.SetRules(mustRules(t, planRules))
			ctx := context.Background()
			known := e.identify(t, "", identifyEv("user-1", map[string]any{"plan": "pro"}))
			anon := e.identify(t, "", page("/"), track("purchase"))
			before := e.dump(t)

			fs.setBeforeWrite(func(storage.Op) error { return fmt.Errorf("storage: commit: %w", cause) })
			calls := []struct {
				name string
				id   string
				evs  []engine.Event
			}{
				{"new profile", "", []engine.Event{page("/")}},
				{"update", known.Profile.ID, []engine.Event{track("purchase"), identifyEv("", map[string]any{"failed": true})}},
				{"merge", anon.Profile.ID, []engine.Event{identifyEv("user-1", nil)}},
			}
			for _, c := range calls {
				if _, err := e.Identify(ctx, c.id, engine.Request{Events: c.evs}); !errors.Is(err, cause) {
					t.Errorf("%s: %v, want %v", c.name, err, cause)
				}
			}
			if err := e.Delete(ctx, anon.Profile.ID); !errors.Is(err, cause) {
				t.Errorf("Delete: %v, want %v", err, cause)
			}
			if after := e.dump(t); after != before {
				t.Errorf("failed writes changed the store:\n%s\nwas\n%s", after, before)
			}
			fs.setBeforeWrite(nil)
			// Reads (through the engine's profile cache too) see the
			// profiles as they were: no failed write leaked into them.
			for _, id := range []string{known.Profile.ID, anon.Profile.ID} {
				r, err := e.Get(ctx, id)
				if err != nil {
					t.Fatalf("Get(%s) while writes fail: %v", id, err)
				}
				if r.Profile.ID != id || r.Profile.Traits["failed"] != nil {
					t.Errorf("Get(%s) after failed writes: id %s, traits %v", id, r.Profile.ID, r.Profile.Traits)
				}
			}
			if r := e.identify(t, known.Profile.ID, page("/")); r.Profile.Traits["failed"] != nil {
				t.Errorf("a failed update reached the next write: %v", r.Profile.Traits)
			}

			r := e.identify(t, anon.Profile.ID, identifyEv("user-1", nil))
			if r.Profile.ID != known.Profile.ID {
				t.Errorf("merge after recovery went to %q", r.Profile.ID)
			}
		})
	}
}

// TestOpenReadOnlyDirectory opens an existing store through a read-only
// bind mount: Open must fail with an error naming the directory, not
// panic or hang, and leave the store intact for a writable open.
func TestOpenReadOnlyDirectory(t *testing.T) {
	dir := t.TempDir()
	e, err := engine.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id := (&env{Engine: e}).identify(t, "", page("/")).Profile.ID
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	ro := t.TempDir()
	if err := syscall.Mount(dir, ro, "", syscall.MS_BIND, ""); err != nil {
		t.Skipf("cannot bind-mount (%v): needs root", err)
	}
	t.Cleanup(func() { syscall.Unmount(ro, 0) })
	if err := syscall.Mount("", ro, "", syscall.MS_REMOUNT|syscall.MS_BIND|syscall.MS_RDONLY, ""); err != nil {
		t.Skipf("cannot remount read-only: %v", err)
	}
	if f, err := os.Create(ro + "/probe"); err == nil {
		f.Close()
		t.Skip("the read-only mount accepts writes")
	}
	e, err = engine.Open(ro, nil)
	if err == nil {
		e.Close()
		t.Fatal("Open on a read-only directory succeeded")
	}
	if !strings.Contains(err.Error(), ro) {
		t.Errorf("error %q does not name the directory", err)
	}

	e, err = engine.Open(dir, nil)
	if err != nil {
		t.Fatalf("writable reopen: %v", err)
	}
	defer e.Close()
	if _, err := e.Get(ctx, id); err != nil {
		t.Errorf("profile after the read-only attempt: %v", err)
	}
}
