package engine

import (
	"context"
	"time"

	"github.com/tailorhq/tailor/rules"
)

// evaluation is the outcome of evaluating one profile against one rule set.
type evaluation struct {
	resp      *Response
	exposures []Exposure
}

// evalState is the scratch of one evaluate call, pooled by the engine:
// the rule environment, the Decider and the decisions.
type evalState struct {
	env     rules.Env
	decider Decider
	decs    []Decision
}

// evaluate runs audiences (step 6) and experiences (steps 7 and 8) over rec
// at time now. With persist set, sticky assignments are stored in rec and
// newly exposed variants are marked in rec and returned; otherwise rec is
// left as it was. The Response shares no memory with rec's mutable parts.
//
// Once ctx is done the audiences not yet evaluated do not match: callers
// check ctx.Err() afterwards and return it rather than the evaluation.
func (e *Engine) evaluate(ctx context.Context, rec *record, rs *rules.Set, now time.Time, persist bool) evaluation {
	return e.evaluateWith(ctx, rec, rs, now, persist, nil)
}

// envOf is the rule environment of rec at time now; session is
// rec.Session.wire(). It shares rec's maps.
func envOf(rec *record, session Session, now time.Time) rules.Env {
	return rules.Env{
		Traits:       rec.Traits,
		Location:     rec.Location,
		Session:      session,
		Page:         rec.Page,
		Campaign:     rec.Campaign,
		Device:       rec.Device,
		UserID:       rec.UserID,
		Locale:       rec.Locale,
		Jurisdiction: Jurisdiction(rec.Location.CountryCode, rec.Location.RegionCode),
		Random:       rec.Random,
		Now:          now,
		Events:       rec.Events,
		Views:        rec.Views,
	}
}

// visitorOf is whom rec's experiences are allocated for.
func visitorOf(rec *record, ov *Overrides) Visitor {
	return Visitor{StableID: rec.StableID, Sticky: rec.Sticky, UserID: rec.UserID, ProfileID: rec.ID, Overrides: ov}
}

// evaluateWith is evaluate with the request's overrides (nil for none):
// forced variants are neither stored as sticky nor exposed.
func (e *Engine) evaluateWith(ctx context.Context, rec *record, rs *rules.Set, now time.Time, persist bool, ov *Overrides) evaluation {
	st := e.evals.Get().(*evalState)
	defer e.evals.Put(st)
	session := rec.Session.wire()
	st.env = envOf(rec, session, now)
	jurisdiction := st.env.Jurisdiction
	decs, err := st.decider.DecideContext(ctx, rs, &st.env, visitorOf(rec, ov), st.decs[:0])
	st.decs = decs
	st.env = rules.Env{} // drop references to rec
	if err != nil && ctx.Err() == nil {
		e.log.Warn("audience evaluation failed; those audiences do not match",
			"profile", rec.ID, "err", err)
	}
	matched := st.decider.Matched()
	nAud, nChanges := 0, 0
	for _, ok := range matched {
		if ok {
			nAud++
		}
	}
	nEntries := 0
	for _, d := range decs {
		for _, c := range rs.Experiences[d.Experience].Components {
			switch c.Type {
			case rules.InlineVariable:
				nChanges++
			case rules.EntryReplacement:
				nEntries++
			}
		}
	}
	// Every experience's variants share one array.
	entries := make(Variants, 0, nEntries)

	// The Response and its Profile are allocated together.
	out := &struct {
		resp    Response
		profile Profile
	}{}
	resp := &out.resp
	resp.Experiences = make([]SelectedExperience, 0, len(decs))
	resp.Changes = make([]Change, 0, nChanges)
	audiences := make([]string, 0, nAud)
	for i, ok := range matched {
		if ok {
			audiences = append(audiences, rs.Audiences[i].ID)
		}
	}

	var ev evaluation
	nowMs := now.UnixMilli()
	for _, d := range decs {
		x := &rs.Experiences[d.Experience]
		v := d.Variant
		forced := d.Reason.Forced()
		if persist && x.Sticky && !d.Stored && !forced {
			if rec.Sticky == nil {
				rec.Sticky = make(map[string]Assignment)
			}
			rec.Sticky[x.ID] = Assignment{Variant: v, Bucket: x.BucketVersion, At: nowMs}
		}
		sel := SelectedExperience{
			ExperienceID: x.ID,
			VariantIndex: v,
			Sticky:       x.Sticky && !forced,
		}
		first := len(entries)
		for _, c := range x.Components {
			val := c.Baseline
			if v > 0 {
				val = c.Variants[v-1]
			}
			switch c.Type {
			case rules.EntryReplacement:
				s, _ := val.Value.(string)
				if val.Hidden {
					s = ""
				}
				entries = append(entries, Variant{Key: c.Key, Value: s})
			case rules.InlineVariable:
				resp.Changes = append(resp.Changes, Change{
					Key:   c.Key,
					Type:  ChangeVariable,
					Value: val.Value,
					Meta:  ChangeMeta{ExperienceID: x.ID, VariantIndex: v},
				})
			}
		}
		sel.Variants = entries[first:len(entries):len(entries)]
		resp.Experiences = append(resp.Experiences, sel)
		if persist && !forced && rec.markExposed(x.ID, v) {
			ev.exposures = append(ev.exposures, Exposure{
				ProfileID: rec.ID, ExperienceID: x.ID, VariantIndex: v, Time: nowMs,
			})
		}
	}
	if persist && len(rec.Sticky) > 0 {
		// Assignments drawn under an older bucket version are dropped.
		for i := range rs.Experiences {
			x := &rs.Experiences[i]
			if as, ok := rec.Sticky[x.ID]; ok && as.Bucket != x.BucketVersion {
				delete(rec.Sticky, x.ID)
			}
		}
	}

	out.profile = Profile{
		ID:             rec.ID,
		StableID:       rec.StableID,
		Random:         rec.Random,
		Audiences:      audiences,
		Traits:         cloneTraits(rec.Traits),
		Location:       normalizeLocation(rec.Location),
		Session:        session,
		Jurisdiction:   jurisdiction,
		StickyVariants: make(map[string]int, len(rec.Sticky)),
	}
	for id, as := range rec.Sticky {
		out.profile.StickyVariants[id] = as.Variant
	}
	resp.Profile = &out.profile
	ev.resp = resp
	return ev
}

func experience(rs *rules.Set, id string) *rules.Experience {
	for i := range rs.Experiences {
		if rs.Experiences[i].ID == id {
			return &rs.Experiences[i]
		}
	}
	return nil
}

// cloneTraits copies the top level of traits (values are never mutated in
// place by the engine, only replaced) and never returns nil, so the wire
// form is {} rather than null.
func cloneTraits(t map[string]any) map[string]any {
	c := make(map[string]any, len(t))
	for k, v := range t {
		c[k] = v
	}
	return c
}
