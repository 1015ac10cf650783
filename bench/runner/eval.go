package runner

import (
	"context"
	"slices"
	"sync/atomic"
	"time"

	"github.com/tailorhq/tailor/bench/report"
	"github.com/tailorhq/tailor/bench/workload"
	"github.com/tailorhq/tailor/engine"
	"github.com/tailorhq/tailor/rules"
)

// DefaultEvalPool is how many distinct profiles eval mode cycles through
// by default: enough that profiles are not all in the CPU caches, few
// enough to hold as rule environments.
const DefaultEvalPool = 4096

// runEval measures pure evaluation: engine.Decider.Decide (every audience
// of set, then every experience allocated) over prepared rule
// environments, no store and no events.
func runEval(ctx context.Context, cfg *Config, src *source, set *rules.Set, rep *report.Report) error {
	profiles := src.profiles(cfg.EvalPool)
	envs := make([]rules.Env, len(profiles))
	visitors := make([]engine.Visitor, len(profiles))
	for k := range profiles {
		envs[k] = profiles[k].Env(src.now)
		visitors[k] = engine.Visitor{StableID: profiles[k].ID}
	}
	rep.Workload.EvalPool = len(envs)
	var ruleErrs atomic.Uint64
	err := drive(ctx, cfg, rep, len(envs), func(w *worker, i int) bool {
		var err error
		w.decisions, err = w.decider.Decide(set, &envs[i], visitors[i], w.decisions[:0])
		if err != nil {
			ruleErrs.Add(1)
		}
		return true
	})
	if err != nil {
		return err
	}
	rep.RuleErrors = ruleErrs.Load()
	var d engine.Decider
	var dst []engine.Decision
	var hits, selected int
	for k := range envs {
		dst, _ = d.Decide(set, &envs[k], visitors[k], dst[:0])
		selected += len(dst)
		for _, m := range d.Matched() {
			if m {
				hits++
			}
		}
	}
	rep.Matched = float64(hits) / float64(len(envs))
	rep.Selected = float64(selected) / float64(len(envs))
	rep.Memory = memory()
	return nil
}

// AudienceCosts measures every audience of set alone (MatchOne) over the
// rule environments of profiles at time now and returns them slowest
// first, with the share of profiles each matched. Audiences run in
// evaluation order so inAudience reads the results of the audiences it
// depends on; its cost is the rule's own, not its dependencies'. The cost
// is the fastest of five rounds (robust to a noisy machine).
func AudienceCosts(set *rules.Set, profiles []workload.Profile, now time.Time) []report.AudienceCost {
	if len(set.Audiences) == 0 || len(profiles) == 0 {
		return nil
	}
	envs := make([]rules.Env, len(profiles))
	matched := make([][]bool, len(profiles))
	for k := range profiles {
		envs[k] = profiles[k].Env(now)
		matched[k] = make([]bool, len(set.Audiences))
		_ = set.Match(&envs[k], matched[k])
	}
	// Each audience is timed in rounds of at least 400 evaluations, five
	// rounds interleaved across audiences, and keeps its fastest round: on
	// a shared machine a preemption lands in one round of one audience,
	// and the minimum discards it.
	const rounds = 5
	reps := max(1, 400/len(envs))
	best := make([]time.Duration, len(set.Audiences))
	for r := 0; r < rounds; r++ {
		for _, i := range set.Order() {
			t0 := time.Now()
			for range reps {
				for k := range envs {
					_, _ = set.MatchOne(&envs[k], i, matched[k])
				}
			}
			if el := time.Since(t0); r == 0 || el < best[i] {
				best[i] = el
			}
		}
	}
	out := make([]report.AudienceCost, len(set.Audiences))
	for i, a := range set.Audiences {
		hits := 0
		for k := range envs {
			if matched[k][i] {
				hits++
			}
		}
		out[i] = report.AudienceCost{
			ID:        a.ID,
			When:      a.When,
			MeanNs:    float64(best[i].Nanoseconds()) / float64(reps*len(envs)),
			MatchRate: float64(hits) / float64(len(envs)),
		}
	}
	slices.SortStableFunc(out, func(a, b report.AudienceCost) int {
		switch {
		case a.MeanNs > b.MeanNs:
			return -1
		case a.MeanNs < b.MeanNs:
			return 1
		}
		return 0
	})
	return out
}
