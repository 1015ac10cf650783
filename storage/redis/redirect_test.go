package redis_test

import (
	"strconv"
	"testing"

	"github.com/tailorhq/tailor/storage"
	"github.com/tailorhq/tailor/storage/redis"
	"github.com/tailorhq/tailor/storage/redis/redistest"
)

// TestWaitFollowsRedirects writes with WaitReplicas while the cluster
// moves slots under the store, which sends the script and WAIT to a
// primary itself: after a manual failover (the old primary answers MOVED)
// and while a slot is being migrated (the source answers ASK for a key it
// does not have), the write lands on the right node and WAIT counts its
// replicas there.
func TestWaitFollowsRedirects(t *testing.T) {
	srv := redistest.Cluster(t)
	s := open(t, redis.Options{Addrs: srv.Addrs, KeyPrefix: redistest.KeyPrefix(t), WaitReplicas: 1})
	write := func(key, value string) {
		t.Helper()
		if _, err := s.Write(ctx, storage.Op{Key: []byte(key), Value: []byte(value)}); err != nil {
			t.Fatalf("Write(%q): %v", key, err)
		}
		if v, _, err := s.Get(ctx, []byte(key), nil); err != nil || string(v) != value {
			t.Fatalf("Get(%q) = %q, %v; want %q", key, v, err, value)
		}
	}
	cli := func(addr string, args ...string) string {
		t.Helper()
		out, err := srv.CLI(addr, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	write("k", "before")

	// MOVED: the replica of k's primary takes over by CLUSTER FAILOVER;
	// the old primary stays up, as a replica that redirects writes.
	old := srv.PrimaryOf(t, "k")
	replica := srv.ReplicasOf(t, old)[0]
	if out := cli(replica, "cluster", "failover"); out != "OK" {
		t.Fatalf("CLUSTER FAILOVER = %q", out)
	}
	// While the replica takes over, the cluster's view can show no owner
	// of the slot for a moment, and PrimaryOf fails the test then:
	// SlotOwners reports that moment as "".
	waitFor(t, "the manual failover", func() bool { return srv.SlotOwners(t)[redistest.KeySlot("k")] == replica })
	srv.WaitHealthy(t)
	write("k", "after a failover")

	// ASK: the slot of a new key migrates from its primary to another.
	const key = "m"
	slot := strconv.Itoa(redistest.KeySlot(key))
	source := srv.PrimaryOf(t, key)
	var target string
	for _, p := range srv.Primaries(t) {
		if p != source {
			target = p
			break
		}
	}
	sourceID, targetID := cli(source, "cluster", "myid"), cli(target, "cluster", "myid")
	if out := cli(target, "cluster", "setslot", slot, "importing", sourceID); out != "OK" {
		t.Fatalf("SETSLOT IMPORTING = %q", out)
	}
	if out := cli(source, "cluster", "setslot", slot, "migrating", targetID); out != "OK" {
		t.Fatalf("SETSLOT MIGRATING = %q", out)
	}
	if _, err := s.Write(ctx, storage.Op{Key: []byte(key), Value: []byte("during a migration")}); err != nil {
		t.Fatalf("Write during a migration: %v", err)
	}
	if n := cli(target, "cluster", "countkeysinslot", slot); n != "1" {
		t.Fatalf("the target holds %s keys of slot %s after an ASK redirect, want 1", n, slot)
	}
	for _, a := range []string{target, source} {
		if out := cli(a, "cluster", "setslot", slot, "node", targetID); out != "OK" {
			t.Fatalf("SETSLOT NODE on %s = %q", a, out)
		}
	}
	waitFor(t, "the migration to be known", func() bool { return srv.SlotOwners(t)[redistest.KeySlot(key)] == target })
	if v, _, err := s.Get(ctx, []byte(key), nil); err != nil || string(v) != "during a migration" {
		t.Fatalf("Get after the migration = %q, %v", v, err)
	}
	write(key, "after a migration")
}
