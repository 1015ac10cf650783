// Package workload generates the profiles and rules that the tailor bench
// command measures, deterministically from a seed, and reads users' own
// profile samples (NDJSON).
//
// A generated workload has N visitors with realistic traits (plan, company
// size, age, e-mail domain, booleans, numbers), weighted countries and
// regions, user agents, campaigns and up to 90 days of page views and track
// events; A audiences drawn from the rule shapes people write (trait
// equality, in lists, numeric ranges, startsWith/endsWith/contains, event
// counts in windows, hasEvent, viewedPage, location, session, device,
// inAudience); and E experiences with mixed traffic, distributions, sticky
// assignment and namespaces. Visitor i depends only on the seed and i, so
// a million visitors never need to be held in memory at once.
package workload

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/tailorhq/tailor/rules"
)

// Kinds of generated workload.
const (
	// KindMixed is A audiences of mixed shapes and E experiences.
	KindMixed = "mixed"
	// KindPeer is the scenario flag SDKs are compared on (issue 6,
	// target 1): one audience `location.countryCode in ["US","CA"] &&
	// traits.plan == "pro"` that every visitor matches, and one 50/50
	// experience on it.
	KindPeer = "peer"
)

// Config selects a workload. The zero value of a field selects its default.
type Config struct {
	// Kind is KindMixed (default) or KindPeer.
	Kind string
	// Seed makes everything deterministic; 0 is a valid seed.
	Seed uint64
	// Profiles is the number of visitors (N). Default 1,000,000.
	Profiles int
	// Audiences (A) and Experiences (E) of a mixed workload. Defaults 100
	// and 20. Experiences may be 0 only through NoExperiences.
	Audiences   int
	Experiences int
	// NoExperiences generates a rules file without experiences.
	NoExperiences bool
	// Now is the time histories lead up to. Default: the current time
	// truncated to the hour (so runs within one hour agree).
	Now time.Time
}

// ErrConfig is matched (errors.Is) by every invalid Config error.
var ErrConfig = errors.New("workload: invalid config")

// Generator produces one workload. It is immutable and safe for concurrent
// use.
type Generator struct {
	cfg Config
}

// New validates cfg, fills defaults and returns its Generator.
func New(cfg Config) (*Generator, error) {
	switch cfg.Kind {
	case "":
		cfg.Kind = KindMixed
	case KindMixed, KindPeer:
	default:
		return nil, fmt.Errorf("%w: Kind %q is not %q or %q", ErrConfig, cfg.Kind, KindMixed, KindPeer)
	}
	if cfg.Profiles < 0 {
		return nil, fmt.Errorf("%w: Profiles %d is negative", ErrConfig, cfg.Profiles)
	}
	if cfg.Audiences < 0 {
		return nil, fmt.Errorf("%w: Audiences %d is negative", ErrConfig, cfg.Audiences)
	}
	if cfg.Experiences < 0 {
		return nil, fmt.Errorf("%w: Experiences %d is negative", ErrConfig, cfg.Experiences)
	}
	if cfg.Profiles == 0 {
		cfg.Profiles = 1_000_000
	}
	if cfg.Audiences == 0 {
		cfg.Audiences = 100
	}
	if cfg.Experiences == 0 && !cfg.NoExperiences {
		cfg.Experiences = 20
	}
	if cfg.NoExperiences {
		cfg.Experiences = 0
	}
	if cfg.Now.IsZero() {
		cfg.Now = time.Now().UTC().Truncate(time.Hour)
	}
	return &Generator{cfg: cfg}, nil
}

// Config returns the configuration with defaults filled in.
func (g *Generator) Config() Config { return g.cfg }

// Len returns the number of visitors.
func (g *Generator) Len() int { return g.cfg.Profiles }

// ID returns the profile id of visitor i: 32 hex digits derived from the
// seed and i, so ids arrive in the store in random key order as real ids do.
func (g *Generator) ID(i int) string {
	a := splitmix(g.cfg.Seed ^ uint64(i)*0x9e3779b97f4a7c15)
	b := splitmix(a ^ uint64(i))
	return fmt.Sprintf("%016x%016x", a, b)
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Profile returns visitor i (0 <= i < Len()). The same seed and i always
// give the same Profile. The result belongs to the caller.
func (g *Generator) Profile(i int) Profile { return g.profile(i) }

// Rules returns the generated rules file (YAML) and its parsed Set. The
// YAML is meant to be read: every audience has a name saying what it
// selects.
func (g *Generator) Rules() ([]byte, *rules.Set, error) {
	y := g.RulesYAML()
	s, err := rules.Parse("generated-rules.yaml", y)
	if err != nil {
		return y, nil, fmt.Errorf("workload: generated rules do not load: %w", err)
	}
	return y, s, nil
}

// Zipf draws visitor indexes in [0, n) with a Zipf distribution of exponent
// s > 1 (rank k drawn with probability proportional to 1/(k+1)^s), the hot
// ranks scattered over the index space so the hot profiles are not the
// first ones written. Not safe for concurrent use: one per goroutine.
type Zipf struct {
	z    *rand.Zipf
	n    uint64
	a, b uint64
}

// NewZipf returns a Zipf sampler over [0, n) with exponent s (> 1) using r.
func NewZipf(r *rand.Rand, s float64, n int) (*Zipf, error) {
	if s <= 1 {
		return nil, fmt.Errorf("%w: zipf exponent %v must be > 1", ErrConfig, s)
	}
	if n <= 0 {
		return nil, fmt.Errorf("%w: zipf over %d profiles", ErrConfig, n)
	}
	z := &Zipf{z: rand.NewZipf(r, s, 1, uint64(n-1)), n: uint64(n), a: 2654435761, b: 12345}
	for gcd(z.a%z.n, z.n) != 1 {
		z.a += 2
	}
	return z, nil
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// Next returns the next visitor index.
func (z *Zipf) Next() int {
	k := z.z.Uint64()
	return int((k*(z.a%z.n) + z.b) % z.n)
}
