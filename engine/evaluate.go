package engine

import (
	"time"

	"github.com/tailorhq/tailor/rules"
)

// evaluation is the outcome of evaluating one profile against one rule set.
type evaluation struct {
	resp      *Response
	exposures []Exposure
}

// evaluate runs audiences (step 6) and experiences (steps 7 and 8) over rec
// at time now. With persist set, sticky assignments are stored in rec and
// newly exposed variants are marked in rec and returned; otherwise rec is
// left as it was. The Response shares no memory with rec's mutable parts.
func (e *Engine) evaluate(rec *record, rs *rules.Set, now time.Time, persist bool) evaluation {
	env := rules.Env{
		Traits:       rec.Traits,
		Location:     rec.Location,
		Session:      rec.Session.wire(),
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
	matched := make([]bool, len(rs.Audiences))
	if err := rs.Match(&env, matched); err != nil {
		e.log.Warn("audience evaluation failed; those audiences do not match",
			"profile", rec.ID, "err", err)
	}
	audiences := make([]string, 0, len(matched))
	for i, ok := range matched {
		if ok {
			audiences = append(audiences, rs.Audiences[i].ID)
		}
	}

	var ev evaluation
	resp := &Response{Experiences: []SelectedExperience{}, Changes: []Change{}}
	nowMs := now.UnixMilli()
	for i := range rs.Experiences {
		x := &rs.Experiences[i]
		v, sticky, ok := allocate(x, rec, matched, now)
		if !ok {
			continue
		}
		if persist && x.Sticky && !sticky {
			if rec.Sticky == nil {
				rec.Sticky = make(map[string]assignment)
			}
			rec.Sticky[x.ID] = assignment{Variant: v, Bucket: x.BucketVersion}
		}
		sel := SelectedExperience{
			ExperienceID: x.ID,
			VariantIndex: v,
			Variants:     make(map[string]string, len(x.Components)),
			Sticky:       x.Sticky,
		}
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
				sel.Variants[c.Key] = s
			case rules.InlineVariable:
				resp.Changes = append(resp.Changes, Change{
					Key:   c.Key,
					Type:  ChangeVariable,
					Value: val.Value,
					Meta:  ChangeMeta{ExperienceID: x.ID, VariantIndex: v},
				})
			}
		}
		resp.Experiences = append(resp.Experiences, sel)
		if persist && rec.markExposed(x.ID, v) {
			ev.exposures = append(ev.exposures, Exposure{
				ProfileID: rec.ID, ExperienceID: x.ID, VariantIndex: v, Time: nowMs,
			})
		}
	}
	if persist {
		// Assignments drawn under an older bucket version are dropped.
		for id, as := range rec.Sticky {
			if x := experience(rs, id); x != nil && as.Bucket != x.BucketVersion {
				delete(rec.Sticky, id)
			}
		}
	}

	resp.Profile = &Profile{
		ID:             rec.ID,
		StableID:       rec.StableID,
		Random:         rec.Random,
		Audiences:      audiences,
		Traits:         cloneTraits(rec.Traits),
		Location:       normalizeLocation(rec.Location),
		Session:        env.Session,
		Jurisdiction:   env.Jurisdiction,
		StickyVariants: make(map[string]int, len(rec.Sticky)),
	}
	for id, as := range rec.Sticky {
		resp.Profile.StickyVariants[id] = as.Variant
	}
	ev.resp = resp
	return ev
}

// allocate decides whether rec is in experience x and with which variant
// (SPEC section 3 step 7). sticky reports that the variant came from a
// stored assignment.
func allocate(x *rules.Experience, rec *record, matched []bool, now time.Time) (v int, sticky, ok bool) {
	if x.Status != rules.StatusRunning {
		return 0, false, false
	}
	if (!x.Start.IsZero() && now.Before(x.Start)) || (!x.End.IsZero() && !now.Before(x.End)) {
		return 0, false, false
	}
	if x.Sticky {
		if as, found := rec.Sticky[x.ID]; found && as.Bucket == x.BucketVersion && as.Variant < x.Variants() {
			return as.Variant, true, true
		}
	}
	if x.AudienceIndex >= 0 && !matched[x.AudienceIndex] {
		return 0, false, false
	}
	if ns := x.Namespace; ns != nil {
		d := draw(tagNamespace, ns.ID, 0, rec.StableID)
		if d < ns.Range[0] || d >= ns.Range[1] {
			return 0, false, false
		}
	}
	if x.Traffic < 1 && draw(tagTraffic, x.ID, x.BucketVersion, rec.StableID) >= x.Traffic {
		return 0, false, false
	}
	return pickVariant(x.Distribution, draw(tagDistribution, x.ID, x.BucketVersion, rec.StableID)), false, true
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
