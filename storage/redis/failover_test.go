package redis_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailorhq/tailor/storage"
	"github.com/tailorhq/tailor/storage/redis"
	"github.com/tailorhq/tailor/storage/redis/redistest"
)

// outcome is one write of the failover test: acknowledged, or not.
type outcome struct {
	key  string
	slot int
	at   time.Time
	err  error
}

// TestFailover kills (SIGKILL) a primary of the cluster while writers
// write distinct keys, waits for its replica to take over, restarts the
// killed node (it rejoins as a replica, so that WAIT can be answered
// again) and checks that writes resume on the failed shard. Then it reads
// back every write that Write acknowledged and counts those lost: without
// WaitReplicas a write acknowledged by the primary but not yet copied to
// the replica is lost with it; with WaitReplicas 1 none may be. Every
// write that failed during the failover must have returned an error.
//
// In the "crash" runs the replica is in sync when the primary dies (on
// loopback it trails by microseconds). In the "lag" runs its link is down
// when the primary dies: the replica is paused (SIGSTOP) and the primary
// drops it (CLIENT KILL TYPE replica), so writes go on only on the
// primary until it is killed — without WAIT they are acknowledged and
// then lost, which shows the test sees a loss when there is one; with
// WAIT they fail with ErrNotReplicated instead.
func TestFailover(t *testing.T) {
	for _, c := range []struct {
		name string
		wait int
		lag  bool
	}{{"crash/nowait", 0, false}, {"crash/wait1", 1, false}, {"lag/nowait", 0, true}, {"lag/wait1", 1, true}} {
		t.Run(c.name, func(t *testing.T) {
			failover(t, c.wait, c.lag)
		})
	}
}

func failover(t *testing.T, wait int, lag bool) {
	const writers = 8
	srv := redistest.Cluster(t)
	prefix := redistest.KeyPrefix(t)
	s := open(t, redis.Options{Addrs: srv.Addrs, KeyPrefix: prefix, WaitReplicas: wait, WaitTimeout: 500 * time.Millisecond})
	owners := srv.SlotOwners(t)
	victim := owners[redistest.KeySlot("victim")]

	var (
		mu        sync.Mutex
		outcomes  []outcome
		errSample error
		total     atomic.Int64
	)
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for seq := 1; wctx.Err() == nil; seq++ {
				key := fmt.Sprintf("f/%d/%d", w, seq)
				octx, cancel := context.WithTimeout(wctx, 2*time.Second)
				_, err := s.Write(octx, storage.Op{Key: []byte(key), Value: []byte(key)})
				cancel()
				mu.Lock()
				if err == nil || wctx.Err() == nil {
					outcomes = append(outcomes, outcome{key, redistest.KeySlot(key), time.Now(), err})
				}
				if err != nil && wctx.Err() == nil && (errSample == nil || errors.Is(err, redis.ErrNotReplicated)) {
					errSample = err
				}
				mu.Unlock()
				if err == nil {
					total.Add(1)
				} else {
					time.Sleep(5 * time.Millisecond) // pace retries while the shard is down
				}
			}
		})
	}
	defer func() { stop(); wg.Wait() }()
	waitFor(t, "2000 writes before the kill", func() bool { return total.Load() >= 2000 })
	onVictim := func(o outcome) bool { return owners[o.slot] == victim }
	// since counts the outcomes on the victim's shard after t0.
	since := func(t0 time.Time) (acked, failed int) {
		mu.Lock()
		defer mu.Unlock()
		for i := len(outcomes) - 1; i >= 0 && outcomes[i].at.After(t0); i-- {
			switch o := outcomes[i]; {
			case !onVictim(o):
			case o.err == nil:
				acked++
			default:
				failed++
			}
		}
		return acked, failed
	}

	var replica string
	if lag {
		replicas := srv.ReplicasOf(t, victim)
		if len(replicas) != 1 {
			t.Fatalf("primary %s has replicas %v, want one", victim, replicas)
		}
		replica = replicas[0]
		srv.Pause(t, replica)
		if out, err := srv.CLI(victim, "client", "kill", "type", "replica"); err != nil || out != "1" {
			t.Fatalf("CLIENT KILL TYPE replica on %s = %q, %v", victim, out, err)
		}
		linkDown := time.Now()
		waitFor(t, "100 writes acknowledged or 8 refused on the primary without its replica", func() bool {
			acked, failed := since(linkDown)
			return acked >= 100 || failed >= 8
		})
	}
	killedAt := time.Now()
	srv.Kill(t, victim)
	if lag {
		srv.Resume(t, replica)
	}
	successor := srv.WaitFailover(t, "victim")
	failedOver := time.Since(killedAt)
	srv.Restart(t, victim)
	srv.WaitHealthy(t)
	healthyAt := time.Now()
	waitFor(t, "500 writes on the failed shard after the restart", func() bool {
		acked, _ := since(healthyAt)
		return acked >= 500
	})
	stop()
	wg.Wait()

	// Read back every acknowledged write, without the cache.
	r := open(t, redis.Options{Addrs: srv.Addrs, KeyPrefix: prefix, DisableCache: true})
	var lost, lostElsewhere, ackedVictim, resumed atomic.Int64
	var acked, failedAfterKill int
	jobs := make(chan outcome)
	var rg sync.WaitGroup
	for range 8 {
		rg.Go(func() {
			for a := range jobs {
				v, _, err := r.Get(ctx, []byte(a.key), nil)
				switch {
				case errors.Is(err, storage.ErrNotFound):
					lost.Add(1)
					if !onVictim(a) {
						lostElsewhere.Add(1)
					}
				case err != nil:
					t.Errorf("Get(%q): %v", a.key, err)
				case string(v) != a.key:
					t.Errorf("Get(%q) = %q", a.key, v)
				}
			}
		})
	}
	for _, o := range outcomes {
		if o.err != nil {
			if o.at.After(killedAt) {
				failedAfterKill++
			}
			continue
		}
		acked++
		if onVictim(o) {
			ackedVictim.Add(1)
			if o.at.After(healthyAt) {
				resumed.Add(1)
			}
		}
		jobs <- o
	}
	close(jobs)
	rg.Wait()

	t.Logf("WaitReplicas %d, replica link down: %v: primary %s killed, %s took over after %v; %d writes acknowledged (%d on the failed shard, %d of them after the restart), %d failed after the kill (e.g. %v); %d acknowledged writes lost",
		wait, lag, victim, successor, failedOver.Round(time.Millisecond), acked, ackedVictim.Load(), resumed.Load(), failedAfterKill, errSample, lost.Load())
	if lostElsewhere.Load() > 0 {
		t.Errorf("%d acknowledged writes lost on shards whose primary was not killed", lostElsewhere.Load())
	}
	if failedAfterKill == 0 {
		t.Error("no Write failed while the primary was down: errors must be returned, not hidden")
	}
	if wait > 0 && lost.Load() > 0 {
		t.Errorf("%d writes acknowledged by a replica (WaitReplicas %d) were lost in the failover", lost.Load(), wait)
	}
	if wait == 0 && lag && lost.Load() == 0 {
		t.Error("no write lost although the primary acknowledged writes its replica never received: the test does not see losses")
	}
}

// waitFor polls cond every 10 ms until it holds, failing t after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
