package redis

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/redis/rueidis"

	"github.com/tailorhq/tailor/storage"
	"github.com/tailorhq/tailor/storage/redis/internal/slot"
)

// router sends the round trips that must reach one node of a cluster: a
// write with WAIT (the script and WAIT on one connection of the key's
// primary, which the cluster client does not promise once it follows a
// redirect for the script alone), and Scan's and Ping's commands to every
// primary. It keeps its own copy of CLUSTER SLOTS, loaded when first
// needed, corrected by MOVED and dropped after a network error, and a
// client of its own for each node it talks to (rueidis's per-node
// clients, Client.Nodes, leave out nodes rueidis has not yet seen as
// serving slots, such as a replica just promoted). Those clients have no
// cache, so their connections carry no invalidations and give back their
// blocking connections without a cleanup round trip.
type router struct {
	mu      sync.Mutex
	owners  []string                  // slot → primary address; nil until loaded
	clients map[string]rueidis.Client // address → the store's client of that node
	closed  bool
}

// slotRange is one entry of CLUSTER SLOTS: slots lo to hi are served by
// the primary at addr.
type slotRange struct {
	lo, hi int
	addr   string
}

// clusterSlots asks any node for CLUSTER SLOTS.
func (s *Store) clusterSlots(ctx context.Context) ([]slotRange, error) {
	s.stats.roundTrips.Add(1)
	entries, err := s.client.Do(ctx, s.client.B().ClusterSlots().Build()).ToArray()
	if err != nil {
		return nil, fmt.Errorf("redis: CLUSTER SLOTS: %w", err)
	}
	out := make([]slotRange, 0, len(entries))
	for _, e := range entries {
		f, err := e.ToArray()
		if err != nil || len(f) < 3 {
			return nil, fmt.Errorf("redis: CLUSTER SLOTS: unexpected entry %v", e)
		}
		lo, err1 := f[0].AsInt64()
		hi, err2 := f[1].AsInt64()
		n, err3 := f[2].ToArray()
		if err1 != nil || err2 != nil || err3 != nil || len(n) < 2 || lo < 0 || hi < lo || hi >= slot.Count {
			return nil, fmt.Errorf("redis: CLUSTER SLOTS: unexpected entry %v", e)
		}
		host, err1 := n[0].ToString()
		port, err2 := n[1].AsInt64()
		if err1 != nil || err2 != nil || host == "" || host == "?" {
			return nil, fmt.Errorf("redis: CLUSTER SLOTS: unexpected node %v", n)
		}
		out = append(out, slotRange{int(lo), int(hi), net.JoinHostPort(host, strconv.FormatInt(port, 10))})
	}
	return out, nil
}

// nodeFor returns a client of the primary serving slot sl: the store's
// client itself outside a cluster.
func (s *Store) nodeFor(ctx context.Context, sl int) (rueidis.Client, error) {
	if !s.cluster {
		return s.client, nil
	}
	r := &s.router
	r.mu.Lock()
	loaded := r.owners != nil
	addr := ""
	if loaded {
		addr = r.owners[sl]
	}
	r.mu.Unlock()
	if !loaded {
		ranges, err := s.clusterSlots(ctx)
		if err != nil {
			return nil, err
		}
		owners := make([]string, slot.Count)
		for _, rg := range ranges {
			for i := rg.lo; i <= rg.hi; i++ {
				owners[i] = rg.addr
			}
		}
		r.mu.Lock()
		r.owners = owners
		r.mu.Unlock()
		addr = owners[sl]
	}
	if addr == "" {
		return nil, fmt.Errorf("redis: no primary serves slot %d", sl)
	}
	return s.node(addr)
}

// node returns the store's client of the node at addr, connecting to it
// the first time.
func (s *Store) node(addr string) (rueidis.Client, error) {
	r := &s.router
	r.mu.Lock()
	c, ok := r.clients[addr]
	closed := r.closed
	r.mu.Unlock()
	if ok {
		return c, nil
	}
	if closed {
		return nil, storage.ErrClosed
	}
	o := s.opts.clientOption(nil)
	o.InitAddress = []string{addr}
	o.ForceSingleClient = true
	o.DisableCache = true
	c, err := rueidis.NewClient(o)
	if err != nil {
		return nil, fmt.Errorf("redis: connect to %s: %w", addr, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if prev, ok := r.clients[addr]; ok || r.closed {
		c.Close() // another call connected first, or Close ran
		if r.closed {
			return nil, storage.ErrClosed
		}
		return prev, nil
	}
	if r.clients == nil {
		r.clients = map[string]rueidis.Client{}
	}
	r.clients[addr] = c
	return c, nil
}

// moved records that slot sl is served by addr (a MOVED redirect).
func (s *Store) moved(sl int, addr string) {
	r := &s.router
	r.mu.Lock()
	if r.owners != nil {
		r.owners[sl] = addr
	}
	r.mu.Unlock()
}

// forgetRoutes drops the copy of CLUSTER SLOTS, to be loaded again: after
// a network error the topology may have changed (a failover).
func (s *Store) forgetRoutes() {
	r := &s.router
	r.mu.Lock()
	r.owners = nil
	r.mu.Unlock()
}

// closeNodes closes the router's clients; Close calls it.
func (s *Store) closeNodes() {
	r := &s.router
	r.mu.Lock()
	r.closed = true
	clients := r.clients
	r.clients = nil
	r.mu.Unlock()
	for _, c := range clients {
		c.Close()
	}
}
