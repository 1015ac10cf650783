// Package rules loads, validates and evaluates tailor rules files: the
// audiences (boolean [expr] rules over a visitor's profile) and the
// experiences (experiments and personalizations) that target them.
//
// # Loading
//
// [Load] and [Parse] read YAML, or JSON when the first non-space byte is
// '{'. Every problem in a file is reported at once, as an [Errors] of
// [*Error] values carrying file, line:column, rule id and field, all
// matching [ErrInvalid]. A file that fails to load yields no [Set], so the
// caller keeps the rules in force. See testdata/example.yaml for every
// feature of the format.
//
// # Rules
//
// An audience's `when` is an expr expression over [Env], compiled once at
// load time with expr.AsBool. Besides the environment fields (traits,
// location, session, page, campaign, device, userId, locale, jurisdiction,
// random, now) rules may call:
//
//   - eventCount(name, window?) int: track events named name within window
//   - hasEvent(name, window?) bool: eventCount(...) > 0
//   - viewedPage(pathOrGlob, window?) bool: a page (or screen) viewed within
//     window; the argument is an exact path or a [path.Match] pattern
//   - inAudience(id) bool: the result of another audience (a constant id;
//     cycles are rejected at load time)
//
// A window is a positive count with a unit m, h, d or w ("90m", "24h",
// "30d", "2w"); without one the whole kept history counts. Histories keep
// daily counts, so windows are rounded out to whole UTC days, except that
// the first and last occurrence times are exact: hasEvent("x", "1h") is
// false when the last x was two hours ago.
//
// # Evaluation
//
// [Set.Match] evaluates every audience once, dependencies first: it is
// safe for concurrent use and, on the warm path, does not allocate.
//
// Most rules do not run on expr's VM. At load time the checked expression
// tree of each audience is compiled into Go closures over [Env] (typed
// field reads, trait lookups, comparisons, in, startsWith, endsWith,
// contains, matches with a constant pattern, len, and the helpers with
// constant windows); helper calls, trait reads and comparisons that recur
// across the Set are evaluated once per call. Audiences using anything else
// run on pooled expr VMs, as does a single evaluation that meets a value
// of a type the closures do not model, so results and errors are always
// expr's. [Set.Compiled] tells which audiences are compiled, and
// [Set.MatchOne] evaluates one audience alone to measure its cost.
// [Set.MatchForced] is Match with some outcomes forced (QA overrides);
// the audiences that read a forced one see the forced outcome.
//
// # Explanations
//
// [Set.Explain] evaluates like Match and, for each audience that did not
// match, the [Clause] that failed first: the rule is split at && and ||
// (and, or) and its operands evaluated in expr's order, each with the
// values it read (field chains such as traits.org.tier, helper calls,
// inAudience results). Clauses and reads are compiled for the fast path
// and the VM on the first Explain of a Set, never on Match's path, and
// the two paths agree (the differential tests compare them clause by
// clause).
//
// # QA users
//
// An experience may list qaUsers, visitors who always get one variant:
//
//	qaUsers:
//	  - {userId: qa-ann, variant: 1}
//	  - {profileId: 5f0c2a9e, variant: 0}
//
// Each entry has exactly one of userId and profileId and a variant index
// of the experience (0 is the baseline); a visitor listed twice is an
// error. [Experience.QAVariant] looks a visitor up; the engine gives the
// variant before any other check, never stores it as sticky and never
// exposes it.
package rules
