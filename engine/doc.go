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
// [ErrInvalidInput]); a missing profile is [ErrNotFound]; calls after Close
// return [ErrClosed]. Match errors with [errors.Is] and [errors.As].
package engine
