package engine

import (
	"context"
	"errors"
	"maps"
	"time"

	"github.com/tailorhq/tailor/rules"
)

// Evaluation is what Evaluate decided for one profile. It belongs to the
// caller; Rules is shared and must not be modified.
type Evaluation struct {
	// Rules is the rule set evaluated: Decisions index its Experiences.
	Rules *rules.Set
	// ProfileID is the profile evaluated, after aliases.
	ProfileID string
	// New reports that no profile is stored under ProfileID: it was
	// evaluated as a new visitor with that id (its draws are the ones
	// the profile will get once Identify creates it).
	New bool
	// Decisions are the experiences the visitor is in, in rules order,
	// as Identify would return them now.
	Decisions []Decision
	// Exposed[i] reports that Decisions[i]'s variant was already exposed
	// to the profile, so Expose would emit nothing.
	Exposed []bool
}

// Evaluate evaluates profile profileID (following aliases) as Get does,
// with traits set over the profile's own for this evaluation only (a nil
// value removes a trait), for callers that resolve one decision at a time
// such as the OpenFeature provider. It writes nothing and emits no
// exposure: report what the visitor was shown with Expose. An unknown
// profile is evaluated as a new visitor with that id. Traits are
// validated as an identify event's are (*InputError naming the field) and
// read as JSON would give them (numbers as float64). Safe for concurrent
// use.
func (e *Engine) Evaluate(ctx context.Context, profileID string, traits map[string]any) (*Evaluation, error) {
	if err := e.enterProfile(profileID); err != nil {
		return nil, err
	}
	defer e.leave()
	overlay, err := checkTraits(traits)
	if err != nil {
		return nil, err
	}
	now := e.now()
	out := &Evaluation{Rules: e.rules.Load()}
	rec, err := e.find(ctx, profileID)
	switch {
	case errors.Is(err, ErrNotFound):
		rec, out.New = newRecord(profileID, now.UnixMilli()), true
	case err != nil:
		return nil, err
	}
	if len(overlay) > 0 {
		t := maps.Clone(rec.Traits)
		if t == nil {
			t = make(map[string]any, len(overlay))
		}
		for k, v := range overlay {
			if v == nil {
				delete(t, k)
			} else {
				t[k] = v
			}
		}
		rec.Traits = t
	}
	out.ProfileID = rec.ID
	env := envOf(rec, rec.Session.wire(), now)
	var d Decider
	out.Decisions, err = d.Decide(out.Rules, &env, visitorOf(rec, nil), nil)
	if err != nil {
		e.log.Warn("audience evaluation failed; those audiences do not match", "profile", rec.ID, "err", err)
	}
	out.Exposed = make([]bool, len(out.Decisions))
	for i, dec := range out.Decisions {
		out.Exposed[i] = slicesContains(rec.Exposed[out.Rules.Experiences[dec.Experience].ID], dec.Variant)
	}
	return out, nil
}

// enterProfile registers a call on the named profile profileID (leave
// must follow when it returns nil) and checks the id, which is required.
func (e *Engine) enterProfile(profileID string) error {
	if err := e.enter(); err != nil {
		return err
	}
	err := checkID("profileId", profileID)
	if err == nil && profileID == "" {
		err = invalid("profileId", "is required")
	}
	if err != nil {
		e.leave()
	}
	return err
}

// checkTraits validates traits given to Evaluate and returns them as JSON
// would decode them.
func checkTraits(traits map[string]any) (map[string]any, error) {
	if len(traits) == 0 {
		return nil, nil
	}
	g, err := jsonGeneric(traits)
	if err != nil {
		return nil, invalid("traits", "cannot be encoded as JSON: %v", err)
	}
	m, _ := g.(map[string]any)
	if path, r := traitsProblem(m); r != "" {
		return nil, &InputError{Field: "traits" + path, Reason: r}
	}
	return m, nil
}

func slicesContains(vs []int, v int) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

// Expose records that profile profileID was shown variant variant of
// experience experienceID, as Identify does for every experience it
// returns: the exposure is stored with the profile and emitted through
// Options.OnExposure the first time only, and a sticky experience's
// variant becomes the profile's assignment (as a component event would
// make it). An unknown profile is created. Forced variants are not
// exposed: for a QA user of the experience Expose does nothing. It
// returns an *InputError for an unknown experience or a variant out of
// range. Safe for concurrent use; calls on one profile serialize with
// Identify's.
func (e *Engine) Expose(ctx context.Context, profileID, experienceID string, variant int) error {
	if err := e.enterProfile(profileID); err != nil {
		return err
	}
	defer e.leave()
	rs := e.rules.Load()
	x := experience(rs, experienceID)
	if x == nil {
		return invalid("experienceId", "no experience %q in the rules in force", experienceID)
	}
	if variant < 0 || variant >= x.Variants() {
		return invalid("variantIndex", "variant %d out of range: the experience has variants 0 (baseline) to %d", variant, x.Variants()-1)
	}
	now := e.now()
	nowMs := now.UnixMilli()
	var exposure *Exposure
	err := e.retry(ctx, func() error {
		return e.locked([]string{prefixProfile + profileID}, func(l *lockSet) error {
			exposure = nil
			rec, err := e.resolveLocked(ctx, l, profileID)
			if err != nil {
				return err
			}
			if _, qa := x.QAVariant(rec.UserID, rec.ID); qa {
				return nil
			}
			locked := false
			if as, ok := rec.Sticky[x.ID]; x.Sticky && (!ok || as.Bucket != x.BucketVersion || as.Variant != variant) {
				lockAssignment(rec, rs, x.ID, variant, nowMs, nil)
				locked = true
			}
			exposed := rec.markExposed(x.ID, variant)
			if !exposed && !locked {
				return nil
			}
			if err := e.writeLocked(ctx, l, rec, now); err != nil {
				return err
			}
			if exposed {
				exposure = &Exposure{ProfileID: rec.ID, ExperienceID: x.ID, VariantIndex: variant, Time: nowMs}
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	if exposure != nil && e.opts.OnExposure != nil {
		e.opts.OnExposure(*exposure)
	}
	return nil
}

// writeLocked stores rec, updated now, for a caller holding its stripe,
// refreshing its aliases' TTL first (writeRecord caches it).
func (e *Engine) writeLocked(ctx context.Context, l *lockSet, rec *record, now time.Time) error {
	rec.Updated = now.UnixMilli()
	if err := e.refreshAliases(ctx, rec, now); err != nil {
		return err
	}
	return e.writeRecord(ctx, l, rec)
}
