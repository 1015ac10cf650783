package redis_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tailorhq/tailor/storage"
	"github.com/tailorhq/tailor/storage/redis"
	"github.com/tailorhq/tailor/storage/redis/redistest"
)

// TestRacingConditionalCluster is a heavier race than the suite's: three
// store instances (three clients, as three processes would have) with 16
// goroutines each increment counters on keys spread over every primary of
// the cluster, by read (through the client-side cache), compute,
// conditional write, retrying on ErrConflict. Every counter must end at
// exactly the number of increments made to it, and the writers must have
// conflicted.
func TestRacingConditionalCluster(t *testing.T) {
	srv := redistest.SharedCluster(t)
	prefix := redistest.KeyPrefix(t)
	const instances, perInstance, increments, keysPerPrimary = 3, 16, 60, 3
	stores := make([]*redis.Store, instances)
	for i := range stores {
		stores[i] = open(t, redis.Options{Addrs: srv.Addrs, KeyPrefix: prefix})
	}
	// Pick keys so that every primary serves some.
	owners := srv.SlotOwners(t)
	perOwner := map[string]int{}
	var keys []string
	for i := 0; len(keys) < 3*keysPerPrimary; i++ {
		k := fmt.Sprint("n/", i)
		if o := owners[redistest.KeySlot(k)]; perOwner[o] < keysPerPrimary {
			perOwner[o]++
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		if _, err := stores[0].Write(ctx, storage.Op{Key: []byte(k), Value: []byte("0")}); err != nil {
			t.Fatal(err)
		}
	}
	want := make([]atomic.Int64, len(keys))
	var conflicts atomic.Int64
	var wg sync.WaitGroup
	for w := range instances * perInstance {
		s := stores[w%instances]
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for range increments {
				i := rng.IntN(len(keys))
				k := []byte(keys[i])
				for {
					b, v, err := s.Get(ctx, k, nil)
					if err != nil {
						t.Error(err)
						return
					}
					n, err := strconv.Atoi(string(b))
					if err != nil {
						t.Errorf("%s holds %q", k, b)
						return
					}
					_, err = s.Write(ctx, storage.Op{Key: k, Value: []byte(strconv.Itoa(n + 1)), IfVersion: v})
					if errors.Is(err, storage.ErrConflict) {
						conflicts.Add(1)
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					want[i].Add(1)
					break
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i, k := range keys {
		for j, s := range stores {
			b, _, err := s.Get(ctx, []byte(k), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(b); got != strconv.FormatInt(want[i].Load(), 10) {
				t.Errorf("instance %d: %s = %s after %d increments", j, k, got, want[i].Load())
			}
		}
	}
	total := instances * perInstance * increments
	t.Logf("%d increments by %d goroutines on %d instances over %d keys on %d primaries: %d conflicts retried",
		total, instances*perInstance, instances, len(keys), len(perOwner), conflicts.Load())
	if conflicts.Load() == 0 {
		t.Error("no conflict: the writers did not race")
	}
}
