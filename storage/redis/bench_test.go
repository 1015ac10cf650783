package redis_test

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/tailorhq/tailor/storage"
	"github.com/tailorhq/tailor/storage/redis"
	"github.com/tailorhq/tailor/storage/redis/redistest"
)

// BenchmarkStore measures Get and Write against a local cluster (3
// primaries, 3 replicas, on the same machine as the benchmark) with 1 KB
// values, the size of a small profile:
//
//   - Get/warm: a key read before, answered by the client-side cache;
//   - Get/miss: a key never read, with the cache on (one round trip:
//     CLIENT CACHING, MULTI, PTTL, GET, EXEC);
//   - Get/nocache: the cache off (one round trip: GET);
//   - Write: an unconditional set (one round trip: EVALSHA and PTTL);
//   - Write/conditional: a set on condition of the version the previous
//     one returned;
//   - Write/wait1: with WaitReplicas 1 (EVALSHA and WAIT, then PTTL);
//   - Write/parallel: unconditional sets from GOMAXPROCS*8 goroutines,
//     pipelined by rueidis on one connection per node.
//
// Run it briefly: go test -run XXX -bench Store -benchtime 2000x ./storage/redis
func BenchmarkStore(b *testing.B) {
	srv := redistest.SharedCluster(b)
	prefix := redistest.KeyPrefix(b)
	s := open(b, redis.Options{Addrs: srv.Addrs, KeyPrefix: prefix})
	value := bytes.Repeat([]byte("x"), 1024)
	write := func(b *testing.B, s *redis.Store, op storage.Op) storage.Version {
		v, err := s.Write(ctx, op)
		if err != nil {
			b.Fatal(err)
		}
		return v
	}
	get := func(b *testing.B, s *redis.Store, key, dst []byte) []byte {
		v, _, err := s.Get(ctx, key, dst)
		if err != nil {
			b.Fatal(err)
		}
		return v
	}

	b.Run("Get/warm", func(b *testing.B) {
		key := []byte("warm")
		write(b, s, storage.Op{Key: key, Value: value})
		dst := get(b, s, key, nil)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			dst = get(b, s, key, dst)
		}
	})
	b.Run("Get/miss", func(b *testing.B) {
		// A fresh store, so that no key is cached, and keys written by
		// the other store, so that writing did not cache them either.
		keys := make([][]byte, 0, b.N)
		for i := range b.N {
			k := fmt.Appendf(nil, "miss/%d/%d", b.N, i)
			write(b, s, storage.Op{Key: k, Value: value})
			keys = append(keys, k)
		}
		r := open(b, redis.Options{Addrs: srv.Addrs, KeyPrefix: prefix})
		var dst []byte
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			dst = get(b, r, keys[i], dst)
		}
		b.StopTimer()
		if st := r.Stats(); st.CacheHits != 0 {
			b.Fatalf("%d cache hits among Gets of keys never read", st.CacheHits)
		}
	})
	b.Run("Get/nocache", func(b *testing.B) {
		r := open(b, redis.Options{Addrs: srv.Addrs, KeyPrefix: prefix, DisableCache: true})
		key := []byte("warm")
		dst := get(b, r, key, nil)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			dst = get(b, r, key, dst)
		}
	})
	b.Run("Write", func(b *testing.B) {
		op := storage.Op{Key: []byte("w"), Value: value}
		b.ReportAllocs()
		for b.Loop() {
			write(b, s, op)
		}
	})
	b.Run("Write/conditional", func(b *testing.B) {
		key := []byte("cond")
		v := write(b, s, storage.Op{Key: key, Value: value})
		b.ReportAllocs()
		for b.Loop() {
			v = write(b, s, storage.Op{Key: key, Value: value, IfVersion: v})
		}
	})
	b.Run("Write/wait1", func(b *testing.B) {
		w := open(b, redis.Options{Addrs: srv.Addrs, KeyPrefix: prefix, WaitReplicas: 1})
		op := storage.Op{Key: []byte("w1"), Value: value}
		write(b, w, op) // connect to the key's primary
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			write(b, w, op)
		}
	})
	b.Run("Write/parallel", func(b *testing.B) {
		var n atomic.Int64
		b.SetParallelism(8)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			key := fmt.Appendf(nil, "p/%d", n.Add(1))
			for pb.Next() {
				if _, err := s.Write(ctx, storage.Op{Key: key, Value: value}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
