package redis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/tailorhq/tailor/storage"
	"github.com/tailorhq/tailor/storage/internal/gate"
	"github.com/tailorhq/tailor/storage/redis/internal/slot"
)

// ErrNotReplicated is wrapped by the error of a Write (or Enqueue, Ack)
// that the primary applied but fewer than Options.WaitReplicas replicas
// acknowledged within Options.WaitTimeout. The write is in the primary's
// memory and may or may not survive a failover; read the key to tell
// whether it is still there.
var ErrNotReplicated = errors.New("redis: write not acknowledged by enough replicas")

// versionLen is the length of the version that starts every value: 16
// lowercase hex digits.
const versionLen = 16

// Store is a [storage.Store] on Redis or Redis Cluster, through one
// rueidis client. It is safe for concurrent use, also with other Store
// instances (in this and other processes) on the same Redis and
// KeyPrefix. Open it with Open and Close it when done.
type Store struct {
	client   rueidis.Client
	opts     Options
	cluster  bool
	consumer string // this instance's name in every queue's consumer group

	// gate admits calls until Close, which waits for them, so no call
	// ever reaches a closed database or client.
	gate gate.Gate
	// stop is cancelled by Close, to end the waits of Next.
	stop       context.Context
	cancelStop context.CancelFunc

	queuesMu sync.Mutex
	queues   map[string]*queue

	router router // for the round trips to one node: writes with WAIT, Scan, Ping

	closeOnce sync.Once

	stats struct {
		gets, cacheHits, writes, conflicts, roundTrips, invalidations atomic.Uint64
	}
}

var (
	_ storage.Store  = (*Store)(nil)
	_ storage.Cached = (*Store)(nil)
)

// Open connects to the Redis servers opts names and returns a Store once
// every primary answers (within ctx). opts is copied; the caller may reuse
// it.
func Open(ctx context.Context, opts Options) (*Store, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	s := &Store{
		opts:     o,
		consumer: fmt.Sprintf("%s-%s-%d-%08x", o.ClientName, host, os.Getpid(), rand.Uint32()),
		queues:   map[string]*queue{},
	}
	var onInvalidations func([]rueidis.RedisMessage)
	if !o.DisableCache {
		onInvalidations = func(keys []rueidis.RedisMessage) { s.stats.invalidations.Add(1) }
	}
	client, err := rueidis.NewClient(o.clientOption(onInvalidations))
	if err != nil {
		return nil, fmt.Errorf("redis: connect to %s: %w", strings.Join(o.Addrs, ","), err)
	}
	s.client = client
	s.cluster = client.Mode() == rueidis.ClientModeCluster
	s.stop, s.cancelStop = context.WithCancel(context.Background())
	if err := s.ping(ctx); err != nil {
		s.cancelStop()
		s.closeNodes()
		client.Close()
		return nil, err
	}
	return s, nil
}

// redisKey returns the Redis key of store key k: KeyPrefix + "{" + k + "}".
// The braces make k (up to its first '}') the hash tag, so each key has
// its own slot; a k with '{' or '}' may share a slot with another key,
// which is harmless as every operation touches one key.
func (s *Store) redisKey(k []byte) string {
	return s.opts.KeyPrefix + "{" + string(k) + "}"
}

// Get appends the value at key to dst[:0] and returns it with its
// version, or ErrNotFound. It reads through the client-side cache: a key
// read before, and not changed since, is answered from memory without a
// round trip. A write this Store made is seen by every Get that starts
// after the Write returned; a write by another instance is seen once its
// invalidation arrives (see the package documentation, # Caching).
func (s *Store) Get(ctx context.Context, key, dst []byte) ([]byte, storage.Version, error) {
	return s.get(ctx, key, dst, true)
}

// Latest is Get without the client-side cache: one round trip, and the
// value stored at the moment Redis answers, whoever wrote it
// (storage.Cached).
func (s *Store) Latest(ctx context.Context, key, dst []byte) ([]byte, storage.Version, error) {
	return s.get(ctx, key, dst, false)
}

func (s *Store) get(ctx context.Context, key, dst []byte, cached bool) ([]byte, storage.Version, error) {
	if !s.gate.Enter() {
		return nil, 0, storage.ErrClosed
	}
	defer s.gate.Leave()
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	if len(key) == 0 {
		return nil, 0, storage.ErrNotFound
	}
	c := s.client
	var r rueidis.RedisResult
	if cached {
		r = c.DoCache(ctx, c.B().Get().Key(s.redisKey(key)).Cache(), s.opts.CacheTTL)
	} else {
		r = c.Do(ctx, c.B().Get().Key(s.redisKey(key)).Build())
	}
	s.stats.gets.Add(1)
	if r.IsCacheHit() {
		s.stats.cacheHits.Add(1)
	} else {
		s.stats.roundTrips.Add(1)
	}
	val, err := r.ToString()
	if err != nil {
		if rueidis.IsRedisNil(err) {
			return nil, 0, storage.ErrNotFound
		}
		return nil, 0, fmt.Errorf("redis: get %q: %w", key, err)
	}
	v, ok := parseVersion(val)
	if !ok {
		return nil, 0, fmt.Errorf("redis: get %q: the value does not start with a version (not written by this store?)", key)
	}
	return append(dst[:0], val[versionLen:]...), v, nil
}

// Write applies op with one script call (EVALSHA of writeScript) and
// returns the key's new version, or ErrConflict: one round trip. With
// Options.WaitReplicas it also waits for that many replicas (WAIT, sent
// with the script on one connection) and returns an error wrapping
// ErrNotReplicated when fewer acknowledge in time: two round trips, the
// second for the client-side cache. The op's slices are not retained
// after Write returns. ctx is honoured until the op is sent and
// while waiting for the answer: a Write that returns ctx's error after
// sending may or may not have been applied.
func (s *Store) Write(ctx context.Context, op storage.Op) (storage.Version, error) {
	if !s.gate.Enter() {
		return 0, storage.ErrClosed
	}
	defer s.gate.Leave()
	if err := storage.CheckOp(&op, maxKeySize); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.stats.writes.Add(1)
	key := s.redisKey(op.Key)
	cond, kind, value, ttl := "", "s", "", "0"
	switch {
	case op.IfAbsent:
		cond = "a"
	case op.IfVersion != 0:
		cond = formatVersion(op.IfVersion)
	}
	if op.Delete {
		kind = "d"
	} else {
		// A copy: rueidis may still send the command after Write returned
		// ctx's error, and the caller may reuse op.Value by then.
		value = string(op.Value)
		if op.TTL > 0 {
			ttl = strconv.FormatInt(int64((op.TTL+time.Millisecond-1)/time.Millisecond), 10)
		}
	}
	r, err := s.eval(ctx, writeScript, key, cond, kind, value, ttl)
	if err != nil {
		if errors.Is(err, errNil) {
			s.stats.conflicts.Add(1)
			return 0, storage.ErrConflict
		}
		return 0, fmt.Errorf("redis: write %q: %w", op.Key, err)
	}
	if op.Delete {
		return 0, nil
	}
	str, err := r.ToString()
	if err != nil {
		return 0, fmt.Errorf("redis: write %q: %w", op.Key, err)
	}
	v, ok := parseVersion(str)
	if !ok {
		return 0, fmt.Errorf("redis: write %q: the script returned %q, not a version", op.Key, str)
	}
	return v, nil
}

// errNil is returned by eval when the script returned false (nil).
var errNil = errors.New("redis: script returned nil")

// eval runs sc on the one key with args as a write, and returns its
// result, errNil for a nil result, or an error wrapping ErrNotReplicated.
//
// The round trip carries a second command on the same connection, so that
// its answer arrives after every invalidation Redis sent this connection
// before or because of the script, and rueidis has applied them to the
// cache before eval returns (it handles pushes in order, on the reading
// goroutine, before the answers that follow them):
//
//   - with WaitReplicas, WAIT. WAIT counts the writes of its own
//     connection, and blocks it: the pair goes on a connection of the
//     key's primary's blocking pool, not the shared one (which would stall
//     every other command to that node), sent there by the store's router,
//     which follows MOVED and ASK for the pair as a whole.
//     The cache's connection is then brought up to date by a PTTL of the
//     key on it: one more round trip.
//   - otherwise, with the cache on, a PTTL of the key;
//   - without the cache, nothing.
func (s *Store) eval(ctx context.Context, sc *script, key string, args ...string) (rueidis.RedisResult, error) {
	c := s.client
	keys := []string{key}
	wait := s.opts.WaitReplicas > 0
	syncCache := !s.opts.DisableCache
	sha := true
	sl := slot.Of(key)
	redirect, asking := "", false // where MOVED or ASK sent the WAIT round trip
	var r, w rueidis.RedisResult
	for attempt := 0; ; attempt++ {
		switch {
		case wait:
			var nc rueidis.Client
			var err error
			if redirect != "" {
				nc, err = s.node(redirect)
			} else {
				nc, err = s.nodeFor(ctx, sl)
			}
			if err != nil {
				return r, err
			}
			b := nc.B()
			multi := make(rueidis.Commands, 0, 3)
			if asking {
				multi = append(multi, b.Asking().Build())
			}
			multi = append(multi,
				sc.cmd(b, sha, keys, args...),
				b.Wait().Numreplicas(int64(s.opts.WaitReplicas)).Timeout(s.opts.WaitTimeout.Milliseconds()).Build())
			s.stats.roundTrips.Add(1)
			resps := nc.DoMulti(ctx, multi...)
			r, w = resps[len(resps)-2], resps[len(resps)-1]
		case syncCache:
			s.stats.roundTrips.Add(1)
			resps := c.DoMulti(ctx, sc.cmd(c.B(), sha, keys, args...), syncCmd(c.B(), key))
			r = resps[0]
		default:
			s.stats.roundTrips.Add(1)
			r = c.Do(ctx, sc.cmd(c.B(), sha, keys, args...))
		}
		if attempt >= 3 {
			break
		}
		if noScript(r) {
			sha = false
			continue
		}
		if wait && s.cluster {
			// The script did not run where it was redirected from.
			if rerr, ok := rueidis.IsRedisErr(r.Error()); ok {
				if addr, ok := rerr.IsMoved(); ok {
					s.moved(sl, addr)
					redirect, asking = addr, false
					continue
				}
				if addr, ok := rerr.IsAsk(); ok {
					redirect, asking = addr, true
					continue
				}
			} else if r.NonRedisError() != nil {
				s.forgetRoutes() // the node may be gone: ask the cluster again next time
			}
		}
		break
	}
	if wait && syncCache {
		// Bring the cache's connection up to date (see above), also when
		// the caller's ctx ends now: a later Get must see this write.
		s.stats.roundTrips.Add(1)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), syncTimeout)
		_ = c.Do(sctx, syncCmd(c.B(), key)).Error()
		cancel()
	}
	if err := r.Error(); err != nil {
		if rueidis.IsRedisNil(err) {
			return r, errNil
		}
		return r, err
	}
	if wait {
		n, err := w.AsInt64()
		if err != nil {
			return r, fmt.Errorf("applied on the primary, but WAIT failed (%w): %w", err, ErrNotReplicated)
		}
		if n < int64(s.opts.WaitReplicas) {
			return r, fmt.Errorf("applied on the primary, acknowledged by %d of %d replicas within %v: %w", n, s.opts.WaitReplicas, s.opts.WaitTimeout, ErrNotReplicated)
		}
	}
	return r, nil
}

// syncTimeout bounds the PTTL that brings the cache's connection up to
// date after a write with WAIT. If it fails, the connection is broken, and
// rueidis drops its cache with it.
const syncTimeout = time.Second

// syncCmd is the command that follows a write on the cache's connection
// (see eval): PTTL of the key, built as an arbitrary command so that it is
// not retryable. rueidis retries read-only commands until ctx ends, and a
// pipeline waits for its slowest command: a read-only PTTL would keep
// Write from reporting a dead node's error until the caller's deadline.
func syncCmd(b rueidis.Builder, key string) rueidis.Completed {
	return b.Arbitrary("PTTL").Keys(key).Build()
}

// parseVersion reads the version at the start of a stored value.
func parseVersion(val string) (storage.Version, bool) {
	if len(val) < versionLen {
		return 0, false
	}
	var v uint64
	for i := range versionLen {
		c := val[i]
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint64(c-'a'+10)
		default:
			return 0, false
		}
	}
	return storage.Version(v), v != 0
}

// formatVersion writes v as the script compares it: 16 lowercase hex
// digits.
func formatVersion(v storage.Version) string {
	const digits = "0123456789abcdef"
	var b [versionLen]byte
	for i := versionLen - 1; i >= 0; i-- {
		b[i] = digits[v&0xf]
		v >>= 4
	}
	return string(b[:])
}

// Backup is not supported: it returns an error wrapping
// storage.ErrUnsupported that says what to use instead.
func (s *Store) Backup(ctx context.Context, w io.Writer) error {
	if !s.gate.Enter() {
		return storage.ErrClosed
	}
	defer s.gate.Leave()
	return fmt.Errorf("redis: Backup: %w: back up Redis itself (RDB snapshots with BGSAVE or the save setting, AOF, replicas), or use engine.Export for a logical dump of the profiles", storage.ErrUnsupported)
}

// Restore is not supported: it returns an error wrapping
// storage.ErrUnsupported that says what to use instead.
func (s *Store) Restore(ctx context.Context, r io.Reader) error {
	if !s.gate.Enter() {
		return storage.ErrClosed
	}
	defer s.gate.Leave()
	return fmt.Errorf("redis: Restore: %w: restore Redis itself from its RDB or AOF files, or load a logical dump with the engine's import", storage.ErrUnsupported)
}

// Ping checks that every primary answers (and, on a cluster, that every
// slot is served), within ctx. For health checks.
func (s *Store) Ping(ctx context.Context) error {
	if !s.gate.Enter() {
		return storage.ErrClosed
	}
	defer s.gate.Leave()
	return s.ping(ctx)
}

func (s *Store) ping(ctx context.Context) error {
	nodes, err := s.primaries(ctx)
	if err != nil {
		return err
	}
	for _, n := range nodes {
		s.stats.roundTrips.Add(1)
		if err := n.client.Do(ctx, n.client.B().Ping().Build()).Error(); err != nil {
			return fmt.Errorf("redis: ping %s: %w", n.addr, err)
		}
	}
	return nil
}

// Stats are counters of a Store's calls since Open.
type Stats struct {
	// Gets counts Get calls that asked Redis or the cache (not those
	// refused before), CacheHits those of them answered from the
	// client-side cache without a round trip.
	Gets, CacheHits uint64
	// Writes counts Write calls sent, Conflicts those of them that
	// returned ErrConflict.
	Writes, Conflicts uint64
	// RoundTrips counts the requests the store sent to Redis and waited
	// for: a Get not answered by the cache is one, a Write one (two with
	// WaitReplicas and the cache on), a Scan one plus two per batch of
	// keys per primary, each queue call one or two (see the package
	// documentation, # Round trips). Commands pipelined together
	// count once; rueidis's own retries of reads during a failover are not
	// counted.
	RoundTrips uint64
	// Invalidations counts the invalidation messages Redis sent the
	// client-side cache (each names one or more keys, or all).
	Invalidations uint64
}

// Stats returns the store's counters. It is safe to call at any time,
// also after Close.
func (s *Store) Stats() Stats {
	return Stats{
		Gets:          s.stats.gets.Load(),
		CacheHits:     s.stats.cacheHits.Load(),
		Writes:        s.stats.writes.Load(),
		Conflicts:     s.stats.conflicts.Load(),
		RoundTrips:    s.stats.roundTrips.Load(),
		Invalidations: s.stats.invalidations.Load(),
	}
}

// IsCluster reports whether the store talks to a Redis Cluster (rather
// than one standalone server).
func (s *Store) IsCluster() bool { return s.cluster }

// Options returns the options the store was opened with, defaults filled
// in.
func (s *Store) Options() Options {
	o := s.opts
	o.Addrs = append([]string(nil), o.Addrs...)
	return o
}

// Close waits for the calls in flight (a Next waiting for a message
// returns ErrClosed at once), removes this instance's consumer from the
// queues it read when it holds no message there, and closes the client.
// Every Write that returned nil was acknowledged by Redis before; nothing
// is buffered in the store. Calls after Close return ErrClosed; a second
// Close returns nil.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.cancelStop() // ends blocked queue reads before the wait
		s.gate.Close()
		s.leaveQueues()
		s.closeNodes()
		s.client.Close()
	})
	return nil
}
