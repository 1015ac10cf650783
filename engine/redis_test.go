package engine

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/storage"
	"github.com/tailorhq/tailor/storage/redis"
	"github.com/tailorhq/tailor/storage/redis/redistest"
)

// The engine on a real Redis Cluster (3 primaries, 3 replicas, started by
// package redistest) from several processes: the identity protocol under
// crashes, lost updates, merges and the import queue, each process its
// own engine with its own locks and cache, meeting only in the store.

// redisSpec is the crashStore spec of a Redis store: the cluster's
// addresses and a key prefix of the test's own.
func redisSpec(t *testing.T, srv *redistest.Servers) string {
	return "redis:" + strings.Join(srv.Addrs, ",") + "|" + redistest.KeyPrefix(t)
}

// openRedisSpec opens the store of "redis:addr,addr|prefix[|claimAfter]".
func openRedisSpec(arg string) (storage.Store, error) {
	parts := strings.Split(arg, "|")
	if len(parts) < 2 {
		return nil, fmt.Errorf("bad redis spec %q", arg)
	}
	o := redis.Options{Addrs: strings.Split(parts[0], ","), KeyPrefix: parts[1]}
	if len(parts) > 2 {
		d, err := time.ParseDuration(parts[2])
		if err != nil {
			return nil, err
		}
		o.ClaimAfter = d
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return redis.Open(ctx, o)
}

// TestCrashStepsRedis is TestCrashSteps on the cluster: a process killed
// after each write of a bind, a merge and a delete.
func TestCrashStepsRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	srv := redistest.SharedCluster(t)
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	for _, sc := range crashScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			runCrashScenario(t, exe, sc, func(t *testing.T) string { return redisSpec(t, srv) })
		})
	}
}

const (
	procSpecEnv = "TAILOR_PROC_STORE"
	procJobEnv  = "TAILOR_PROC_JOB"
)

// TestProcessChild is the child side of the multi-process tests; it does
// nothing unless started by one. It opens an engine on the store of
// procSpecEnv, prints "ready", waits for a line on standard input, runs
// the job of procJobEnv, prints "done" and waits to be killed or for
// standard input to close.
func TestProcessChild(t *testing.T) {
	spec := os.Getenv(procSpecEnv)
	if spec == "" {
		t.Skip("child process of the multi-process tests")
	}
	fail := func(err error) {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	st, err := crashStore(spec)
	if err != nil {
		fail(err)
	}
	e, err := Open("", &Options{Store: st, Rules: mustParse(procRules)})
	if err != nil {
		fail(err)
	}
	fmt.Println("ready")
	in := bufio.NewReader(os.Stdin)
	if _, err := in.ReadString('\n'); err != nil {
		fail(err)
	}
	if err := runProcJob(e, os.Getenv(procJobEnv)); err != nil {
		fail(err)
	}
	fmt.Println("done")
	io.Copy(io.Discard, in) // until the parent closes stdin
	if err := e.Close(); err != nil {
		fail(err)
	}
	os.Exit(0)
}

const procRules = `
audiences:
  - id: ticked
    when: eventCount("tick") >= 1
`

func mustParse(src string) *rules.Set {
	set, err := rules.Parse("proc.yaml", []byte(src))
	if err != nil {
		panic(err)
	}
	return set
}

// runProcJob runs one child's share of a test:
//
//	count:<workers>:<calls>       workers × calls ticks on profile "hot"
//	merge:<first>:<last>          visitors first..last identify as "the-user"
//	idle                          nothing: the engine's import worker runs
func runProcJob(e *Engine, job string) error {
	ctx := context.Background()
	f := strings.Split(job, ":")
	atoi := func(i int) int { n, _ := strconv.Atoi(f[i]); return n }
	switch f[0] {
	case "count":
		// As a client does with a 429, a call refused with ErrOverload
		// (the profile stayed contended over all its attempts) is sent
		// again after a pause; only acknowledged calls count.
		workers, calls := atoi(1), atoi(2)
		var wg sync.WaitGroup
		var overloads atomic.Int64
		errs := make(chan error, workers)
		for range workers {
			wg.Go(func() {
				for range calls {
					for {
						_, err := e.Identify(ctx, "hot", Request{Events: []Event{{Type: EventTrack, Event: "tick"}}})
						if errors.Is(err, ErrOverload) {
							overloads.Add(1)
							time.Sleep(time.Millisecond)
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
		fmt.Println("overloads", overloads.Load())
		return <-errs
	case "merge":
		var wg sync.WaitGroup
		errs := make(chan error, atoi(2)-atoi(1)+1)
		for v := atoi(1); v <= atoi(2); v++ {
			wg.Go(func() {
				_, err := e.Identify(ctx, fmt.Sprint("visitor-", v), Request{Events: []Event{{Type: EventIdentify,
					UserID: "the-user", Traits: map[string]any{fmt.Sprint("t", v): float64(v)}}}})
				if err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		return <-errs
	case "idle":
		return nil
	}
	return fmt.Errorf("unknown job %q", job)
}

// child is a running child process of the multi-process tests.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
}

// startChild starts a child on spec with job and waits until its engine
// is open.
func startChild(t *testing.T, spec, job string) *child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestProcessChild$")
	cmd.Env = append(os.Environ(), procSpecEnv+"="+spec, procJobEnv+"="+job)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
	t.Cleanup(func() {
		c.stdin.Close()
		c.cmd.Process.Kill()
		c.cmd.Wait()
	})
	c.expect(t, "ready")
	return c
}

// expect reads the child's output up to the line want.
func (c *child) expect(t *testing.T, want string) {
	t.Helper()
	for c.out.Scan() {
		line := c.out.Text()
		if line == want {
			return
		}
		if strings.HasPrefix(line, "overloads ") {
			t.Logf("child: %s", line)
		}
		if strings.HasPrefix(line, "ERR") {
			t.Fatalf("child: %s", line)
		}
	}
	t.Fatalf("child exited before %q: %v", want, c.out.Err())
}

// runChildren starts one child per job, lets them all go at once and
// waits until each is done.
func runChildren(t *testing.T, spec string, jobs ...string) {
	t.Helper()
	var cs []*child
	for _, job := range jobs {
		cs = append(cs, startChild(t, spec, job))
	}
	for _, c := range cs {
		fmt.Fprintln(c.stdin)
	}
	for _, c := range cs {
		c.expect(t, "done")
	}
}

func openSpec(t *testing.T, spec string) *Engine {
	t.Helper()
	st, err := crashStore(spec)
	if err != nil {
		t.Fatal(err)
	}
	e, err := Open("", &Options{Store: st, Rules: mustParse(procRules), SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// TestTwoProcessesNoLostUpdate: 8 goroutines × 500 Identify on one
// profile, split over two engine processes on the cluster, leave exactly
// 4000 ticks.
func TestTwoProcessesNoLostUpdate(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	spec := redisSpec(t, redistest.SharedCluster(t))
	runChildren(t, spec, "count:4:500", "count:4:500")
	e := openSpec(t, spec)
	rec, err := e.load(context.Background(), "hot")
	if err != nil {
		t.Fatal(err)
	}
	if n := rec.Events["tick"].Count; n != 4000 {
		t.Fatalf("%d ticks after 8 × 500 calls from two processes, want 4000", n)
	}
	checkConsistent(t, e)
}

// TestTwoProcessesMerge: 16 anonymous visitors, spread over two engine
// processes, identify as one user at once: one profile survives with
// every visitor's trait and ticks, and every visitor's id resolves to it.
func TestTwoProcessesMerge(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	spec := redisSpec(t, redistest.SharedCluster(t))
	e := openSpec(t, spec)
	ctx := context.Background()
	const visitors = 16
	for v := range visitors {
		if _, err := e.Identify(ctx, fmt.Sprint("visitor-", v), Request{Events: []Event{{Type: EventTrack, Event: "tick"}, {Type: EventTrack, Event: "tick"}}}); err != nil {
			t.Fatal(err)
		}
	}
	runChildren(t, spec, "merge:0:7", "merge:8:15")
	owner, _, err := e.getString(ctx, prefixUser+"the-user")
	if err != nil {
		t.Fatal(err)
	}
	for v := range visitors {
		r, err := e.find(ctx, fmt.Sprint("visitor-", v))
		if err != nil || r.ID != owner {
			t.Fatalf("visitor %d resolves to %v (%v), want the user's profile %s", v, r, err, owner)
		}
	}
	p, err := e.load(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	for v := range visitors {
		if p.Traits[fmt.Sprint("t", v)] != float64(v) {
			t.Errorf("survivor lacks visitor %d's trait", v)
		}
	}
	if n := p.Events["tick"].Count; n != 2*visitors {
		t.Fatalf("survivor has %d ticks, want %d (each visitor's 2, once)", n, 2*visitors)
	}
	checkConsistent(t, e)
	live := 0
	if err := e.Profiles(ctx, func(*Profile) error { live++; return nil }); err != nil {
		t.Fatal(err)
	}
	if live != 1 {
		t.Fatalf("%d live profiles, want the survivor alone", live)
	}
}

// TestTwoProcessesImport imports batches while two other engine processes
// run import workers on the same queue, and kills one of them (SIGKILL)
// part way: every group is applied exactly once, the killed worker's held
// batch by the survivors once the claim timeout passes.
func TestTwoProcessesImport(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	spec := redisSpec(t, redistest.SharedCluster(t)) + "|1s"
	a := startChild(t, spec, "idle")
	b := startChild(t, spec, "idle")
	for _, c := range []*child{a, b} {
		fmt.Fprintln(c.stdin)
		c.expect(t, "done")
	}
	e := openSpec(t, spec)
	ctx := context.Background()
	const batches, profiles = 60, 7
	want := map[string]int{}
	for i := range batches {
		var evs []Event
		for j := range 3 {
			id := fmt.Sprint("imp-", (i+j)%profiles)
			evs = append(evs, Event{Type: EventTrack, Event: "tick", AnonymousID: id})
			want[id]++
		}
		if err := e.Import(ctx, Request{Events: evs}); err != nil {
			t.Fatal(err)
		}
		if i == batches/3 {
			a.cmd.Process.Kill() // a crash, whatever a's worker holds
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for e.ImportQueueLen() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d batches still queued after 60s", e.ImportQueueLen())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for id, n := range want {
		rec, err := e.load(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got := rec.Events["tick"].Count; got != int64(n) {
			t.Errorf("%s: %d ticks applied, want %d", id, got, n)
		}
	}
}

// TestRedisStoreErrorsAreNotSilent checks the engine on a store whose
// server is gone: calls fail with the store's error, nothing panics.
func TestRedisStoreErrorsAreNotSilent(t *testing.T) {
	srv := redistest.Standalone(t)
	e := openSpec(t, redisSpec(t, srv))
	ctx := context.Background()
	if _, err := e.Identify(ctx, "p", Request{Events: []Event{{Type: EventTrack, Event: "tick"}}}); err != nil {
		t.Fatal(err)
	}
	srv.Kill(t, srv.Addrs[0])
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := e.Identify(cctx, "p2", Request{Events: []Event{{Type: EventTrack, Event: "tick"}}})
	if err == nil || errors.Is(err, ErrInvalidInput) {
		t.Fatalf("Identify with the server gone: %v, want a store error", err)
	}
}
