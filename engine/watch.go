package engine

import (
	"sync"

	"github.com/tailorhq/tailor/rules"
)

// ruleWatchers are the functions OnRulesChange registered.
type ruleWatchers struct {
	mu   sync.Mutex
	next int
	fns  map[int]func(*rules.Set)
}

// OnRulesChange registers fn to be called with the new rules after every
// SetRules, from the goroutine that called SetRules, outside any engine
// lock, in no particular order among functions registered. fn must not
// block for long: SetRules waits for it. The returned function
// unregisters fn (calling it twice is harmless). Safe for concurrent use;
// the OpenFeature provider (package engine/openfeature) uses it to emit
// configuration-changed events.
func (e *Engine) OnRulesChange(fn func(*rules.Set)) (cancel func()) {
	w := &e.rulesWatch
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fns == nil {
		w.fns = make(map[int]func(*rules.Set))
	}
	id := w.next
	w.next++
	w.fns[id] = fn
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.fns, id)
	}
}

// notify calls every registered function with s, outside w's lock.
func (w *ruleWatchers) notify(s *rules.Set) {
	w.mu.Lock()
	fns := make([]func(*rules.Set), 0, len(w.fns))
	for _, fn := range w.fns {
		fns = append(fns, fn)
	}
	w.mu.Unlock()
	for _, fn := range fns {
		fn(s)
	}
}
