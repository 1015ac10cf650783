// Package engine is tailor's embedded personalization engine: open it on a
// directory with a rules file, then call [Engine.Identify] once per visitor
// request.
//
//	eng, err := engine.Open(dir, &engine.Options{Rules: set}) // nil options: defaults
//	defer eng.Close()
//	resp, err := eng.Identify(ctx, profileID, engine.Request{Events: events})
//
// Besides Identify, an [Engine] has [Engine.Get] (a profile with its current
// evaluation, nothing written), [Engine.Delete] (a profile with all its
// aliases), [Engine.SetRules] (swap the rules atomically while serving),
// [Engine.Backup] and [Engine.Restore], [Engine.Profiles] and
// [Engine.Export] (NDJSON), [Engine.Import] (a durable asynchronous queue)
// and [Engine.IdentifyBatch] (several profiles in one call). The rules are
// a [rules.Set]; package [github.com/tailorhq/tailor/engine/httpapi] serves
// an Engine over HTTP.
//
// # What Identify does
//
// [Engine.Identify](ctx, profileID, req) does the whole job, in this order:
//
//  1. Validate the whole request: nothing is written when any part is
//     invalid, and the error is an [*InputError] naming the field at fault
//     (events[3].timestamp, events[0].context.page.query, ...). See
//     "Limits" below for what is checked.
//  2. Resolve the profile: by profileID, following aliases (an id merged
//     away earlier resolves to the profile it merged into). An unknown id
//     creates a profile under that id (upsert); an empty one creates a
//     profile with a fresh id of 64 lowercase hex characters from
//     crypto/rand. A new profile draws its random (in [0,1)) once and its
//     stableId is its id; both survive merges.
//  3. Identity: the last identify event with a userId decides. When the
//     profile is anonymous and the userId has no profile, the profile
//     becomes known as that user. When the userId already has a profile,
//     the anonymous profile merges into it: the known profile's traits win
//     and the anonymous ones fill gaps, event and view histories and
//     session counts add up, the known profile's sticky assignments win
//     and the anonymous ones fill gaps, the anonymous profile's page,
//     campaign, location, locale and user agent win when it was updated
//     more recently, and the anonymous id becomes an alias of the survivor
//     (at most [MaxMergedIDs] aliases are kept, the oldest forgotten). A
//     profile holds at most one userId: identify as B on a profile known
//     as A continues on B's profile (a new one if B has none) and leaves
//     A's untouched. With [Options.IdentitySecret] and an
//     untrusted request, each of these needs traits.userHash (see
//     [UserHash]); without it the call fails with [ErrIdentityUnverified]
//     and writes nothing. The store writes one key at a time, so binding
//     and merging are sequences of single-key conditional writes that any
//     later call, or the background sweep, finishes if a caller crashed
//     half-way (see "Identity across keys" below); a request the outcome
//     would refuse (its traits over the bound) is refused before the
//     first of them.
//  4. Apply the events in timestamp order (timestamp, else
//     originalTimestamp, else sentAt, else now; ties keep request order).
//     Every event moves last-seen forward and starts a new session after
//     [Options.SessionTimeout] of inactivity (30 minutes by default: count
//     + 1, a new session id, the landing page cleared). A page event
//     records the view of its path, becomes the current page (url, path,
//     referrer and title missing from context.page come from the
//     properties of the same names, then path, search and query from the
//     url), becomes the session's landing page
//     if it is the session's first page, and sets the campaign from
//     context.campaign or the page's utm_* parameters. A screen event
//     records the view of its name, a track event the occurrence of its
//     event name. An identify event merges its traits into the profile's,
//     key by key, the new value winning; a null value deletes the key. A
//     component event with an experienceId and variantIndex locks that
//     variant for a sticky experience. Any event's context.locale and
//     context.userAgent replace the profile's (the device is derived from
//     the user agent, see [github.com/tailorhq/tailor/engine/device]), and
//     a non-empty context.location replaces the location. Histories keep,
//     per name, the total count, the first and last time seen and daily
//     counts for the last [rules.HistoryDays] days, for at most
//     [MaxHistories] names and [MaxHistoryBytes] of names per history (the
//     least recently seen are forgotten).
//  5. Location: unless an event carried one, when an [Options.Locator] is
//     configured, the request has an IP and its options.features list
//     "location" or "ip-enrichment", the IP is looked up (names in
//     req.Locale, else the profile's locale); otherwise the stored
//     location stays. The jurisdiction follows from the country and region
//     codes ([Jurisdiction]: GDPR in the EU, EEA and UK, CCPA and the other
//     US state laws by state, LGPD, PIPEDA, APPI, ... or "none").
//  6. Audiences: every audience of the rules in force is evaluated over the
//     profile ([rules.Set.MatchContext]); a rule that fails at run time
//     does not match and is logged. Once ctx is done, evaluation stops
//     between audiences and Identify returns ctx's error.
//  7. Experiences, in rules order (rules order is priority), as
//     [Allocate] describes: not running or outside its schedule, skipped; a
//     sticky experience with an assignment of its current bucket version
//     keeps that variant; otherwise the audience must match, the namespace
//     draw must fall in the experience's range and the traffic draw below
//     its traffic, and the distribution draw picks the variant. Sticky
//     experiences store the assignment.
//  8. Build the answer: each selected experience's EntryReplacement
//     components fill its variants by key (a hidden variant is ""), its
//     InlineVariable components become [Change] values.
//  9. Persist the profile, unless req.Preflight (a record over
//     [MaxRecordBytes] is refused, nothing written): one write, on
//     condition that the profile is still at the version step 2 read
//     (another process sharing the store may have written it since; then
//     the call reads again and starts over, up to 32 times, then fails
//     with [ErrOverload]). Then emit an
//     [Exposure] for every variant shown to this profile for the first
//     time ([Options.OnExposure], called outside any lock; the record of
//     what was emitted is stored with the profile, so it survives
//     restarts), and return the [Response].
//
// # Identity across keys
//
// A profile is one record; its user id and the ids merged into it are
// keys of their own. Stores write one key at a time ([storage.Store]: no
// transaction spans two keys, which Redis Cluster could not give), so
// binding a user id, merging an anonymous profile into a known one and
// deleting a profile with its aliases are sequences of single-key
// conditional steps, each safe to repeat, each leaving a state the next
// call recognises and finishes: a merged id becomes a forwarding record
// (merge pending while it still holds its data), a deletion writes a
// tombstone first, a bind marks the profile before it claims the user id,
// and every operation writes an intent that [Engine.Sweep] (run every
// [Options.SweepInterval] in the background) uses to finish what a
// crashed caller left. The states, the invariants and the steps are
// listed at the top of identity.go. The engine's profile cache
// ([Options.CacheBytes]) keeps encoded records with their versions and is
// only used for a record the call then writes on condition of that
// version, so it can never overwrite a newer write of another process.
//
// # Wire format
//
// The request and answer types carry the JSON of Ninetailed's Experience
// API, so the HTTP layer is a thin codec and Ninetailed's published
// JavaScript clients work unchanged. A request body is a [Request]:
//
//	{"events": [Event, ...], "options": {"features": ["location", "ip-enrichment"]}}
//
// An absent or empty features list means the visitor did not consent to an
// IP-based location lookup. An [Event] has a type (page, track, identify,
// screen, component, alias or group; alias and group are accepted and
// change nothing), optional messageId, channel (web, mobile or server),
// anonymousId, userId, timestamp, originalTimestamp and sentAt (RFC 3339),
// and a context ([EventContext]: page {url, path, query, referrer, search,
// title}, campaign {name, source, medium, term, content}, library, locale,
// userAgent, location, gdpr, app, screen). Page and screen events take a
// name and properties, track events an event name (required) and
// properties, identify events traits, component events componentId
// (required), componentType, experienceId, variantIndex, viewDurationMs
// and viewId. Unknown fields are ignored.
//
// A [Response] is {"profile": Profile, "experiences": [SelectedExperience],
// "changes": [Change]}; its slices are never null. A [Profile] has id,
// stableId, random, audiences (the matching audience ids, in rules order),
// traits, location (every field optional; countryCode is ISO 3166-1
// alpha-2, upper case, or absent), session {id, isReturningVisitor (count
// > 1), landingPage, count, sessionLength, activeSessionLength,
// averageSessionLength, in seconds}, jurisdiction and stickyVariants
// (experience id → variant index). A [SelectedExperience] is
// {experienceId, variantIndex, variants, sticky}; a [Change] is {key,
// type: "Variable", value, meta: {experienceId, variantIndex}}, its value a
// string, number, boolean or object, never null.
//
// The published client (@ninetailed/experience.js-shared) validates every
// answer, and tailor keeps to what it accepts: landingPage is a page object
// with url, path, query, referrer and search; activeSessionLength and
// averageSessionLength are always present; a countryCode it does not know
// ("XX") is never returned; a change value is never null or an array (the
// rules loader refuses them). The extra fields (jurisdiction,
// stickyVariants, sessionLength) are allowed by it.
//
// # Limits
//
// Identify refuses a request over any of these with an [*InputError]
// naming the field, before anything is written: at most [MaxEvents] events
// and [MaxIdentifyEvents] identify events; ids (profile, user, anonymous,
// message, component, experience, view) at most [MaxIDBytes]; event and
// screen names, trait and query keys, the locale, user agent and location
// fields at most [MaxNameBytes]; url, path, referrer, search, title, each
// query value and each campaign field at most [MaxURLBytes], a page's query
// at most [MaxQueryBytes] and a campaign at most [MaxCampaignBytes] in all;
// traits at most [MaxTraitsBytes] as JSON (per event, and for the profile
// as it would be stored) and [MaxTraitsDepth] levels deep; strings valid
// UTF-8 without control characters; numbers finite; timestamps between
// 2000 and [MaxFutureSkew] ahead; known event types with their required
// fields; a valid country code and coordinates in a location. The HTTP
// layer bounds the body at [MaxBodyBytes]. These limits are also what the
// rules cost model assumes of the values rules read
// ([rules.MaxInputLen]).
//
// # Allocation
//
// Variants are allocated by hashing, not by a random generator: a draw is
// xxhash64 of a purpose tag ("traffic", "distribution", "namespace"), the
// experience (or namespace) id, the bucket version and the profile's
// stableId, joined with 0x00 separators and mapped to [0,1) by the top 53
// bits. A visitor therefore gets the same variant on every call and every
// machine; golden vectors in testdata pin the algorithm. Namespace draws use
// bucket version 0, so every experience of a namespace sees the same draw
// and their ranges exclude each other.
//
// # Evaluating without the store
//
// [Decider.Decide] is the evaluation Identify performs, for callers that
// keep visitor attributes themselves (as with a feature-flag SDK): it
// evaluates the audiences of a [rules.Set] over a [rules.Env] and appends
// a [Decision] per experience the visitor is in to a caller-owned slice.
// A warm Decider allocates nothing. [Allocate] is the allocation step
// alone, for audience outcomes computed elsewhere. engine/PERF.md has the
// figures.
//
// # Explanations
//
// [Engine.Explain] says why a stored profile gets what it gets, evaluating
// exactly as Identify would now but writing nothing: every audience,
// matched or not, with the first clause of each unmatched rule that
// failed and the values it read ([rules.Set.Explain]); every experience,
// in or out, with its [Reason] (not running, before start, after end,
// audience not matched, outside the namespace range, held out by traffic,
// kept from a sticky assignment, drawn, QA user, override) and the draws,
// distribution or [StoredAssignment] behind it; and the profile's sticky
// assignments with their bucket version and when each was made
// ([Assignment].At). The allocation step itself returns the reason, so an
// explanation cannot disagree with Identify.
//
// # QA overrides and QA users
//
// [Request].Overrides forces variants and audience outcomes for one
// request ([Overrides]), so a tester sees a variant on the real page
// before launch; a rules file's qaUsers list visitors (by userId or
// profile id) who always get one variant ([rules.QAUser]). Both come
// before every other allocation step, are never stored as sticky
// assignments and never emit exposures. The HTTP API serves overrides and
// explanations only with its admin token (package engine/httpapi).
//
// # Flag SDKs
//
// [Engine.Evaluate] resolves a profile's decisions with traits given for
// that evaluation only and writes nothing; [Engine.Expose] then records
// what was shown, emitted once like Identify's exposures; and
// [Engine.OnRulesChange] reports [Engine.SetRules]. Package
// engine/openfeature builds an OpenFeature provider on them.
//
// # Concurrency and durability
//
// An [Engine] is safe for concurrent use. Calls on one profile serialize on
// a striped lock, so concurrent updates are never lost; calls on different
// profiles run in parallel and their writes may be committed together by
// the store. With [Options].SyncWrites, every Identify is fsynced before it
// returns. [Engine.Close] waits for in-flight calls.
//
// # Telemetry
//
// With [Options].MeterProvider and [Options].TracerProvider set, the
// engine reports OpenTelemetry metrics and traces; without them it
// reports nothing and costs nothing measurable (engine/PERF.md has the
// figures). It never uses package otel's global providers. Metrics are
// named tailor.* and carry bounded attributes only — outcomes, results,
// and the experience ids and variant indexes of the rules, never a
// profile id, user id or trait: Identify calls by outcome
// (tailor.identify.calls, tailor.identify.duration in seconds), audiences
// matched, exposures, merges, conflicts retried, cache lookups, the
// latency of store reads and writes, size on disk and free space, the
// import queue's depth and lag, rule reloads and the version in force.
// The default store adds its own (group commits, value-log GC, live
// data). The README's Observability section lists every metric with its
// unit.
//
// Each Identify is a span ([SpanIdentify]) in the trace of the caller's
// context, with child spans [SpanLoad], [SpanEvaluate] and [SpanCommit].
// Span attributes are counts and outcomes; a failed call's status
// describes its outcome ("invalid", "overload", ...), never the error
// message, which may name a profile. [Engine.LoadRules] reloads a rules
// file and counts the reload, ok or failed.
//
// # Errors
//
// Invalid input is an [*InputError] naming the field at fault (matching
// [ErrInvalidInput]); a missing profile is [ErrNotFound]; an identify event
// without the proof [Options.IdentitySecret] asks for is
// [ErrIdentityUnverified]; a profile over [Options.MaxWaiting] or
// [Options.ProfileRate] is [ErrOverload]; a nearly full disk is
// [ErrDiskFull]; a full import queue is [ErrQueueFull]; calls after Close
// return [ErrClosed]; a call whose context ends returns the context's
// error. Match errors with [errors.Is] and [errors.As].
package engine
