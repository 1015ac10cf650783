package openfeature

import (
	"context"
	"strconv"

	of "github.com/open-feature/go-sdk/openfeature"

	"github.com/tailorhq/tailor/engine"
)

// exposureHook reports what an evaluation showed: after each successful
// resolution that put the profile in an experience (not DEFAULT, not
// forced, not already exposed), it calls engine.Engine.Expose, which
// emits the exposure once per profile, experience and variant.
type exposureHook struct {
	of.UnimplementedHook
	p *Provider
}

// After exposes the variant the evaluation resolved. It never fails the
// evaluation: a failure to store the exposure is logged.
func (h exposureHook) After(ctx context.Context, hc of.HookContext, d of.InterfaceEvaluationDetails, _ of.HookHints) error {
	if d.Reason == of.DefaultReason || d.Reason == of.ErrorReason || d.ErrorCode != "" {
		return nil
	}
	md := d.FlagMetadata
	if forced, _ := md.GetBool("forced"); forced {
		return nil
	}
	if exposed, _ := md.GetBool("exposed"); exposed {
		return nil
	}
	exp, err := md.GetString("experienceId")
	if err != nil {
		return nil // not one of ours
	}
	v, err := strconv.Atoi(d.Variant)
	if err != nil {
		return nil
	}
	key := hc.EvaluationContext().TargetingKey()
	if err := h.p.eng.Expose(ctx, key, exp, v); err != nil {
		h.p.log.Warn("tailor openfeature: exposure not recorded", "flag", hc.FlagKey(), "profile", key,
			"experience", exp, "variant", v, "err", err)
	}
	return nil
}

// Track sends a track event named trackingEventName to the profile of
// evalCtx's targeting key: one Identify with a track event whose
// properties are the details' attributes plus "value", the details'
// value. It updates the profile (eventCount and hasEvent rules see the
// event) and, like every Identify, emits the exposures of what the
// profile is in. Attributes of evalCtx are not stored. Failures are
// logged; the OpenFeature API returns nothing.
func (p *Provider) Track(ctx context.Context, trackingEventName string, evalCtx of.EvaluationContext, details of.TrackingEventDetails) {
	key := evalCtx.TargetingKey()
	if key == "" {
		p.log.Warn("tailor openfeature: track event without a targeting key dropped", "event", trackingEventName)
		return
	}
	props := details.Attributes()
	props["value"] = details.Value()
	_, err := p.eng.Identify(ctx, key, engine.Request{Events: []engine.Event{
		{Type: engine.EventTrack, Event: trackingEventName, Properties: props},
	}})
	if err != nil {
		p.log.Warn("tailor openfeature: track event not recorded", "event", trackingEventName, "profile", key, "err", err)
	}
}
