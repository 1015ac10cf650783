package redis_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailorhq/tailor/storage"
	"github.com/tailorhq/tailor/storage/redis"
	"github.com/tailorhq/tailor/storage/redis/redistest"
)

// netCounter counts the writes to the network of the connections it
// dials: for a caller that waits for each answer, one write is one round
// trip. rueidis's keep-alive PINGs are not counted.
type netCounter struct{ writes atomic.Int64 }

func (n *netCounter) dial(ctx context.Context, addr string, d *net.Dialer, _ *tls.Config) (net.Conn, error) {
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &countedConn{Conn: c, n: n}, nil
}

type countedConn struct {
	net.Conn
	n *netCounter
}

var debugWrites = false

var pingCmd = []byte("*1\r\n$4\r\nPING\r\n")

func (c *countedConn) Write(b []byte) (int, error) {
	if len(bytes.ReplaceAll(b, pingCmd, nil)) > 0 {
		c.n.writes.Add(1)
		if debugWrites {
			fmt.Printf("WRITE %q\n", b)
		}
	}
	return c.Conn.Write(b)
}

// TestRoundTrips counts, on the network, the round trips of each call:
// a Get answered by the cache sends nothing, a cold Get one round trip, a
// Write one (the script with the PTTL that keeps the cache right), and
// two with WaitReplicas (script and WAIT on a dedicated connection, then
// the PTTL on the cached one). Stats.RoundTrips must agree.
func TestRoundTrips(t *testing.T) {
	standalone := redistest.SharedStandalone(t)
	cluster := redistest.SharedCluster(t)
	tests := []struct {
		name               string
		srv                *redistest.Servers
		opts               redis.Options
		write, warm, after int // round trips of a Write, a warm Get, a Get after the store's own Write
	}{
		{"standalone", standalone, redis.Options{}, 1, 0, 1},
		{"standalone/nocache", standalone, redis.Options{DisableCache: true}, 1, 1, 1},
		{"cluster", cluster, redis.Options{}, 1, 0, 1},
		{"cluster/nocache", cluster, redis.Options{DisableCache: true}, 1, 1, 1},
		{"cluster/wait", cluster, redis.Options{WaitReplicas: 1}, 2, 0, 1},
		{"cluster/wait/nocache", cluster, redis.Options{WaitReplicas: 1, DisableCache: true}, 1, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := &netCounter{}
			o := tt.opts
			o.Addrs, o.KeyPrefix = tt.srv.Addrs, redistest.KeyPrefix(t)
			redis.SetDial(&o, n.dial)
			s := open(t, o)
			// Connect to every node first: a write and a read on keys of
			// every slot range, so no dial or handshake is counted below.
			for i := range 64 {
				k := []byte(fmt.Sprint("warm/", i))
				if _, err := s.Write(ctx, storage.Op{Key: k, Value: []byte("x")}); err != nil {
					t.Fatal(err)
				}
				if _, _, err := s.Get(ctx, k, nil); err != nil {
					t.Fatal(err)
				}
			}
			measure := func(what string, want int, f func() error) {
				t.Helper()
				before, stats := n.writes.Load(), s.Stats().RoundTrips
				if err := f(); err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				got, counted := n.writes.Load()-before, s.Stats().RoundTrips-stats
				t.Logf("%-26s %d round trip(s)", what, got)
				if got != int64(want) {
					t.Errorf("%s: %d round trips on the network, want %d", what, got, want)
				}
				if counted != uint64(got) {
					t.Errorf("%s: Stats counted %d round trips, the network saw %d", what, counted, got)
				}
			}
			key := []byte("rt")
			var v storage.Version
			write := func() (err error) {
				v, err = s.Write(ctx, storage.Op{Key: key, Value: []byte("value")})
				return err
			}
			get := func() error {
				_, got, err := s.Get(ctx, key, nil)
				if err == nil && got != v {
					err = fmt.Errorf("version %d, want %d", got, v)
				}
				return err
			}
			measure("Write", tt.write, write)
			measure("Get (cold)", tt.after, get)
			measure("Get (warm)", tt.warm, get)
			measure("100 Gets (warm)", 100*tt.warm, func() error {
				for range 100 {
					if err := get(); err != nil {
						return err
					}
				}
				return nil
			})
			measure("Write (key cached)", tt.write, write)
			measure("Get after own Write", tt.after, get)
			measure("conditional Write", tt.write, func() (err error) {
				v, err = s.Write(ctx, storage.Op{Key: key, Value: []byte("value 2"), IfVersion: v})
				return err
			})
			measure("conflicting Write", tt.write, func() error {
				_, err := s.Write(ctx, storage.Op{Key: key, Value: []byte("stale"), IfVersion: v + 1})
				if !errors.Is(err, storage.ErrConflict) {
					return fmt.Errorf("Write = %v, want ErrConflict", err)
				}
				return nil
			})
			missing := func() error {
				if _, _, err := s.Get(ctx, []byte("missing"), nil); !errors.Is(err, storage.ErrNotFound) {
					return fmt.Errorf("Get(missing) = %v", err)
				}
				return nil
			}
			measure("Get missing (cold)", 1, missing)
			measure("Get missing (warm)", tt.warm, missing)
		})
	}
}

// TestCacheServesWarmReads checks on the server that warm Gets reach it
// not at all: its GET count (INFO commandstats) does not move while the
// store answers a thousand Gets of a key it read before.
func TestCacheServesWarmReads(t *testing.T) {
	srv := redistest.SharedCluster(t)
	s := open(t, redis.Options{Addrs: srv.Addrs, KeyPrefix: redistest.KeyPrefix(t)})
	if _, err := s.Write(ctx, storage.Op{Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, []byte("k"), nil); err != nil {
		t.Fatal(err)
	}
	primary := srv.PrimaryOf(t, "k")
	gets := func() int {
		t.Helper()
		out, err := srv.CLI(primary, "info", "commandstats")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(out, "\n") {
			if rest, ok := strings.CutPrefix(line, "cmdstat_get:calls="); ok {
				n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
				return n
			}
		}
		t.Fatalf("no cmdstat_get in INFO commandstats of %s", primary)
		return 0
	}
	before, hits := gets(), s.Stats().CacheHits
	for range 1000 {
		if v, _, err := s.Get(ctx, []byte("k"), nil); err != nil || string(v) != "v" {
			t.Fatalf("Get = %q, %v", v, err)
		}
	}
	if after := gets(); after != before {
		t.Fatalf("the server counted %d GETs during 1000 warm Gets, want none", after-before)
	}
	if n := s.Stats().CacheHits - hits; n != 1000 {
		t.Fatalf("Stats counted %d cache hits of 1000 warm Gets", n)
	}
}

// TestInvalidationByOtherInstance has one store cache keys that another
// store then writes: the first store's Get sees the new version once the
// server's invalidation arrives — eventually, not at once, so the test
// polls (for at most 5 s a key) and reports how long that took. Until
// then it must see exactly the old value.
func TestInvalidationByOtherInstance(t *testing.T) {
	srv := redistest.SharedCluster(t)
	prefix := redistest.KeyPrefix(t)
	a := open(t, redis.Options{Addrs: srv.Addrs, KeyPrefix: prefix})
	b := open(t, redis.Options{Addrs: srv.Addrs, KeyPrefix: prefix})
	const keys = 200
	var delays []time.Duration
	stale := 0
	for i := range keys {
		k := []byte(fmt.Sprint("inv/", i))
		va, err := a.Write(ctx, storage.Op{Key: k, Value: []byte("old")})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := a.Get(ctx, k, nil); err != nil {
			t.Fatal(err)
		}
		hits := a.Stats().CacheHits
		if _, v, err := a.Get(ctx, k, nil); err != nil || v != va || a.Stats().CacheHits != hits+1 {
			t.Fatalf("second Get of %q = %d, %v, cache hit: %v; want a cache hit of %d", k, v, err, a.Stats().CacheHits > hits, va)
		}
		vb, err := b.Write(ctx, storage.Op{Key: k, Value: []byte("new")})
		if err != nil {
			t.Fatal(err)
		}
		written := time.Now()
		for {
			val, v, err := a.Get(ctx, k, nil)
			if err != nil {
				t.Fatal(err)
			}
			if v == vb && string(val) == "new" {
				delays = append(delays, time.Since(written))
				break
			}
			if v != va || string(val) != "old" {
				t.Fatalf("Get(%q) = %q at %d; want the old %d or the new %d", k, val, v, va, vb)
			}
			stale++
			time.Sleep(20 * time.Microsecond) // poll, leaving the CPU to rueidis's reader
			if time.Since(written) > 5*time.Second {
				t.Fatalf("Get(%q) still returns the old version 5 s after another store's write", k)
			}
		}
	}
	if n := a.Stats().Invalidations; n < keys {
		t.Errorf("Stats counted %d invalidations for %d keys written by another store", n, keys)
	}
	slices.Sort(delays)
	t.Logf("another store's write seen after: median %v, p99 %v, max %v (%d keys; %d Gets still saw the old value)",
		delays[len(delays)/2], delays[len(delays)*99/100], delays[len(delays)-1], keys, stale)
}

// TestConflictRefreshesCache checks that a conditional Write that fails
// because another store wrote the key leaves the cache up to date: the
// next Get returns the other store's version at once (the server sent the
// invalidation before the script's answer, on the same connection), so a
// caller that re-reads after ErrConflict never retries on a stale read.
func TestConflictRefreshesCache(t *testing.T) {
	srv := redistest.SharedCluster(t)
	for _, tt := range []struct {
		name string
		opts redis.Options
	}{{"nowait", redis.Options{}}, {"wait", redis.Options{WaitReplicas: 1}}} {
		t.Run(tt.name, func(t *testing.T) {
			prefix := redistest.KeyPrefix(t)
			o := tt.opts
			o.Addrs, o.KeyPrefix = srv.Addrs, prefix
			a := open(t, o)
			b := open(t, o)
			for i := range 200 {
				k := []byte(fmt.Sprint("c/", i))
				va, err := a.Write(ctx, storage.Op{Key: k, Value: []byte("a")})
				if err != nil {
					t.Fatal(err)
				}
				if _, _, err := a.Get(ctx, k, nil); err != nil {
					t.Fatal(err)
				}
				vb, err := b.Write(ctx, storage.Op{Key: k, Value: []byte("b")})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := a.Write(ctx, storage.Op{Key: k, Value: []byte("lost update"), IfVersion: va}); !errors.Is(err, storage.ErrConflict) {
					t.Fatalf("Write on a stale version = %v, want ErrConflict", err)
				}
				if val, v, err := a.Get(ctx, k, nil); err != nil || v != vb || string(val) != "b" {
					t.Fatalf("Get after ErrConflict = %q at %d, %v; want %q at %d", val, v, err, "b", vb)
				}
			}
		})
	}
}

// TestReadYourWritesConcurrent has goroutines each write their own key
// and read it back at once, while other goroutines keep reading (and so
// re-caching) the same keys through the same store: every Get after a
// Write returned sees that Write's version or a later one.
func TestReadYourWritesConcurrent(t *testing.T) {
	srv := redistest.SharedCluster(t)
	s := open(t, redis.Options{Addrs: srv.Addrs, KeyPrefix: redistest.KeyPrefix(t)})
	const writers, rounds = 16, 100
	rctx, stop := context.WithCancel(ctx)
	var readers sync.WaitGroup
	for r := range writers {
		readers.Go(func() {
			k := []byte(fmt.Sprint("ryw/", r))
			for rctx.Err() == nil {
				if _, _, err := s.Get(rctx, k, nil); err != nil && !errors.Is(err, storage.ErrNotFound) && rctx.Err() == nil {
					t.Error(err)
					return
				}
				time.Sleep(50 * time.Microsecond) // leave the CPUs to the writers
			}
		})
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			k := []byte(fmt.Sprint("ryw/", w))
			for i := range rounds {
				v, err := s.Write(ctx, storage.Op{Key: k, Value: []byte(strconv.Itoa(i))})
				if err != nil {
					t.Error(err)
					return
				}
				val, got, err := s.Get(ctx, k, nil)
				if err != nil || got != v || string(val) != strconv.Itoa(i) {
					t.Errorf("Get right after Write %d of %q = %q at %d, %v; want version %d", i, k, val, got, err, v)
					return
				}
			}
		})
	}
	wg.Wait()
	stop()
	readers.Wait()
}
