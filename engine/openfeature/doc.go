// Package openfeature is an [OpenFeature] provider backed by a tailor
// [engine.Engine]: code that evaluates feature flags through the
// OpenFeature Go SDK (github.com/open-feature/go-sdk) reads tailor's
// personalization and experiment decisions without knowing about tailor.
//
//	openfeature.SetProviderAndWait(tailorof.NewProvider(eng))
//	client := openfeature.NewDefaultClient()
//	color := client.String(ctx, "cta-color", "blue", openfeature.NewEvaluationContext(profileID, nil))
//
// # Flags
//
// A flag key is a component key of an experience in the rules in force:
// the key of an InlineVariable (its value is the flag's value) or of an
// EntryReplacement (its value is the selected entry id, "" for a hidden
// variant). The evaluation context's targeting key is the tailor profile
// id; its other attributes are traits, used for that evaluation only and
// never stored. The flag resolves to the component's value in the variant
// tailor allocates the profile, from the first experience (in rules
// order, which is priority) that has the key and that the profile is in;
// when it is in none, to the baseline value of the first experience with
// the key. The variant is the variant index ("0" is the baseline).
//
// Values are typed as the rules file gives them: booleans, strings,
// numbers (float64; an integral number also resolves as an int) and
// objects. Asking for another type is a TYPE_MISMATCH error.
//
// # Reasons and errors
//
//   - TARGETING_MATCH: the profile is in the experience because its
//     audience matched (an experience without randomness: one variant with
//     all the weight, full traffic, no namespace), or the variant was forced
//     (a QA user of the experience, or an engine.Overrides).
//   - SPLIT: the variant comes from tailor's hashed allocation (a
//     distribution over several variants, a traffic share below 1 or a
//     namespace), drawn now or kept from a sticky assignment.
//   - STATIC: an experience for everyone without randomness.
//   - DEFAULT: the profile is in no experience with the key; the value is
//     the baseline.
//   - ERROR, with the default value passed in and the code:
//     FLAG_NOT_FOUND (no experience has the key), TYPE_MISMATCH,
//     TARGETING_KEY_MISSING (no targeting key), INVALID_CONTEXT (the
//     targeting key is not a valid profile id), PARSE_ERROR (an attribute
//     that cannot be a trait: not representable as JSON, nested too deep,
//     too large), GENERAL (the engine is closed, the store failed).
//
// The flag metadata carries experienceId, experienceType, componentType,
// variantIndex, sticky, forced (a QA override or QA user) and exposed
// (this variant was already exposed to the profile).
//
// # Writes and exposures
//
// Evaluating a flag writes nothing ([engine.Engine.Evaluate]). Exposures
// are emitted by the hook the provider registers ([Provider.Hooks]):
// after a successful evaluation that put the profile in an experience it
// calls [engine.Engine.Expose], which stores the exposure with the profile
// and emits it through engine.Options.OnExposure once per profile,
// experience and variant, as Identify does, and makes a sticky variant the
// profile's assignment. Forced variants and DEFAULT resolutions are not
// exposed. [WithoutExposures] turns the hook off. [Provider.Track] sends a
// track event to the profile (an Identify with one track event: the
// event's name, its value as the property "value" and its attributes as
// properties), so eventCount and hasEvent rules see it.
//
// # Status and events
//
// The provider is ready once the SDK has called Init (the engine is
// already open); from then on every [engine.Engine.SetRules] emits
// PROVIDER_CONFIGURATION_CHANGED, naming the flag keys whose experiences
// or audiences changed. Shutdown stops the events; it does not close the
// engine, which belongs to the caller.
//
// A Provider is safe for concurrent use.
//
// [OpenFeature]: https://openfeature.dev
package openfeature
