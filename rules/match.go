package rules

import (
	"context"
	"errors"
)

// ErrMatchLen is returned by Match and MatchOne when matched is not as
// long as Set.Audiences (or the audience index is out of range).
var ErrMatchLen = errors.New("rules: matched must have one entry per audience")

// ErrNotCompiled is returned by Match for a Set with audiences that was
// built by hand rather than returned by Parse or Load: its rules were never
// compiled, so nothing matches.
var ErrNotCompiled = errors.New("rules: set not compiled (use Parse or Load)")

// Match evaluates every audience over env and stores the outcome in
// matched[i] for s.Audiences[i]; len(matched) must be len(s.Audiences).
// Each audience is evaluated exactly once, after the audiences it reads
// with inAudience. A rule that fails at run time counts as not matched;
// its error, naming the audience, is returned (joined with any others)
// while the other audiences still evaluate.
//
// Match is safe for concurrent use; env is only read, and only during the
// call. A nil or empty Set matches nothing and returns nil. A warm Match
// allocates nothing when no rule fails; of the rules expr's VM runs (see
// [Set.Compiled]), those reading nested trait maps, page.query or
// location.coordinates may allocate a little.
func (s *Set) Match(env *Env, matched []bool) error {
	return s.MatchContext(context.Background(), env, matched)
}

// ctxCheckSteps is how much worst-case cost (see [MaxCost]) MatchContext
// lets run between two looks at its context: about 0.1 ms, so a Set of
// cheap rules looks once, and a dear rule is always followed by a look.
const ctxCheckSteps = 10_000

// MatchContext is [Set.Match] under a deadline: it checks ctx before the
// first audience and then whenever the audiences evaluated since the last
// check may have cost ctxCheckSteps (about 0.1 ms) or more, and once ctx is
// done it leaves the audiences not yet evaluated unmatched and returns
// ctx.Err() (joined with the rule errors met so far, so errors.Is finds
// it). One audience's evaluation is not interrupted; its cost is bounded by
// [MaxCost].
func (s *Set) MatchContext(ctx context.Context, env *Env, matched []bool) error {
	return s.matchForced(ctx, env, matched, nil)
}

// matchForced is MatchContext where the audiences in forced take the
// outcome forced gives them instead of being evaluated (the audiences that
// read them with inAudience see the forced outcome).
func (s *Set) matchForced(ctx context.Context, env *Env, matched []bool, forced map[int]bool) error {
	if s == nil || s.prog == nil {
		switch {
		case s == nil || len(s.Audiences) == 0:
			return nil
		case len(s.Audiences) != len(matched):
			return ErrMatchLen
		}
		clear(matched)
		return ErrNotCompiled
	}
	if len(matched) != len(s.Audiences) {
		return ErrMatchLen
	}
	pr := s.prog
	r := pr.get(env, matched)
	var errs []error
	since := float64(ctxCheckSteps) // look before the first audience
	for k, i := range pr.order {
		if since >= ctxCheckSteps {
			if err := ctx.Err(); err != nil {
				for _, j := range pr.order[k:] {
					matched[j] = false
				}
				errs = append(errs, err)
				break
			}
			since = 0
		}
		if v, ok := forced[i]; ok {
			matched[i] = v
			continue
		}
		since += pr.costs[i]
		ok, err := r.eval(pr, i)
		matched[i] = ok
		if err != nil {
			errs = append(errs, s.runErr(i, err))
		}
	}
	pr.put(r)
	return errors.Join(errs...)
}

// MatchOne evaluates audience i alone over env, stores the outcome in
// matched[i] and returns it. The audiences it reads with inAudience must
// already be in matched: evaluate in the order of [Set.Order]. It exists to
// measure the cost of single rules (a "slowest audiences" table); Match is
// the way to evaluate a whole Set. Safe for concurrent use.
func (s *Set) MatchOne(env *Env, i int, matched []bool) (bool, error) {
	if s == nil || s.prog == nil || i < 0 || i >= len(s.Audiences) || len(matched) != len(s.Audiences) {
		return false, ErrMatchLen
	}
	pr := s.prog
	r := pr.get(env, matched)
	ok, err := r.eval(pr, i)
	matched[i] = ok
	pr.put(r)
	if err != nil {
		return false, s.runErr(i, err)
	}
	return ok, nil
}

// Compiled reports whether audience i runs on the fast path (Go closures
// built from its checked expression) rather than expr's VM. A compiled
// audience may still hand a single evaluation to the VM when it meets a
// value its closures do not model (say a trait holding a list where a
// number was compared); the result is the same either way.
func (s *Set) Compiled(i int) bool {
	return s != nil && s.prog != nil && i >= 0 && i < len(s.prog.fast) && s.prog.fast[i] != nil
}

// Order returns the audience indexes in evaluation order: every audience
// comes after the audiences it reads with inAudience. The returned slice
// is shared; callers must not modify it.
func (s *Set) Order() []int {
	if s == nil || s.prog == nil {
		return nil
	}
	return s.prog.order
}

// AudienceIndex returns the index in s.Audiences of the audience with the
// given id, or -1.
func (s *Set) AudienceIndex(id string) int {
	if s == nil {
		return -1
	}
	if s.prog != nil {
		if i, ok := s.prog.ids[id]; ok {
			return i
		}
		return -1
	}
	for i := range s.Audiences {
		if s.Audiences[i].ID == id {
			return i
		}
	}
	return -1
}

// withoutFastPath returns a Set sharing s's rules whose audiences all run
// on expr's VM; tests and benchmarks compare the two paths with it.
func (s *Set) withoutFastPath() *Set {
	pr := &program{progs: s.prog.progs, order: s.prog.order, costs: s.prog.costs, ids: s.prog.ids, fast: make([]boolFn, len(s.prog.progs)), noFast: true}
	pr.pool.New = func() any { return pr.newRunner() }
	return &Set{Audiences: s.Audiences, Experiences: s.Experiences, prog: pr}
}

func (s *Set) runErr(i int, err error) error {
	return &audienceError{i: i, id: s.Audiences[i].ID, err: err}
}

// get takes a runner from the pool and loads one call's env into it. The
// env is copied (into the VM's box, which the fast path reads too) rather
// than referenced, so the caller's Env does not escape to the heap.
func (pr *program) get(env *Env, matched []bool) *runner {
	r := pr.pool.Get().(*runner)
	r.env.Env = *env
	r.env.matched = matched
	r.fr.env, r.fr.matched, r.fr.nowSet = &r.env.Env, matched, false
	if r.fr.gen++; r.fr.gen == 0 { // wrapped: forget every memo
		clear(r.fr.memo)
		r.fr.gen = 1
	}
	return r
}

// put clears the runner's references to the caller's data and pools it.
func (pr *program) put(r *runner) {
	r.fr.env, r.fr.matched = nil, nil
	r.env.Env = Env{}
	r.env.matched = nil
	pr.pool.Put(r)
}

// eval evaluates audience i: on the fast path when it has one and the
// values at hand are ones it models, on expr's VM otherwise.
func (r *runner) eval(pr *program, i int) (bool, error) {
	if f := pr.fast[i]; f != nil {
		if v, ok := f(&r.fr); ok {
			return v, nil
		}
	}
	out, err := r.vm.Run(pr.progs[i], r.box)
	if err != nil {
		return false, err
	}
	b, _ := out.(bool)
	return b, nil
}
