package engine_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tailorhq/tailor/engine"
)

// Crash safety. TestCrash runs a child process (this test binary, re-run
// as TestCrashChild) that calls Identify on an on-disk engine from several
// goroutines and reports every call after it returned, kills it with
// SIGKILL at a random moment, reopens the directory and checks that every
// acknowledged call is stored. With SyncWrites the writes are fsynced;
// without, a process crash still keeps what the OS holds in its page
// cache, so both must keep everything they acknowledged.

const (
	crashDirEnv   = "TAILOR_CRASH_DIR"
	crashSyncEnv  = "TAILOR_CRASH_SYNC"
	crashWorkers  = 4 // goroutines in the child
	crashProfiles = 3 // profiles per goroutine, written in turn
)

// crashProfile names profile j of worker g.
func crashProfile(g, j int) string { return fmt.Sprintf("crash-w%d-p%d", g, j) }

// TestCrashChild is the child side of TestCrash; it does nothing unless
// started by TestCrash. Each worker owns its profiles, so at most one call
// per profile is in flight: after a kill the stored seq lies between the
// last acknowledged and the last attempted one (announced by TRY before
// the call).
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("child process of TestCrash")
	}
	acks := os.NewFile(3, "acks")
	e, err := engine.Open(dir, &engine.Options{SyncWrites: os.Getenv(crashSyncEnv) == "1"})
	if err != nil {
		fmt.Fprintf(acks, "ERR open: %v\n", err)
		os.Exit(2)
	}
	ctx := context.Background()
	var mu sync.Mutex // one ack line per write
	ack := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(acks, format+"\n", args...)
	}
	var wg sync.WaitGroup
	for g := range crashWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seq := make([]int, crashProfiles)
			for j := range seq {
				r, err := e.Get(ctx, crashProfile(g, j))
				switch {
				case errors.Is(err, engine.ErrNotFound):
				case err != nil:
					ack("ERR get: %v", err)
					os.Exit(2)
				default:
					seq[j] = int(r.Profile.Traits["seq"].(float64))
				}
			}
			for i := 0; ; i++ {
				j := i % crashProfiles
				id := crashProfile(g, j)
				seq[j]++
				ack("TRY %s %d", id, seq[j])
				_, err := e.Identify(ctx, id, engine.Request{Events: []engine.Event{
					identifyEv("", map[string]any{"seq": seq[j]}), track("tick"),
				}})
				if err != nil {
					ack("ERR identify: %v", err)
					os.Exit(2)
				}
				ack("ACK %s %d", id, seq[j])
			}
		}()
	}
	ack("READY")
	wg.Wait() // never returns: the parent kills the process
}

func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test re-runs the test binary; skipped with -short")
	}
	// 20 kills per run; under -race (children several times slower, and
	// data races are the other tests' job) 8, to keep the package fast.
	kills := 20
	if raceEnabled {
		kills = 8
	}
	for _, c := range []struct {
		name string
		run  func(t *testing.T, syncWrites bool, kills int)
	}{
		{"Identify", runCrashes},
		{"Import", runImportCrashes},
	} {
		for _, sync := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/SyncWrites=%v", c.name, sync), func(t *testing.T) {
				t.Parallel()
				c.run(t, sync, kills)
			})
		}
	}
}

func runCrashes(t *testing.T, syncWrites bool, kills int) {
	dir := t.TempDir()
	acked := map[string]int{} // profile → highest acknowledged seq
	tried := map[string]int{} // profile → highest seq attempted
	total := 0
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	for k := range kills {
		n := crashChild(t, dir, syncWrites, time.Duration(10+rng.IntN(200))*time.Millisecond, acked, tried)
		total += n

		// The store opens cleanly and holds every acknowledged call.
		e, err := engine.Open(dir, &engine.Options{SyncWrites: syncWrites})
		if err != nil {
			t.Fatalf("kill %d: reopen: %v", k, err)
		}
		ctx := context.Background()
		for id, want := range acked {
			r, err := e.Get(ctx, id)
			if err != nil {
				e.Close()
				t.Fatalf("kill %d: profile %s (acknowledged seq %d): %v", k, id, want, err)
			}
			got := int(r.Profile.Traits["seq"].(float64))
			if got < want || got > tried[id] {
				e.Close()
				t.Fatalf("kill %d: profile %s has seq %d, acknowledged %d, attempted %d", k, id, got, want, tried[id])
			}
		}
		if err := e.Export(ctx, io.Discard); err != nil {
			t.Errorf("kill %d: export after reopen: %v", k, err)
		}
		if err := e.Close(); err != nil {
			t.Fatalf("kill %d: close: %v", k, err)
		}
	}
	if total < kills {
		t.Fatalf("only %d calls acknowledged over %d kills: the child barely ran", total, kills)
	}
	t.Logf("%d SIGKILLs survived, %d acknowledged Identify calls all found after reopen", kills, total)
}

// crashChild starts the child on dir, lets it run for d after it is ready,
// kills it with SIGKILL and records its lines in acked and tried. It
// returns the number of calls acknowledged.
func crashChild(t *testing.T, dir string, syncWrites bool, d time.Duration, acked, tried map[string]int) int {
	t.Helper()
	n := 0
	killChild(t, "TestCrashChild", []string{crashDirEnv + "=" + dir, crashSyncEnv + "=" + syncEnv(syncWrites)}, d,
		func(f []string) bool {
			if len(f) != 3 {
				return false
			}
			seq, err := strconv.Atoi(f[2])
			switch {
			case err != nil:
				return false
			case f[0] == "TRY":
				tried[f[1]] = seq
			case f[0] == "ACK":
				if seq != tried[f[1]] {
					t.Fatalf("ack %v does not follow its TRY (%d)", f, tried[f[1]])
				}
				acked[f[1]] = seq
				n++
			default:
				return false
			}
			return true
		})
	return n
}

func syncEnv(on bool) string {
	if on {
		return "1"
	}
	return "0"
}

// killChild re-runs this test binary as the child test named test with
// env added, reads its lines from file descriptor 3, sends SIGKILL d
// after the child writes READY, and waits for it. line handles every
// other complete line (a line cut by the kill never arrives whole) and
// reports whether it understood it; an unknown line (such as an ERR line)
// fails the test with the child's stderr.
func killChild(t *testing.T, test string, env []string, d time.Duration, line func(fields []string) bool) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	cmd.ExtraFiles = []*os.File{w}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		w.Close()
		t.Fatal(err)
	}
	w.Close()
	killed := make(chan struct{})
	lines := bufio.NewScanner(r)
	ready := false
	for lines.Scan() {
		f := strings.Fields(lines.Text())
		switch {
		case len(f) == 1 && f[0] == "READY" && !ready:
			ready = true
			time.AfterFunc(d, func() {
				cmd.Process.Signal(syscall.SIGKILL)
				close(killed)
			})
		case line(f):
		default:
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child: %q\nstderr: %s", lines.Text(), stderr.String())
		}
	}
	err = cmd.Wait()
	if !ready {
		t.Fatalf("child exited before READY: %v\nstderr: %s", err, stderr.String())
	}
	<-killed
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child was not killed by SIGKILL: %v\nstderr: %s", err, stderr.String())
	}
}
