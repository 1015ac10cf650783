package engine

import (
	"context"
	"time"

	"github.com/tailorhq/tailor/rules"
)

// Assignment is a sticky variant with the bucket version it was drawn
// under and when it was made. An assignment whose bucket version is not
// the experience's current one is ignored (and dropped by Identify).
type Assignment struct {
	Variant int `json:"v"`
	Bucket  int `json:"b"`
	// At is when the assignment was made (Unix ms): the Identify that
	// drew it, or the time of the component event that locked it. Zero
	// for assignments stored before tailor kept the time.
	At int64 `json:"t,omitempty"`
}

// Visitor is whom Allocate and Decider.Decide allocate variants for.
type Visitor struct {
	// StableID is what the allocation draws hash: Profile.StableID for a
	// stored profile, or any stable key of the visitor (a user or device
	// id) when evaluating without the store.
	StableID string
	// Sticky holds the visitor's stored sticky assignments by experience
	// id; nil means none. It is only read.
	Sticky map[string]Assignment
	// UserID and ProfileID are matched against the experiences' qaUsers
	// (rules.Experience.QAVariant); empty ones match nothing.
	UserID, ProfileID string
	// Overrides, when set, force variants and audience outcomes for this
	// evaluation (QA); it is only read. See Overrides.
	Overrides *Overrides
}

// Decision says that a visitor is in one experience and with which
// variant.
type Decision struct {
	// Experience is the index of the experience in rules.Set.Experiences.
	Experience int
	// Variant is the selected variant; 0 is the baseline.
	Variant int
	// Stored reports that the variant came from a sticky assignment in
	// Visitor.Sticky rather than from a fresh draw.
	Stored bool
	// Reason is why the visitor is in: ReasonDrawn, ReasonSticky (Stored),
	// or a forced one (ReasonOverride, ReasonQAUser), which Identify
	// neither stores as sticky nor exposes.
	Reason Reason
}

// Allocate decides, for every experience of rs in order (rules order is
// priority), whether the visitor is in it and with which variant, and
// appends a Decision for each experience the visitor is in to dst, which it
// returns (pass dst[:0] to reuse a slice). matched holds the audience
// outcomes, index as rs.Audiences (as rules.Set.Match leaves them); now is
// the time schedules are checked against.
//
// The rules are step 7 of "What Identify does" in the package
// documentation: an experience that is not running or outside its
// schedule is skipped; a sticky experience with a stored
// assignment of the current bucket version keeps that variant; otherwise
// the audience must match, the namespace draw must fall in the
// experience's range, the traffic draw must be below the traffic share, and
// the distribution draw picks the variant. Draws hash the visitor's
// StableID, so a visitor gets the same variants on every call and machine.
// Before all of these, a variant forced by Visitor.Overrides, or listed
// for the visitor in the experience's qaUsers, is taken as it is.
//
// Allocate allocates nothing when dst has room for the decisions. It is
// safe for concurrent use and only reads its arguments.
func Allocate(rs *rules.Set, matched []bool, v Visitor, now time.Time, dst []Decision) []Decision {
	for i := range rs.Experiences {
		if variant, why := allocate(&rs.Experiences[i], &v, matched, now); why.In() {
			dst = append(dst, Decision{Experience: i, Variant: variant, Stored: why == ReasonSticky, Reason: why})
		}
	}
	return dst
}

// allocate decides whether visitor v is in experience x and with which
// variant, and says why. It is the one place allocation is decided:
// Identify, Decide and the explanations all go through it.
func allocate(x *rules.Experience, v *Visitor, matched []bool, now time.Time) (variant int, why Reason) {
	if v.Overrides != nil {
		if fv, ok := v.Overrides.Variants[x.ID]; ok && fv >= 0 && fv < x.Variants() {
			return fv, ReasonOverride
		}
	}
	if len(x.QAUsers) > 0 {
		if qv, ok := x.QAVariant(v.UserID, v.ProfileID); ok {
			return qv, ReasonQAUser
		}
	}
	if x.Status != rules.StatusRunning {
		return 0, ReasonNotRunning
	}
	if !x.Start.IsZero() && now.Before(x.Start) {
		return 0, ReasonNotStarted
	}
	if !x.End.IsZero() && !now.Before(x.End) {
		return 0, ReasonEnded
	}
	if x.Sticky && v.Sticky != nil {
		if as, found := v.Sticky[x.ID]; found && as.Bucket == x.BucketVersion && as.Variant >= 0 && as.Variant < x.Variants() {
			return as.Variant, ReasonSticky
		}
	}
	if x.AudienceIndex >= 0 && (x.AudienceIndex >= len(matched) || !matched[x.AudienceIndex]) {
		return 0, ReasonAudience
	}
	if ns := x.Namespace; ns != nil {
		d := draw(tagNamespace, ns.ID, 0, v.StableID)
		if d < ns.Range[0] || d >= ns.Range[1] {
			return 0, ReasonNamespace
		}
	}
	if x.Traffic < 1 && draw(tagTraffic, x.ID, x.BucketVersion, v.StableID) >= x.Traffic {
		return 0, ReasonTraffic
	}
	return pickVariant(x.Distribution, draw(tagDistribution, x.ID, x.BucketVersion, v.StableID)), ReasonDrawn
}

// Decider evaluates audiences and allocates experiences for one visitor
// at a time without a store: the evaluation Identify performs, for callers
// that keep profiles themselves or compare tailor with feature-flag SDKs.
// It keeps scratch space between calls, so a warm Decider allocates
// nothing per call.
//
// The zero value is ready to use. A Decider is not safe for concurrent
// use: use one per goroutine, or a sync.Pool of them.
type Decider struct {
	matched []bool
}

// Decide evaluates every audience of rs over env, then allocates rs's
// experiences for v as Allocate does at env.Now (the current time when
// zero), appending a Decision per experience the visitor is in to dst,
// which it returns. Matched gives the audience outcomes afterwards.
//
// An audience whose rule fails at run time counts as not matched; the
// decisions are still made and the error (naming the audiences) is
// returned with them. env is only read, and only during the call.
func (d *Decider) Decide(rs *rules.Set, env *rules.Env, v Visitor, dst []Decision) ([]Decision, error) {
	return d.DecideContext(context.Background(), rs, env, v, dst)
}

// DecideContext is Decide under ctx's deadline: once ctx is done the
// audiences not yet evaluated count as not matched and the error returned
// matches ctx.Err() (see rules.Set.MatchContext). The decisions are still
// made from the audiences evaluated, but a caller that sees ctx's error
// should not act on them.
func (d *Decider) DecideContext(ctx context.Context, rs *rules.Set, env *rules.Env, v Visitor, dst []Decision) ([]Decision, error) {
	n := len(rs.Audiences)
	if cap(d.matched) < n {
		d.matched = make([]bool, n)
	}
	d.matched = d.matched[:n]
	var forced map[int]bool
	if v.Overrides != nil && len(v.Overrides.Audiences) > 0 {
		forced = v.Overrides.forcedAudiences(rs)
	}
	err := rs.MatchForcedContext(ctx, env, d.matched, forced)
	now := env.Now
	if now.IsZero() {
		now = time.Now()
	}
	return Allocate(rs, d.matched, v, now, dst), err
}

// Matched returns the audience outcomes of the last Decide, index as the
// rule set's Audiences. The slice belongs to d and is overwritten by the
// next Decide.
func (d *Decider) Matched() []bool { return d.matched }
