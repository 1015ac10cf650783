// Package gate admits a store's calls until the store closes, and lets
// Close wait for the calls it admitted, so that no call ever reaches a
// closed client or database.
package gate

import "sync"

// Gate is open until Close. The zero Gate is open. It is safe for
// concurrent use.
type Gate struct {
	mu       sync.RWMutex
	closed   bool
	inflight sync.WaitGroup
}

// Enter admits a call, or reports false once the gate is closed. Every
// successful Enter is paired with Leave.
func (g *Gate) Enter() bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.closed {
		return false
	}
	g.inflight.Add(1)
	return true
}

// Leave ends a call Enter admitted.
func (g *Gate) Leave() { g.inflight.Done() }

// Close stops admitting calls and waits for those admitted to leave.
func (g *Gate) Close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.inflight.Wait()
}
