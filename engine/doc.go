// Package engine is tailor's embedded personalization engine: open it on a
// directory with a rules file, then call [Engine.Identify] once per visitor
// request.
//
// # One call per request
//
// [Engine.Identify] does the whole job in order: it validates the request
// (writing nothing when it is invalid), resolves the profile through its
// aliases, merges an anonymous profile into the known one when an identify
// event names a user id that already has a profile, applies the events in
// timestamp order (sessions, page and screen views, track events with
// bounded histories, traits), resolves the location, evaluates every
// audience of the [rules.Set] in force, allocates a variant of every
// experience the visitor qualifies for (sticky where asked), persists the
// profile and returns the [Response]: profile, selected experiences and
// content changes, in the wire format of Ninetailed's Experience API.
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
// # Errors
//
// Invalid input is an [*InputError] naming the field at fault (matching
// [ErrInvalidInput]); a missing profile is [ErrNotFound]; calls after Close
// return [ErrClosed]. Match errors with [errors.Is] and [errors.As].
package engine
