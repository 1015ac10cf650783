package rules

import "errors"

// MatchForced is Match with the outcomes of some audiences forced, for QA
// overrides: forced[i] is stored in matched[i] instead of evaluating
// audience i, and the audiences that read it with inAudience see the
// forced value. Indexes are as s.Audiences; ones out of range are
// ignored. With no forced outcomes it is Match. Safe for concurrent use.
func (s *Set) MatchForced(env *Env, matched []bool, forced map[int]bool) error {
	if len(forced) == 0 || s == nil || s.prog == nil {
		return s.Match(env, matched)
	}
	if len(matched) != len(s.Audiences) {
		return ErrMatchLen
	}
	var errs []error
	for _, i := range s.prog.order {
		if v, ok := forced[i]; ok {
			matched[i] = v
			continue
		}
		if _, err := s.MatchOne(env, i, matched); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
