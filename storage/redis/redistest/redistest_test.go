package redistest_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tailorhq/tailor/storage/redis/redistest"
)

func TestStandalone(t *testing.T) {
	t.Parallel()
	srv := redistest.Standalone(t)
	if len(srv.Addrs) != 1 || srv.IsCluster() {
		t.Fatalf("Standalone: %v, cluster %v", srv.Addrs, srv.IsCluster())
	}
	if out, err := srv.CLI(srv.Addrs[0], "ping"); err != nil || out != "PONG" {
		t.Fatalf("PING = %q, %v", out, err)
	}
	if out, _ := srv.CLI(srv.Addrs[0], "info", "server"); !strings.Contains(out, "redis_mode:standalone") {
		t.Fatalf("not standalone: %s", out)
	}
}

// TestClusterFailover kills the primary of a key, waits for its replica to
// take over, restarts the killed node and waits for it to be a replica in
// sync: the steps the store's failover tests rely on.
func TestClusterFailover(t *testing.T) {
	t.Parallel()
	srv := redistest.Cluster(t)
	if len(srv.Addrs) != 6 || !srv.IsCluster() {
		t.Fatalf("Cluster: %v", srv.Addrs)
	}
	primaries := srv.Primaries(t)
	if len(primaries) != 3 {
		t.Fatalf("%d primaries, want 3: %v", len(primaries), primaries)
	}
	before := srv.PrimaryOf(t, "k")
	if !slices.Contains(primaries, before) {
		t.Fatalf("PrimaryOf = %s, not one of %v", before, primaries)
	}
	if out, err := srv.CLI(before, "set", "{k}x", "1"); err != nil || out != "OK" {
		t.Fatalf("SET on the primary of k: %q, %v", out, err)
	}
	srv.WaitReplicated(t, before) // replication is asynchronous
	killed := srv.KillPrimaryOf(t, "k")
	if killed != before {
		t.Fatalf("killed %s, want %s", killed, before)
	}
	after := srv.WaitFailover(t, "k")
	if after == killed {
		t.Fatalf("slot still served by the killed %s", killed)
	}
	if out, err := srv.CLI(after, "get", "{k}x"); err != nil || out != "1" {
		t.Fatalf("GET on the new primary: %q, %v", out, err)
	}
	srv.Restart(t, killed)
	srv.WaitHealthy(t)
	if got := srv.PrimaryOf(t, "k"); got != after {
		t.Fatalf("after the restart the primary of k is %s, want %s", got, after)
	}
	if out, _ := srv.CLI(killed, "info", "replication"); !strings.Contains(out, "role:slave") {
		t.Fatalf("restarted node is not a replica: %s", out)
	}
}

// TestKeySlot checks KeySlot against the cluster's own CLUSTER KEYSLOT.
func TestKeySlot(t *testing.T) {
	t.Parallel()
	srv := redistest.Cluster(t)
	owners := srv.SlotOwners(t)
	for _, key := range []string{"", "k", "profile/123", "tailor:{k}", "a{b}c", "{}x", "x{}", "{a}}", "}{b}", "a{b", "\xfe\xff", "123456789"} {
		out, err := srv.CLI(srv.Addrs[0], "cluster", "keyslot", key)
		if err != nil {
			t.Fatal(err)
		}
		if got := redistest.KeySlot(key); strconv.Itoa(got) != out {
			t.Errorf("KeySlot(%q) = %d, CLUSTER KEYSLOT says %s", key, got, out)
		}
		if owners[redistest.KeySlot(key)] != srv.PrimaryOf(t, key) {
			t.Errorf("SlotOwners and PrimaryOf disagree on %q", key)
		}
	}
	if got := redistest.KeySlot("123456789"); got != 12739 {
		t.Errorf("KeySlot(123456789) = %d, want 12739 (the Redis Cluster spec's example)", got)
	}
}

// TestShared checks that SharedCluster and SharedStandalone start their
// servers once per process.
func TestShared(t *testing.T) {
	a, b := redistest.SharedCluster(t), redistest.SharedCluster(t)
	if a != b || !a.IsCluster() {
		t.Fatalf("SharedCluster returned %p and %p", a, b)
	}
	s := redistest.SharedStandalone(t)
	if s.IsCluster() || s != redistest.SharedStandalone(t) {
		t.Fatal("SharedStandalone is not one standalone server")
	}
	for _, addr := range append(a.Addrs, s.Addrs...) {
		if out, err := a.CLI(addr, "ping"); err != nil || out != "PONG" {
			t.Fatalf("PING %s = %q, %v", addr, out, err)
		}
	}
}
