package rules

import "context"

// MatchForced is Match with the outcomes of some audiences forced, for QA
// overrides: forced[i] is stored in matched[i] instead of evaluating
// audience i, and the audiences that read it with inAudience see the
// forced value. Indexes are as s.Audiences; ones out of range are
// ignored. With no forced outcomes it is Match. Safe for concurrent use.
func (s *Set) MatchForced(env *Env, matched []bool, forced map[int]bool) error {
	return s.MatchForcedContext(context.Background(), env, matched, forced)
}

// MatchForcedContext is MatchForced under a deadline, as MatchContext.
func (s *Set) MatchForcedContext(ctx context.Context, env *Env, matched []bool, forced map[int]bool) error {
	return s.matchForced(ctx, env, matched, forced)
}
