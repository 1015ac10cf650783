package engine

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/tailorhq/tailor/rules"
)

// Explanation says why a profile gets what it gets, as Identify would
// decide it now with the rules in force: every audience, matched or not,
// with the first clause that failed for each unmatched one; every
// experience, in or out, with the reason and the values behind it; and
// the sticky assignments the profile holds. Explain returns one; it
// belongs to the caller.
type Explanation struct {
	ProfileID string    `json:"profileId"` // the profile explained (after aliases)
	StableID  string    `json:"stableId"`  // what the allocation draws hash
	UserID    string    `json:"userId,omitempty"`
	Time      time.Time `json:"time"` // the evaluation time
	// Audiences has one entry per audience, in rules order.
	Audiences []AudienceExplanation `json:"audiences"`
	// Experiences has one entry per experience, in rules order
	// (priority).
	Experiences []ExperienceExplanation `json:"experiences"`
	// Assignments are the profile's stored sticky assignments, by
	// experience id: the visitor's assignment history, with when each was
	// made and whether it still applies.
	Assignments []StoredAssignment `json:"assignments"`
}

// AudienceExplanation says whether the profile is in one audience, and
// for an audience it is not in, the first clause of its rule that failed
// with the values that clause read (see rules.Clause).
type AudienceExplanation struct {
	ID      string `json:"id"`
	Matched bool   `json:"matched"`
	// Forced reports that Overrides set the outcome.
	Forced bool `json:"forced,omitempty"`
	// FailedClause is nil when the audience matched or was forced.
	FailedClause *rules.Clause `json:"failedClause,omitempty"`
	// Error is the run-time error that made the rule not match, if any.
	Error string `json:"error,omitempty"`
}

// ExperienceExplanation says whether the profile is in one experience,
// with which variant, and why. The draws are the ones allocation made on
// the way to its decision (each a number in [0, 1) hashed from the
// profile's stableId; see the package documentation): the namespace draw
// when the experience has a namespace and the audience matched, the
// traffic draw when traffic is below 1 and the namespace let the visitor
// in, the distribution draw when the variant was drawn.
type ExperienceExplanation struct {
	ID      string `json:"id"`
	In      bool   `json:"in"`
	Variant int    `json:"variant"` // the variant when In; 0 otherwise
	Reason  Reason `json:"reason"`
	// Why is the reason in words, with the values that decided it.
	Why string `json:"why"`
	// Audience is the experience's audience id ("" for everyone).
	Audience string `json:"audience,omitempty"`

	NamespaceDraw    *float64 `json:"namespaceDraw,omitempty"`
	TrafficDraw      *float64 `json:"trafficDraw,omitempty"`
	DistributionDraw *float64 `json:"distributionDraw,omitempty"`
	// Distribution is the experience's distribution, baseline first, when
	// the variant was drawn.
	Distribution []float64 `json:"distribution,omitempty"`
	// Assignment is the sticky assignment the variant was kept from
	// (ReasonSticky).
	Assignment *StoredAssignment `json:"assignment,omitempty"`
	// Exposed lists the variants of this experience already exposed to
	// the profile (an exposure is emitted once per variant).
	Exposed []int `json:"exposed,omitempty"`
}

// StoredAssignment is a sticky assignment a profile holds.
type StoredAssignment struct {
	ExperienceID  string `json:"experienceId"`
	Variant       int    `json:"variant"`
	BucketVersion int    `json:"bucketVersion"`
	// At is when the assignment was made; zero for assignments stored
	// before tailor kept the time.
	At time.Time `json:"at,omitzero"`
	// Current reports that the assignment applies: its experience is in
	// the rules, sticky, of the same bucket version, and the variant
	// exists. Identify drops one that is not current.
	Current bool `json:"current"`
}

// Explain explains the stored profile profileID (following aliases) with
// the rules in force at the current time, applying ov (nil for none) as a
// request's Overrides would be applied. It evaluates exactly as Identify
// and Get do but writes nothing, draws nothing new into the profile and
// emits no exposure. A missing profile gives ErrNotFound; overrides naming
// unknown ids or variants give an *InputError.
//
// Explain costs more than Get (it evaluates every clause of each unmatched
// audience and allocates its answer); it is for looking into decisions,
// for example from the admin-only explain endpoint of package httpapi.
// Safe for concurrent use.
func (e *Engine) Explain(ctx context.Context, profileID string, ov *Overrides) (*Explanation, error) {
	if err := e.enterProfile(profileID); err != nil {
		return nil, err
	}
	defer e.leave()
	rs := e.rules.Load()
	if err := checkOverrides(ov, rs); err != nil {
		return nil, err
	}
	rec, err := e.find(ctx, profileID)
	if err != nil {
		return nil, err
	}
	now := e.now()
	env := envOf(rec, rec.Session.wire(), now)
	matched := make([]bool, len(rs.Audiences))
	auds, _ := rs.Explain(&env, matched, ov.forcedAudiences(rs))
	out := &Explanation{
		ProfileID:   rec.ID,
		StableID:    rec.StableID,
		UserID:      rec.UserID,
		Time:        now,
		Audiences:   make([]AudienceExplanation, len(rs.Audiences)),
		Experiences: make([]ExperienceExplanation, len(rs.Experiences)),
		Assignments: storedAssignments(rec, rs),
	}
	for i, a := range auds {
		ae := AudienceExplanation{ID: rs.Audiences[i].ID, Matched: a.Matched, Forced: a.Forced, FailedClause: a.Clause}
		if a.Err != nil {
			ae.Error = a.Err.Error()
		}
		out.Audiences[i] = ae
	}
	v := visitorOf(rec, ov)
	for i := range rs.Experiences {
		x := &rs.Experiences[i]
		variant, why := allocate(x, &v, matched, now)
		out.Experiences[i] = explainExperience(x, &v, variant, why, rec)
	}
	return out, nil
}

// explainExperience fills the explanation of allocate's decision
// (variant, why) for x. The draws are computed again with the same inputs,
// following allocate's order of checks, so they are the ones it made.
func explainExperience(x *rules.Experience, v *Visitor, variant int, why Reason, rec *record) ExperienceExplanation {
	xe := ExperienceExplanation{ID: x.ID, In: why.In(), Reason: why, Audience: x.Audience}
	if xe.In {
		xe.Variant = variant
	}
	if vs := rec.Exposed[x.ID]; len(vs) > 0 {
		xe.Exposed = slices.Sorted(slices.Values(vs))
	}
	drew := why == ReasonNamespace || why == ReasonTraffic || why == ReasonDrawn
	if ns := x.Namespace; ns != nil && drew {
		d := draw(tagNamespace, ns.ID, 0, v.StableID)
		xe.NamespaceDraw = &d
	}
	if x.Traffic < 1 && (why == ReasonTraffic || why == ReasonDrawn) {
		d := draw(tagTraffic, x.ID, x.BucketVersion, v.StableID)
		xe.TrafficDraw = &d
	}
	switch why {
	case ReasonOverride:
		xe.Why = fmt.Sprintf("forced to variant %d by the request's overrides", variant)
	case ReasonQAUser:
		who := ""
		for _, q := range x.QAUsers { // the entry QAVariant found: the first that matches
			if q.UserID != "" && q.UserID == v.UserID {
				who = fmt.Sprintf("userId %q", q.UserID)
				break
			}
			if q.ProfileID != "" && q.ProfileID == v.ProfileID {
				who = fmt.Sprintf("profile id %q", q.ProfileID)
				break
			}
		}
		xe.Why = fmt.Sprintf("QA user (%s) listed for variant %d", who, variant)
	case ReasonNotRunning:
		xe.Why = fmt.Sprintf("status is %q, not %q", x.Status, rules.StatusRunning)
	case ReasonNotStarted:
		xe.Why = "starts at " + x.Start.UTC().Format(time.RFC3339)
	case ReasonEnded:
		xe.Why = "ended at " + x.End.UTC().Format(time.RFC3339)
	case ReasonSticky:
		as := rec.Sticky[x.ID]
		sa := storedAssignment(x.ID, as, x)
		xe.Assignment = &sa
		made := "at an unknown time"
		if as.At != 0 {
			made = "at " + sa.At.Format(time.RFC3339)
		}
		xe.Why = fmt.Sprintf("kept from the sticky assignment of variant %d under bucket version %d, made %s", as.Variant, as.Bucket, made)
	case ReasonAudience:
		xe.Why = fmt.Sprintf("audience %q not matched", x.Audience)
	case ReasonNamespace:
		xe.Why = fmt.Sprintf("namespace %q draw %.4f is outside the experience's range [%g, %g)",
			x.Namespace.ID, *xe.NamespaceDraw, x.Namespace.Range[0], x.Namespace.Range[1])
	case ReasonTraffic:
		xe.Why = fmt.Sprintf("held out: traffic draw %.4f is not below traffic %g", *xe.TrafficDraw, x.Traffic)
	case ReasonDrawn:
		d := draw(tagDistribution, x.ID, x.BucketVersion, v.StableID)
		xe.DistributionDraw = &d
		xe.Distribution = slices.Clone(x.Distribution)
		xe.Why = fmt.Sprintf("distribution draw %.4f falls in variant %d of %s", d, variant, formatShares(x.Distribution))
	}
	return xe
}

// formatShares prints a distribution as its cumulative ranges:
// "[0, 0.5) [0.5, 1)".
func formatShares(dist []float64) string {
	var b strings.Builder
	acc := 0.0
	for i, p := range dist {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d:[%g, %g)", i, acc, acc+p)
		acc += p
	}
	return b.String()
}

// storedAssignments lists rec's sticky assignments by experience id.
func storedAssignments(rec *record, rs *rules.Set) []StoredAssignment {
	out := make([]StoredAssignment, 0, len(rec.Sticky))
	for _, id := range slices.Sorted(maps.Keys(rec.Sticky)) {
		out = append(out, storedAssignment(id, rec.Sticky[id], experience(rs, id)))
	}
	return out
}

func storedAssignment(id string, as Assignment, x *rules.Experience) StoredAssignment {
	sa := StoredAssignment{ExperienceID: id, Variant: as.Variant, BucketVersion: as.Bucket}
	if as.At != 0 {
		sa.At = time.UnixMilli(as.At).UTC()
	}
	sa.Current = x != nil && x.Sticky && as.Bucket == x.BucketVersion && as.Variant >= 0 && as.Variant < x.Variants()
	return sa
}
