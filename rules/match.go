package rules

import (
	"errors"
	"fmt"
)

// ErrMatchLen is returned by Match when matched is not as long as
// Set.Audiences.
var ErrMatchLen = errors.New("rules: matched must have one entry per audience")

// Match evaluates every audience over env and stores the outcome in
// matched[i] for s.Audiences[i]; len(matched) must be len(s.Audiences).
// Each audience is evaluated exactly once, after the audiences it reads
// with inAudience. A rule that fails at run time counts as not matched;
// its error, naming the audience, is returned (joined with any others)
// while the other audiences still evaluate.
//
// Match is safe for concurrent use; env is only read, and only during the
// call. A nil or empty Set matches nothing and returns nil. On the warm
// path Match allocates nothing.
func (s *Set) Match(env *Env, matched []bool) error {
	if s == nil || s.prog == nil {
		if s != nil && len(s.Audiences) != len(matched) {
			return ErrMatchLen
		}
		return nil
	}
	if len(matched) != len(s.Audiences) {
		return ErrMatchLen
	}
	pr := s.prog
	r := pr.pool.Get().(*runner)
	r.env.Env = *env
	r.env.matched = matched
	var errs []error
	for _, i := range pr.order {
		ok, err := r.run(pr, i)
		matched[i] = ok
		if err != nil {
			errs = append(errs, s.runErr(i, err))
		}
	}
	r.env.Env = Env{}
	r.env.matched = nil
	pr.pool.Put(r)
	return errors.Join(errs...)
}

// MatchOne evaluates audience i alone over env and stores the outcome in
// matched[i]. The audiences it reads with inAudience must already be in
// matched (evaluate in Order). It is meant for measuring the cost of single
// rules; Match is the way to evaluate a whole Set. Safe for concurrent use.
func (s *Set) MatchOne(env *Env, i int, matched []bool) (bool, error) {
	if s == nil || s.prog == nil || i < 0 || i >= len(s.Audiences) || len(matched) != len(s.Audiences) {
		return false, ErrMatchLen
	}
	pr := s.prog
	r := pr.pool.Get().(*runner)
	r.env.Env = *env
	r.env.matched = matched
	ok, err := r.run(pr, i)
	matched[i] = ok
	r.env.Env = Env{}
	r.env.matched = nil
	pr.pool.Put(r)
	if err != nil {
		return false, s.runErr(i, err)
	}
	return ok, nil
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

func (s *Set) runErr(i int, err error) error {
	return fmt.Errorf("rules: audience %q: %w", s.Audiences[i].ID, err)
}

// run evaluates audience i on the runner's env.
func (r *runner) run(pr *program, i int) (bool, error) {
	out, err := r.vm.Run(pr.progs[i], r.box)
	if err != nil {
		return false, err
	}
	b, _ := out.(bool)
	return b, nil
}
