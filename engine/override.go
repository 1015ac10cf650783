package engine

import (
	"fmt"
	"maps"
	"slices"

	"github.com/tailorhq/tailor/rules"
)

// Overrides force decisions for one request, for quality assurance: a
// tester sees a variant on the real page, server-rendered or not, before
// the experience is launched or whatever the dice say. Set them in
// Request.Overrides (Identify, IdentifyBatch) or pass them to Explain;
// the HTTP API reads them from the force-variant and force-audience query
// parameters (or X-Tailor-Force-Variant and X-Tailor-Force-Audience
// headers) of callers holding the admin token.
//
// A forced variant comes before every other allocation step: it applies to
// paused, scheduled and ended experiences too, whatever the audience, the
// namespace, the traffic share or a sticky assignment say. It is never
// stored as a sticky assignment, emits no exposure, is returned with
// SelectedExperience.Sticky false, and a component event in the same
// request does not lock it. Import ignores Overrides (they are not
// queued).
type Overrides struct {
	// Variants forces, by experience id, the variant the visitor gets
	// (0 is the baseline).
	Variants map[string]int
	// Audiences forces, by audience id, whether the visitor is in the
	// audience (true) or not (false); audiences that read it with
	// inAudience see the forced outcome.
	Audiences map[string]bool
}

// MaxOverrides bounds the entries of one request's Overrides.
const MaxOverrides = 64

// checkOverrides validates o against the rules in force: known ids,
// variants in range, at most MaxOverrides entries. A nil o is valid.
func checkOverrides(o *Overrides, rs *rules.Set) error {
	if o == nil {
		return nil
	}
	if n := len(o.Variants) + len(o.Audiences); n > MaxOverrides {
		return invalid("overrides", "%d entries, at most %d allowed", n, MaxOverrides)
	}
	for _, id := range slices.Sorted(maps.Keys(o.Variants)) {
		field := fmt.Sprintf("overrides.variants[%q]", id)
		x := experience(rs, id)
		if x == nil {
			return invalid(field, "no experience with this id in the rules in force")
		}
		if v := o.Variants[id]; v < 0 || v >= x.Variants() {
			return invalid(field, "variant %d out of range: the experience has variants 0 (baseline) to %d", v, x.Variants()-1)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(o.Audiences)) {
		if rs.AudienceIndex(id) < 0 {
			return invalid(fmt.Sprintf("overrides.audiences[%q]", id), "no audience with this id in the rules in force")
		}
	}
	return nil
}

// forcedAudiences returns o's audience outcomes by index in rs (unknown
// ids are left out), as rules.Set.MatchForced takes them.
func (o *Overrides) forcedAudiences(rs *rules.Set) map[int]bool {
	if o == nil || len(o.Audiences) == 0 {
		return nil
	}
	m := make(map[int]bool, len(o.Audiences))
	for id, in := range o.Audiences {
		if i := rs.AudienceIndex(id); i >= 0 {
			m[i] = in
		}
	}
	return m
}

// lockable reports whether a component event may lock a sticky
// assignment of experience x for rec: not while the variant is forced for
// this request or the visitor is one of x's QA users.
func lockable(x *rules.Experience, rec *record, o *Overrides) bool {
	if o != nil {
		if _, forced := o.Variants[x.ID]; forced {
			return false
		}
	}
	_, qa := x.QAVariant(rec.UserID, rec.ID)
	return !qa
}
