package engine

import (
	"context"
	"errors"
)

// Test-only access to internals, for the external tests of overload
// protection.

// SameStripe reports whether two profile ids share a lock stripe (and so
// wait for each other).
func SameStripe(a, b string) bool { return stripeOf(prefixProfile+a) == stripeOf(prefixProfile+b) }

// Waiting returns the calls holding or waiting for profile id's lock.
func (e *Engine) Waiting(id string) int32 { return e.admission.inFlight(id) }

// EventCount returns how many track events named name profile id (or the
// profile it was merged into) recorded; 0 when it does not exist.
func (e *Engine) EventCount(ctx context.Context, id, name string) (int64, error) {
	rec, err := e.find(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if h := rec.Events[name]; h != nil {
		return h.Count, nil
	}
	return 0, nil
}
