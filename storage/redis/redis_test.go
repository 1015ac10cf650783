package redis_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/storage"
	"github.com/tailorhq/tailor/storage/redis"
	"github.com/tailorhq/tailor/storage/redis/redistest"
	"github.com/tailorhq/tailor/storage/storagetest"
)

var ctx = context.Background()

// open opens a store with o and closes it at the end of the test.
func open(t testing.TB, o redis.Options) *redis.Store {
	t.Helper()
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := redis.Open(octx, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// TestConformance runs the storage conformance suite on a standalone
// server and on a cluster, with and without the client-side cache and
// with WAIT for a replica; Share opens a second client on the same
// servers, as another process would.
func TestConformance(t *testing.T) {
	const claimAfter = 300 * time.Millisecond
	standalone := redistest.SharedStandalone(t)
	cluster := redistest.SharedCluster(t)
	configs := []struct {
		name string
		srv  *redistest.Servers
		opts redis.Options
	}{
		{"standalone", standalone, redis.Options{}},
		{"standalone/nocache", standalone, redis.Options{DisableCache: true}},
		{"cluster", cluster, redis.Options{}},
		{"cluster/nocache", cluster, redis.Options{DisableCache: true}},
		{"cluster/wait", cluster, redis.Options{WaitReplicas: 1, WaitTimeout: 5 * time.Second}},
	}
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			storagetest.Run(t, storagetest.Config{
				Open: func(t *testing.T) storage.Store {
					o := c.opts
					o.Addrs = c.srv.Addrs
					o.KeyPrefix = redistest.KeyPrefix(t)
					o.ClaimAfter = claimAfter
					return open(t, o)
				},
				Share: func(t *testing.T, s storage.Store) storage.Store {
					return open(t, s.(*redis.Store).Options())
				},
				Reopen: func(t *testing.T, s storage.Store) storage.Store {
					r := s.(*redis.Store)
					if err := r.Close(); err != nil {
						t.Fatal(err)
					}
					return open(t, r.Options())
				},
				NoBackup:   true,
				ClaimAfter: claimAfter,
			})
		})
	}
}

func TestOpenInvalidOptions(t *testing.T) {
	addrs := []string{"127.0.0.1:1"}
	tests := []struct {
		name  string
		opts  redis.Options
		field string
	}{
		{"no addrs", redis.Options{}, "Addrs"},
		{"bad addr", redis.Options{Addrs: []string{"127.0.0.1"}}, "Addrs[0]"},
		{"empty host", redis.Options{Addrs: []string{"127.0.0.1:6379", ":6379"}}, "Addrs[1]"},
		{"client name", redis.Options{Addrs: addrs, ClientName: "two words"}, "ClientName"},
		{"key prefix", redis.Options{Addrs: addrs, KeyPrefix: "app{1}:"}, "KeyPrefix"},
		{"wait replicas", redis.Options{Addrs: addrs, WaitReplicas: -1}, "WaitReplicas"},
		{"wait timeout", redis.Options{Addrs: addrs, WaitReplicas: 1, WaitTimeout: time.Microsecond}, "WaitTimeout"},
		{"negative wait timeout", redis.Options{Addrs: addrs, WaitTimeout: -time.Second}, "WaitTimeout"},
		{"claim after", redis.Options{Addrs: addrs, ClaimAfter: time.Microsecond}, "ClaimAfter"},
		{"claim after huge", redis.Options{Addrs: addrs, ClaimAfter: 400 * 24 * time.Hour}, "ClaimAfter"},
		{"cache size", redis.Options{Addrs: addrs, CacheSize: -1}, "CacheSize"},
		{"cache ttl", redis.Options{Addrs: addrs, CacheTTL: -time.Second}, "CacheTTL"},
		{"dial timeout", redis.Options{Addrs: addrs, DialTimeout: -time.Second}, "DialTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := redis.Open(ctx, tt.opts)
			if err == nil {
				s.Close()
				t.Fatal("Open accepted invalid options")
			}
			if !strings.Contains(err.Error(), "Options."+tt.field+" ") {
				t.Fatalf("error %q does not name Options.%s", err, tt.field)
			}
		})
	}
}

// TestOpenUnreachable checks that Open reports a server that does not
// answer, naming it, instead of returning a store that fails later.
func TestOpenUnreachable(t *testing.T) {
	redistest.Skip(t)
	_, err := redis.Open(ctx, redis.Options{Addrs: []string{"127.0.0.1:1"}, DialTimeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("Open of a closed port = %v, want an error naming it", err)
	}
}

// TestOptionsNotShared checks that Open copies the options: the caller's
// slice can change without affecting the store, and Options returns a
// copy with the defaults.
func TestOptionsNotShared(t *testing.T) {
	srv := redistest.SharedStandalone(t)
	addrs := append([]string(nil), srv.Addrs...)
	s := open(t, redis.Options{Addrs: addrs})
	addrs[0] = "changed:1"
	o := s.Options()
	if o.Addrs[0] != srv.Addrs[0] || o.KeyPrefix != redis.DefaultKeyPrefix || o.ClaimAfter != redis.DefaultClaimAfter {
		t.Fatalf("Options = %+v", o)
	}
	o.Addrs[0] = "changed:2"
	if s.Options().Addrs[0] != srv.Addrs[0] {
		t.Fatal("Options shares its Addrs with the store")
	}
}

// TestKeysWithBraces writes keys whose braces change their hash tag, and
// keys Redis's glob syntax treats specially, on the cluster: each is its
// own key, and Scan finds exactly them.
func TestKeysWithBraces(t *testing.T) {
	srv := redistest.SharedCluster(t)
	s := open(t, redis.Options{Addrs: srv.Addrs, KeyPrefix: redistest.KeyPrefix(t)})
	keys := []string{"a}b", "a", "{a}", "}", "{", "}{", "a{b}c", "x*", "x?", "x[1]", `x\`, "a}c"}
	for i, k := range keys {
		if _, err := s.Write(ctx, storage.Op{Key: []byte(k), Value: []byte{byte(i)}}); err != nil {
			t.Fatalf("Write(%q): %v", k, err)
		}
	}
	for i, k := range keys {
		v, _, err := s.Get(ctx, []byte(k), nil)
		if err != nil || len(v) != 1 || v[0] != byte(i) {
			t.Fatalf("Get(%q) = %v, %v; want [%d]", k, v, err, i)
		}
	}
	for _, prefix := range []string{"", "a", "a}", "{", "x", "x["} {
		want := map[string]bool{}
		for _, k := range keys {
			if strings.HasPrefix(k, prefix) {
				want[k] = true
			}
		}
		got := map[string]bool{}
		err := s.Scan(ctx, []byte(prefix), func(k, _ []byte, _ storage.Version) error {
			if got[string(k)] {
				t.Errorf("Scan(%q) visited %q twice", prefix, k)
			}
			got[string(k)] = true
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("Scan(%q) = %v, want %v", prefix, got, want)
		}
		for k := range want {
			if !got[k] {
				t.Fatalf("Scan(%q) missed %q: %v", prefix, k, got)
			}
		}
	}
}

// TestNotReplicated asks for more replicas than the cluster has: the
// write is applied on the primary, and Write says it was not replicated
// enough, after WaitTimeout.
func TestNotReplicated(t *testing.T) {
	srv := redistest.SharedCluster(t)
	const timeout = 200 * time.Millisecond
	s := open(t, redis.Options{Addrs: srv.Addrs, KeyPrefix: redistest.KeyPrefix(t), WaitReplicas: 2, WaitTimeout: timeout})
	start := time.Now()
	_, err := s.Write(ctx, storage.Op{Key: []byte("k"), Value: []byte("v")})
	if !errors.Is(err, redis.ErrNotReplicated) {
		t.Fatalf("Write with WaitReplicas 2 of 1 = %v, want ErrNotReplicated", err)
	}
	if d := time.Since(start); d < timeout {
		t.Fatalf("Write returned after %v, before WaitTimeout %v", d, timeout)
	}
	if !strings.Contains(err.Error(), "1 of 2 replicas") {
		t.Errorf("error %q does not say how many replicas acknowledged", err)
	}
	if v, _, err := s.Get(ctx, []byte("k"), nil); err != nil || string(v) != "v" {
		t.Fatalf("Get after a write not replicated enough = %q, %v; want it applied on the primary", v, err)
	}
}

// TestPing checks Ping on a cluster, and that it reports a cluster that
// no longer serves every slot.
func TestPing(t *testing.T) {
	srv := redistest.Cluster(t)
	s := open(t, redis.Options{Addrs: srv.Addrs, KeyPrefix: redistest.KeyPrefix(t)})
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	killed := srv.KillPrimaryOf(t, "k")
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.Ping(pctx); err == nil {
		t.Fatalf("Ping with primary %s killed = nil", killed)
	}
	srv.WaitFailover(t, "k")
	// The client learns the new topology from the errors it saw.
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := s.Ping(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ping after the failover: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCloseEndsNext checks that Close does not wait for a Next blocked on
// an empty queue: the Next returns ErrClosed, and Close returns.
func TestCloseEndsNext(t *testing.T) {
	srv := redistest.Standalone(t)
	s, err := redis.Open(ctx, redis.Options{Addrs: srv.Addrs, KeyPrefix: redistest.KeyPrefix(t), ClaimAfter: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	q, err := s.Queue("empty")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		close(started)
		_, err := q.Next(ctx)
		done <- err
	}()
	<-started
	// Next blocks in XREADGROUP slices of a second (ClaimAfter/4, at most
	// 1 s); wait until the server sees it blocked, then close.
	waitFor(t, "Next to block in XREADGROUP", func() bool {
		out, err := srv.CLI(srv.Addrs[0], "info", "clients")
		return err == nil && !strings.Contains(out, "blocked_clients:0\n")
	})
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-done:
		if !errors.Is(err, storage.ErrClosed) {
			t.Fatalf("Next during Close = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Next still waiting 5 s after Close")
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
}
