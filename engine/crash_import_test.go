package engine_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tailorhq/tailor/engine"
)

// Crash safety of the import queue: a child process Imports batches (each
// with two profile groups, so a crash can fall between them) while the
// queue worker applies them, and is killed with SIGKILL at random moments.
// After each kill the parent reopens the directory, lets the worker drain
// what was queued and checks every batch was applied exactly once if it
// was acknowledged, and at most once (both groups or neither) if not.

const crashImportStartEnv = "TAILOR_CRASH_IMPORT_START"

func importProfile(k int, group string) string { return fmt.Sprintf("imp-%d-%s", k, group) }

func TestCrashImportChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	start, err := strconv.Atoi(os.Getenv(crashImportStartEnv))
	if dir == "" || err != nil {
		t.Skip("child process of TestCrashImport")
	}
	acks := os.NewFile(3, "acks")
	// A short queue bounds the backlog the parent drains after each kill.
	e, err := engine.Open(dir, &engine.Options{SyncWrites: os.Getenv(crashSyncEnv) == "1", ImportQueueSize: 32})
	if err != nil {
		fmt.Fprintf(acks, "ERR open: %v\n", err)
		os.Exit(2)
	}
	ctx := context.Background()
	var mu sync.Mutex
	ack := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(acks, format+"\n", args...)
	}
	var next sync.Mutex
	k := start
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				next.Lock()
				n := k
				k++
				next.Unlock()
				ack("TRY %d", n)
				ev := func(g string) engine.Event {
					return engine.Event{Type: engine.EventTrack, Event: "tick", AnonymousID: importProfile(n, g)}
				}
				err := e.Import(ctx, engine.Request{Events: []engine.Event{ev("a"), ev("b")}})
				if errors.Is(err, engine.ErrQueueFull) {
					time.Sleep(time.Millisecond)
					continue // not queued; the parent counts it as tried only
				}
				if err != nil {
					ack("ERR import: %v", err)
					os.Exit(2)
				}
				ack("ACK %d", n)
			}
		}()
	}
	ack("READY")
	wg.Wait()
}

func runImportCrashes(t *testing.T, syncWrites bool, kills int) {
	dir := t.TempDir()
	acked := map[int]bool{}
	tried := 0 // batches 0..tried-1 were attempted
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	// check verifies batches [from, tried) after a kill; the last round
	// checks them all, so a batch applied again later is caught too.
	check := func(kill int, e *engine.Engine, from int) {
		ctx := context.Background()
		for k := from; k < tried; k++ {
			a, err := e.EventCount(ctx, importProfile(k, "a"), "tick")
			if err != nil {
				t.Fatal(err)
			}
			b, err := e.EventCount(ctx, importProfile(k, "b"), "tick")
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case acked[k] && (a != 1 || b != 1):
				t.Fatalf("kill %d: acknowledged batch %d applied %d and %d times, want exactly once", kill, k, a, b)
			case a != b || a > 1:
				t.Fatalf("kill %d: batch %d applied %d and %d times, want both once or neither", kill, k, a, b)
			}
		}
	}
	for kill := range kills {
		from := tried
		importChild(t, dir, syncWrites, tried, time.Duration(10+rng.IntN(150))*time.Millisecond, acked, &tried)

		e, err := engine.Open(dir, &engine.Options{SyncWrites: syncWrites})
		if err != nil {
			t.Fatalf("kill %d: reopen: %v", kill, err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for e.ImportQueueLen() > 0 {
			if time.Now().After(deadline) {
				e.Close()
				t.Fatalf("kill %d: %d batches still queued after 30s", kill, e.ImportQueueLen())
			}
			time.Sleep(5 * time.Millisecond)
		}
		if kill == kills-1 {
			from = 0
		}
		check(kill, e, from)
		if err := e.Close(); err != nil {
			t.Fatalf("kill %d: close: %v", kill, err)
		}
	}
	if len(acked) < kills {
		t.Fatalf("only %d batches acknowledged over %d kills", len(acked), kills)
	}
	t.Logf("%d SIGKILLs survived, %d acknowledged Import batches each applied exactly once (%d attempted)", kills, len(acked), tried)
}

// importChild runs the import child from batch start until it is killed d
// after READY, recording acknowledged batches and the attempted range.
func importChild(t *testing.T, dir string, syncWrites bool, start int, d time.Duration, acked map[int]bool, tried *int) {
	t.Helper()
	env := []string{crashDirEnv + "=" + dir, crashSyncEnv + "=" + syncEnv(syncWrites), crashImportStartEnv + "=" + strconv.Itoa(start)}
	killChild(t, "TestCrashImportChild", env, d, func(f []string) bool {
		if len(f) != 2 {
			return false
		}
		n, err := strconv.Atoi(f[1])
		switch {
		case err != nil:
			return false
		case f[0] == "TRY":
			*tried = max(*tried, n+1)
		case f[0] == "ACK":
			acked[n] = true
		default:
			return false
		}
		return true
	})
}
