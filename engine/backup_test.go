package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailorhq/tailor/engine"
)

// openDisk opens an on-disk engine in a fresh directory with clock c.
func openDisk(t *testing.T, c *clock) *engine.Engine {
	t.Helper()
	e, err := engine.Open(t.TempDir(), &engine.Options{Now: c.Now, Rules: mustRules(t, planRules)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// TestBackupWhileServing takes a backup while writers update profiles and
// merge visitors into users, restores it into a new directory and checks
// the snapshot is consistent: every profile is at least as new as what was
// acknowledged before the backup began and no newer than what was
// attempted before it ended, and every merged-away id resolves. After the
// writers stop, a second backup restored elsewhere exports byte for byte
// the same profiles as the original.
func TestBackupWhileServing(t *testing.T) {
	const workers, profiles = 4, 8
	c := newClock()
	src := openDisk(t, c)
	ctx := context.Background()

	var acked, tried [workers][profiles]atomic.Int64
	var merged sync.Map // anonymous id → user id, after its merge was acknowledged
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				j := i % profiles
				if i%5 == 4 { // now and then a visitor logs in
					anon := fmt.Sprintf("anon-%d-%d", g, i)
					user := fmt.Sprintf("user-%d", i%3)
					if _, err := src.Identify(ctx, anon, engine.Request{Events: []engine.Event{page("/"), identifyEv(user, nil)}}); err != nil {
						errs <- err
						return
					}
					merged.Store(anon, user)
					continue
				}
				seq := tried[g][j].Add(1)
				_, err := src.Identify(ctx, fmt.Sprintf("w%d-p%d", g, j), engine.Request{Events: []engine.Event{
					identifyEv("", map[string]any{"seq": float64(seq)})}})
				if err != nil {
					errs <- err
					return
				}
				acked[g][j].Store(seq)
			}
		}()
	}
	// Let the writers run, then back up while they continue.
	for tried[0][0].Load() < 20 {
		time.Sleep(time.Millisecond)
	}
	var before [workers][profiles]int64
	for g := range workers {
		for j := range profiles {
			before[g][j] = acked[g][j].Load()
		}
	}
	var live bytes.Buffer
	if err := src.Backup(ctx, &live); err != nil {
		t.Fatalf("backup while serving: %v", err)
	}
	var after [workers][profiles]int64
	for g := range workers {
		for j := range profiles {
			after[g][j] = tried[g][j].Load()
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	restored := openDisk(t, c)
	if err := restored.Restore(ctx, &live); err != nil {
		t.Fatalf("restore: %v", err)
	}
	for g := range workers {
		for j := range profiles {
			id := fmt.Sprintf("w%d-p%d", g, j)
			r, err := restored.Get(ctx, id)
			if errors.Is(err, engine.ErrNotFound) && before[g][j] == 0 {
				continue
			}
			if err != nil {
				t.Fatalf("restored %s: %v", id, err)
			}
			seq := int64(r.Profile.Traits["seq"].(float64))
			if seq < before[g][j] || seq > after[g][j] {
				t.Errorf("restored %s has seq %d, outside [%d, %d]", id, seq, before[g][j], after[g][j])
			}
		}
	}
	// Every visitor id in the snapshot resolves to a profile of its user.
	n := 0
	merged.Range(func(k, v any) bool {
		r, err := restored.Get(ctx, k.(string))
		if errors.Is(err, engine.ErrNotFound) {
			return true // merged after the snapshot
		}
		n++
		if err != nil {
			t.Errorf("restored visitor %s: %v", k, err)
			return false
		}
		if want, err := restored.Get(ctx, r.Profile.ID); err != nil || want.Profile.ID != r.Profile.ID {
			t.Errorf("visitor %s resolves to %s, which does not load: %v", k, r.Profile.ID, err)
		}
		return true
	})
	t.Logf("snapshot taken under load held %d merged visitors", n)

	// At rest, backup and restore reproduce the profiles exactly.
	var quiet bytes.Buffer
	if err := src.Backup(ctx, &quiet); err != nil {
		t.Fatal(err)
	}
	copyEng := openDisk(t, c)
	if err := copyEng.Restore(ctx, &quiet); err != nil {
		t.Fatal(err)
	}
	var want, got bytes.Buffer
	if err := src.Export(ctx, &want); err != nil {
		t.Fatal(err)
	}
	if err := copyEng.Export(ctx, &got); err != nil {
		t.Fatal(err)
	}
	if want.Len() == 0 || !bytes.Equal(want.Bytes(), got.Bytes()) {
		t.Errorf("restored export differs from the original (%d vs %d bytes)", got.Len(), want.Len())
	}
}
