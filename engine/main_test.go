package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/tailorhq/tailor/engine"
	"github.com/tailorhq/tailor/storage/redis/redistest"
)

// TestMain fails the package if any goroutine outlives its test run: every
// engine a test opens is closed by its cleanup, and Close must stop the
// store's committer, value-log GC and everything Badger started (and,
// for the Redis tests, the store's client, but for the one rueidis
// goroutine redistest.IgnoreLeaks describes).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, redistest.IgnoreLeaks...)
}

// TestCloseStopsGoroutines checks Close itself, not just the end of the
// run: once Close returns, no goroutine started by Open or by the calls
// is left, for the on-disk and the in-memory store.
func TestCloseStopsGoroutines(t *testing.T) {
	for _, inMemory := range []bool{false, true} {
		t.Run(fmt.Sprintf("InMemory=%v", inMemory), func(t *testing.T) {
			keep := goleak.IgnoreCurrent()
			dir := ""
			if !inMemory {
				dir = t.TempDir()
			}
			e, err := engine.Open(dir, &engine.Options{InMemory: inMemory, SyncWrites: true, MaxWaiting: 4, ProfileRate: 1000})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					e.Identify(ctx, fmt.Sprintf("p%d", i%3), engine.Request{Events: []engine.Event{page("/")}})
				}()
			}
			wg.Wait()
			var buf bytes.Buffer
			if err := e.Backup(ctx, &buf); err != nil {
				t.Fatal(err)
			}
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			goleak.VerifyNone(t, append([]goleak.Option{keep}, redistest.IgnoreLeaks...)...)
		})
	}
}
