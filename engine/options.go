package engine

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/storage"
)

// DefaultSessionTimeout is the inactivity after which a new session starts.
const DefaultSessionTimeout = 30 * time.Minute

// DefaultSweepInterval is the default of Options.SweepInterval.
const DefaultSweepInterval = time.Minute

// Locator resolves an IP address to a location (GeoIP). Implementations must
// be safe for concurrent use. An address it knows nothing about yields the
// zero Location and a nil error; locale selects the language of names
// ("en" when empty or unknown).
type Locator interface {
	Locate(ctx context.Context, ip netip.Addr, locale string) (Location, error)
}

// DeviceDetector derives a Device from a user-agent string. Implementations
// must be safe for concurrent use and should be cheap for repeated agents.
type DeviceDetector interface {
	Detect(userAgent string) Device
}

// Options configures an Engine. The zero value works: nil *Options passed
// to Open means all defaults. Open copies the Options; later changes by the
// caller have no effect.
type Options struct {
	// Rules are the audiences and experiences to serve. Nil means none;
	// replace them later with Engine.SetRules.
	Rules *rules.Set

	// Store is where profiles live. Nil means Badger in the directory
	// given to Open (or in memory when InMemory is set). The engine owns
	// the store: Close closes it.
	Store storage.Store
	// InMemory keeps the default Badger store in memory; dir is ignored.
	InMemory bool
	// SyncWrites makes every Identify durable (fsynced) before it returns.
	SyncWrites bool
	// MinFreeBytes is the free space on dir's filesystem below which the
	// default store refuses writes with ErrDiskFull (reads keep working):
	// Badger writes through memory-mapped files, and a full disk would
	// otherwise kill the process with SIGBUS. Zero means
	// DefaultMinFreeBytes; negative disables the check. Ignored in memory
	// and with Options.Store.
	MinFreeBytes int64

	// SessionTimeout is the inactivity after which a new session starts;
	// 0 means DefaultSessionTimeout.
	SessionTimeout time.Duration
	// ProfileTTL, when positive, expires a profile that has not been
	// written for that long.
	ProfileTTL time.Duration

	// CacheBytes is the memory, in bytes, for the encoded profiles the
	// engine keeps, so that a busy profile is not read from the store on
	// every call: 0 means DefaultCacheBytes, a negative value turns the
	// cache off. A cached profile is written on condition of the version
	// it was read at, so a change made meanwhile by another process
	// sharing the store is never overwritten: the call reads the profile
	// again.
	CacheBytes int64

	// SweepInterval is how often the engine looks for identity
	// operations (bind, merge, delete) that a crashed caller left
	// unfinished, and finishes those older than the interval (see
	// Engine.Sweep): 0 means DefaultSweepInterval, negative turns the
	// background sweep off.
	SweepInterval time.Duration

	// Locator resolves request IPs to locations when a request enables the
	// "location" or "ip-enrichment" feature. Nil disables IP lookups.
	Locator Locator
	// Devices derives the device from context.userAgent. Nil means the
	// built-in detector (package engine/device).
	Devices DeviceDetector

	// Logger receives the engine's logs. Nil discards them.
	Logger *slog.Logger
	// MeterProvider receives the engine's metrics (tailor.*, listed in the
	// package documentation under Telemetry), and is passed on to the
	// default store for its own. Nil means no metrics, at no cost; the
	// global provider of package otel is never used.
	MeterProvider metric.MeterProvider
	// TracerProvider receives a span per Identify call, a child of the
	// span in the call's context, with child spans for its load, evaluate
	// and commit steps. Nil means no traces, at no cost; the global
	// provider of package otel is never used.
	TracerProvider trace.TracerProvider
	// OnExposure, when set, is called (outside any lock, from the goroutine
	// that called Identify) for each newly exposed variant.
	OnExposure func(Exposure)
	// ImportQueueSize is how many Import batches may wait to be applied
	// before Import returns ErrQueueFull; 0 means DefaultImportQueueSize.
	ImportQueueSize int

	// Now is the clock; nil means time.Now. Tests use a fake clock.
	Now func() time.Time

	// MaxWaiting, when positive, bounds the Identify calls on one profile
	// id that may wait while another call on it runs: one more returns
	// ErrOverload at once instead of queueing, so a hot profile cannot
	// pile up goroutines and connections. It counts per id, so profiles
	// that merely share the hot one's lock stripe are never refused. Zero
	// means no bound.
	MaxWaiting int
	// ProfileRate, when positive, limits the Identify calls on one profile
	// id to that many per second, allowing bursts of ProfileBurst calls;
	// calls beyond return ErrOverload. Zero means no limit.
	ProfileRate float64
	// ProfileBurst is the burst ProfileRate allows; zero means
	// ceil(ProfileRate).
	ProfileBurst int

	// IdentitySecret, when set, turns on identity verification for
	// untrusted requests (Request.Untrusted, set by the HTTP API): an
	// identify event may bind its userId to a profile, or reach the
	// profile of that user, only with traits.userHash =
	// hex(HMAC-SHA256(IdentitySecret, userId)); otherwise Identify returns
	// ErrIdentityUnverified and writes nothing. Calls from Go code that do
	// not set Untrusted are trusted. Open copies the slice.
	IdentitySecret []byte
}
