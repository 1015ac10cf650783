package engine

// Test-only access to internals, for the external tests of overload
// protection.

// SameStripe reports whether two profile ids share a lock stripe (and so
// wait for each other).
func SameStripe(a, b string) bool { return stripeOf(prefixProfile+a) == stripeOf(prefixProfile+b) }

// Waiting returns the calls holding or waiting for profile id's lock.
func (e *Engine) Waiting(id string) int32 { return e.admission.inFlight(id) }
