package redis

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/rueidis"

	"github.com/tailorhq/tailor/storage"
	"github.com/tailorhq/tailor/storage/redis/internal/slot"
)

// scanCount is SCAN's COUNT: how many slots of a node's keyspace one SCAN
// call visits, so also about how many keys one pipelined batch of GETs
// reads.
const scanCount = 512

// primary is a node that serves slots, with a client bound to it.
type primary struct {
	addr   string
	client rueidis.Client
}

// primaries returns the nodes to scan: the server, or every primary of the
// cluster (CLUSTER SLOTS, asked of any node), after checking that they
// serve every slot between them.
func (s *Store) primaries(ctx context.Context) ([]primary, error) {
	if !s.cluster {
		for addr, c := range s.client.Nodes() {
			return []primary{{addr, c}}, nil
		}
		return nil, fmt.Errorf("redis: no server")
	}
	ranges, err := s.clusterSlots(ctx)
	if err != nil {
		return nil, err
	}
	var out []primary
	seen := map[string]bool{}
	served := 0
	for _, r := range ranges {
		served += r.hi - r.lo + 1
		if seen[r.addr] {
			continue
		}
		seen[r.addr] = true
		c, err := s.node(r.addr)
		if err != nil {
			return nil, err
		}
		out = append(out, primary{r.addr, c})
	}
	if served != slot.Count {
		return nil, fmt.Errorf("redis: the cluster serves %d of %d slots", served, slot.Count)
	}
	return out, nil
}

// Scan calls fn for every live key starting with prefix, with its value
// and version, in no particular order. It runs SCAN with MATCH on every
// primary and reads the values of each batch of keys with one pipelined
// round trip of GETs (not through the client-side cache, which a scan
// would flush). A key SCAN reports twice (it may, when a node's hash table
// is resized) is visited once: Scan remembers the keys it visited, so it
// holds them all in memory until it returns.
//
// Scan is not a snapshot: a key written during the scan may be seen with
// its old or its new value, or (if deleted or created meanwhile) be
// visited or not; a key that moves between nodes during the scan
// (resharding) may be missed. key and value are valid only during the
// call to fn; fn may call other methods of the store, except Close.
func (s *Store) Scan(ctx context.Context, prefix []byte, fn func(key, value []byte, v storage.Version) error) error {
	if !s.gate.Enter() {
		return storage.ErrClosed
	}
	defer s.gate.Leave()
	if err := ctx.Err(); err != nil {
		return err
	}
	nodes, err := s.primaries(ctx)
	if err != nil {
		return err
	}
	// The store's keys are KeyPrefix + "{" + key + "}"; queue keys
	// (KeyPrefix + "~q{...") never match.
	pattern := globEscape(s.opts.KeyPrefix+"{"+string(prefix)) + "*}"
	start := len(s.opts.KeyPrefix) + 1
	seen := map[string]struct{}{}
	var keyBuf, valBuf []byte
	for _, n := range nodes {
		cursor := uint64(0)
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			s.stats.roundTrips.Add(1)
			e, err := n.client.Do(ctx, n.client.B().Scan().Cursor(cursor).Match(pattern).Count(scanCount).Build()).AsScanEntry()
			if err != nil {
				return fmt.Errorf("redis: scan %s: %w", n.addr, err)
			}
			keys := e.Elements[:0]
			for _, k := range e.Elements {
				if _, dup := seen[k]; !dup && len(k) > start {
					seen[k] = struct{}{}
					keys = append(keys, k)
				}
			}
			if len(keys) > 0 {
				gets := make(rueidis.Commands, len(keys))
				for i, k := range keys {
					gets[i] = s.client.B().Get().Key(k).Build()
				}
				s.stats.roundTrips.Add(1)
				for i, r := range s.client.DoMulti(ctx, gets...) {
					val, err := r.ToString()
					if rueidis.IsRedisNil(err) {
						continue // deleted or expired since SCAN saw it
					}
					if err != nil {
						return fmt.Errorf("redis: scan: get %q: %w", keys[i], err)
					}
					v, ok := parseVersion(val)
					if !ok {
						return fmt.Errorf("redis: scan: the value of %q does not start with a version", keys[i])
					}
					keyBuf = append(keyBuf[:0], keys[i][start:len(keys[i])-1]...)
					valBuf = append(valBuf[:0], val[versionLen:]...)
					if err := fn(keyBuf, valBuf, v); err != nil {
						return err
					}
				}
			}
			if cursor = e.Cursor; cursor == 0 {
				break
			}
		}
	}
	return nil
}

// globEscape escapes the characters special in Redis's glob patterns
// (* ? [ ] \), so that s matches only itself.
func globEscape(s string) string {
	if !strings.ContainsAny(s, `*?[]\`) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
