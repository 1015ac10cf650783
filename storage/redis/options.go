package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// Defaults of Options.
const (
	// DefaultKeyPrefix starts every Redis key the store writes.
	DefaultKeyPrefix = "tailor:"
	// DefaultClientName is the connections' name (CLIENT SETNAME), as
	// CLIENT LIST shows it.
	DefaultClientName = "tailor"
	// DefaultWaitTimeout bounds the wait for replica acknowledgements
	// when WaitReplicas is set.
	DefaultWaitTimeout = time.Second
	// DefaultClaimAfter is how long a queue message handed out by Next may
	// stay unacknowledged before Next hands it out again.
	DefaultClaimAfter = 30 * time.Second
	// DefaultCacheSize is the client-side cache of each connection to a
	// Redis node, in bytes (rueidis: 128 MiB). A store holds one such
	// connection per primary.
	DefaultCacheSize = 64 << 20
	// DefaultCacheTTL is the longest a value stays in the client-side cache
	// without being read from Redis again. Invalidations from Redis evict
	// changed keys at once; the TTL bounds staleness only when an
	// invalidation is lost (see the package documentation, # Caching).
	DefaultCacheTTL = time.Minute
	// DefaultDialTimeout bounds connecting to one Redis node.
	DefaultDialTimeout = 5 * time.Second
)

// maxKeySize bounds store keys as Badger does (65,000 bytes), so that keys
// move between the two stores.
const maxKeySize = 65000

// Options configures Open. Only Addrs is required: the zero value of every
// other field selects the documented default.
type Options struct {
	// Addrs are the Redis servers, as host:port: one standalone server, or
	// one or more seed nodes of a Redis Cluster (the client discovers the
	// others). With one address the store asks the server whether it runs
	// in cluster mode; with several it expects a cluster. Required.
	Addrs []string
	// Username and Password authenticate every connection (AUTH; Username
	// empty for Redis's default user).
	Username string
	Password string
	// TLS, when set, connects over TLS with this configuration (cloned by
	// Open). Nil connects in plain TCP. The nodes of a cluster are reached
	// at the endpoints they announce (CLUSTER SLOTS: their IP address
	// unless cluster-preferred-endpoint-type says otherwise), so set
	// ServerName or use certificates valid for those.
	TLS *tls.Config
	// ClientName names the connections (CLIENT SETNAME) and starts the
	// store's queue consumer name. Zero selects DefaultClientName; no
	// spaces or control characters.
	ClientName string
	// KeyPrefix starts every Redis key the store writes, so that several
	// stores (or other applications) share one Redis: store key k is kept
	// at KeyPrefix + "{" + k + "}" and queue q at KeyPrefix + "~q{" + q + "}".
	// Zero selects DefaultKeyPrefix. It must not contain '{' or '}', which
	// would change the keys' hash slots.
	KeyPrefix string

	// WaitReplicas, when positive, makes every Write (and Enqueue and Ack)
	// wait, with WAIT, until that many replicas of the key's primary have
	// acknowledged the write before it returns. A write that fewer
	// replicas acknowledge within WaitTimeout returns an error wrapping
	// ErrNotReplicated: it was applied on the primary, and may or may not
	// survive a failover. See the package documentation, # Durability, for
	// what this does and does not guarantee. Zero waits for none.
	WaitReplicas int
	// WaitTimeout bounds the wait for replicas (WAIT's timeout). Zero
	// selects DefaultWaitTimeout when WaitReplicas is set.
	WaitTimeout time.Duration

	// ClaimAfter is how long a queue message handed out by Next may stay
	// unacknowledged before Next (of any store instance) hands it out
	// again, taking its consumer to have crashed. Zero selects
	// DefaultClaimAfter; at least a millisecond. Every instance sharing a
	// queue should use the same value.
	ClaimAfter time.Duration

	// CacheSize is the size in bytes of the client-side cache of each
	// connection to a Redis node. Zero selects DefaultCacheSize.
	CacheSize int
	// CacheTTL is the longest a value is served from the client-side cache
	// without reading it from Redis again. Zero selects DefaultCacheTTL;
	// at least a millisecond.
	CacheTTL time.Duration
	// DisableCache turns the client-side cache off: every Get is a round
	// trip to Redis. For servers without RESP3 client tracking (Redis
	// before 6, some managed services).
	DisableCache bool

	// DialTimeout bounds connecting to one Redis node. Zero selects
	// DefaultDialTimeout.
	DialTimeout time.Duration

	// dial, set by tests only, replaces rueidis's dialer.
	dial func(ctx context.Context, addr string, d *net.Dialer, c *tls.Config) (net.Conn, error)
}

// withDefaults returns a copy of o (sharing nothing with it) with defaults
// filled in, or an error naming the field at fault.
func (o Options) withDefaults() (Options, error) {
	o.Addrs = slices.Clone(o.Addrs)
	if o.TLS != nil {
		o.TLS = o.TLS.Clone()
	}
	if len(o.Addrs) == 0 {
		return o, errors.New("redis: Options.Addrs is empty")
	}
	for i, a := range o.Addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil || host == "" || port == "" {
			return o, fmt.Errorf("redis: Options.Addrs[%d] %q is not host:port", i, a)
		}
	}
	if o.ClientName == "" {
		o.ClientName = DefaultClientName
	}
	if i := strings.IndexFunc(o.ClientName, func(r rune) bool { return r <= ' ' || r == 0x7f }); i >= 0 {
		return o, fmt.Errorf("redis: Options.ClientName %q has a space or control character", o.ClientName)
	}
	if o.KeyPrefix == "" {
		o.KeyPrefix = DefaultKeyPrefix
	}
	if strings.ContainsAny(o.KeyPrefix, "{}") {
		return o, fmt.Errorf("redis: Options.KeyPrefix %q contains '{' or '}'", o.KeyPrefix)
	}
	if o.WaitReplicas > 0 && o.WaitTimeout == 0 {
		o.WaitTimeout = DefaultWaitTimeout
	}
	if o.ClaimAfter == 0 {
		o.ClaimAfter = DefaultClaimAfter
	}
	if o.CacheSize == 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.CacheTTL == 0 {
		o.CacheTTL = DefaultCacheTTL
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	switch {
	case o.WaitReplicas < 0:
		return o, fmt.Errorf("redis: Options.WaitReplicas %d is negative", o.WaitReplicas)
	case o.WaitTimeout < 0:
		return o, fmt.Errorf("redis: Options.WaitTimeout %v is negative", o.WaitTimeout)
	case o.WaitReplicas > 0 && o.WaitTimeout < time.Millisecond:
		// WAIT counts in milliseconds, and 0 would wait for ever.
		return o, fmt.Errorf("redis: Options.WaitTimeout %v is below a millisecond", o.WaitTimeout)
	case o.ClaimAfter < time.Millisecond:
		return o, fmt.Errorf("redis: Options.ClaimAfter %v is below a millisecond", o.ClaimAfter)
	case o.ClaimAfter > maxClaimAfter:
		return o, fmt.Errorf("redis: Options.ClaimAfter %v is above %v", o.ClaimAfter, maxClaimAfter)
	case o.CacheSize < 0:
		return o, fmt.Errorf("redis: Options.CacheSize %d is negative", o.CacheSize)
	case o.CacheTTL < time.Millisecond:
		return o, fmt.Errorf("redis: Options.CacheTTL %v is below a millisecond", o.CacheTTL)
	case o.DialTimeout < 0:
		return o, fmt.Errorf("redis: Options.DialTimeout %v is negative", o.DialTimeout)
	}
	return o, nil
}

// clientOption translates o (with defaults filled in) to rueidis's options.
// onInvalidations is called with the keys of every invalidation Redis
// sends (nil for "everything").
func (o *Options) clientOption(onInvalidations func([]rueidis.RedisMessage)) rueidis.ClientOption {
	return rueidis.ClientOption{
		InitAddress:       o.Addrs,
		Username:          o.Username,
		Password:          o.Password,
		TLSConfig:         o.TLS,
		ClientName:        o.ClientName,
		Dialer:            net.Dialer{Timeout: o.DialTimeout},
		DialCtxFn:         o.dial,
		DisableCache:      o.DisableCache,
		CacheSizeEachConn: o.CacheSize,
		// One pipelined connection per node: a Get reads the cache of the
		// connection its Write went through, which is what makes a
		// store's own writes visible to its next Get (see # Caching).
		PipelineMultiplex: -1,
		// A callback makes rueidis read every connection from the start
		// in the background, so that an invalidation is applied when it
		// arrives, not when the connection is next used for a command.
		OnInvalidations: onInvalidations,
	}
}
