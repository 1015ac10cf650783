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
// # File format
//
// A file has two lists, both optional; file order is priority:
//
//	audiences:
//	  - id: audience-pro-plan        # required, unique
//	    name: Pro plan               # optional
//	    when: traits.plan == "pro"   # required: a boolean expression (see Rules)
//	experiences:
//	  - id: exp-hero-banner-test     # required, unique
//	    type: experiment             # or personalization (default experiment)
//	    audience: audience-pro-plan  # optional: absent means everyone
//	    traffic: 1.0                 # share of qualified visitors that enter, in [0, 1] (default 1)
//	    distribution: [0.5, 0.5]     # baseline first, one entry per variant, sums to 1 (default even)
//	    sticky: true                 # keep a visitor's variant once drawn (default false)
//	    bucketVersion: 1             # bump to re-randomize and drop old sticky assignments (default 0)
//	    namespace: {id: hero, range: [0, 0.5]}   # optional mutual exclusion
//	    status: running              # or paused (default running)
//	    start: 2026-01-01T00:00:00Z  # optional schedule (RFC 3339), end after start
//	    end: 2027-01-01T00:00:00Z
//	    components:
//	      - type: EntryReplacement   # variants[key] in the answer
//	        key: hero-banner         # optional for EntryReplacement: defaults to the baseline id
//	        baseline: entry-control-id
//	        variants: [entry-variant-b-id]          # or {id: x, hidden: true}
//	      - type: InlineVariable     # a Change in the answer
//	        key: cta-color           # required
//	        baseline: blue           # a string, number, boolean or object
//	        variants: [green]
//
// Experiences in one namespace are mutually exclusive when their ranges do
// not overlap: every experience of a namespace sees the same draw of a
// visitor, and a visitor enters only the one whose [lo, hi) holds it.
//
// Loading refuses, each with file, line:column, rule id and field: YAML or
// JSON syntax errors (JSON must be plain JSON: no comments), unknown
// fields, duplicate keys, missing or empty or duplicate ids, a missing or
// null when, an audience reference to no audience, inAudience cycles and
// inAudience calls without a constant id, expressions that do not compile
// or are not boolean, helper calls with a bad window or glob or too many
// arguments, constant divisions by zero, rules over the cost budget (see
// Cost), an unknown type, status or component type, a distribution that is
// empty, negative, of the wrong length or not summing to 1, traffic outside
// [0, 1], a namespace without id or range or with a range outside [0, 1]
// or reversed, components with different variant counts, a missing
// baseline or InlineVariable key, null or list variable values, bad times
// or an end not after the start, and a negative bucketVersion.
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
// # Cost
//
// Parse rejects, with file, line:column and rule id, an audience whose
// worst-case cost is over [MaxCost] steps, pointing at the innermost
// construct that takes it over. The cost is counted on the checked
// expression, before expr's optimizer, for the worst input the engine
// accepts: a string or collection read from the environment is taken to
// be as large as [MaxInputLen] allows (half as many entries as bytes), the
// histories as large as [MaxHistoryNames] and [MaxHistoryBytes] allow.
//
//   - Every node costs a step; literals and arrays of literals, which expr
//     builds once at compile time, cost one.
//   - The iterating builtins (all, any, none, one, filter, map, count, sum,
//     find, findIndex, findLast, findLastIndex, groupBy, sortBy, reduce)
//     cost their collection's length times their predicate's cost, so
//     nesting multiplies; sortBy and sort add n·log2(n) comparisons. The
//     sizes of a collection's elements add up to at most the collection's
//     size, which is what keeps `any(traits.tags, # == traits.plan)`
//     linear rather than quadratic.
//   - Ranges cost their length: a..b with constant bounds b-a+1, and with
//     bounds known only at run time 1,000,000 (expr's memory budget), which
//     is over the budget by itself, so ranges need constant bounds.
//   - x in array costs the array's length, except for a literal array of
//     strings (or of integers, with an integer x), which expr turns into a
//     map lookup; in over a map or struct is a lookup.
//   - Comparing, searching and hashing strings (==, <, contains,
//     startsWith, endsWith, indexOf, map keys) cost a step per 16 bytes;
//     building them (+, upper, lower, trim, replace, repeat, join, split,
//     string, toJSON, fromJSON, toBase64) a step per byte or so of output,
//     and the bound on the output carries on: repeat(s, n) is as long as s
//     times n, a non-constant n counting 1,000,000.
//   - matches costs its subject's length times 2 + 1/8 of the pattern's
//     length per byte, and a pattern that is not a constant string is
//     compiled on every evaluation as well.
//   - eventCount and hasEvent cost one history ([HistoryDays] counts);
//     viewedPage with an exact path the same, with a glob every view.
//   - reduce's accumulator is bounded by trying the predicate on two
//     accumulator sizes: growth by a constant per element (#acc + "x") is
//     counted over every element, growth that compounds (#acc + #acc) is
//     unbounded.
//   - Any construct the model does not know (a builtin of a newer expr) is
//     refused rather than guessed.
//
// A step is worth 1 to 10 ns on a 2-core machine (BenchmarkRuleCost
// reports ns/step for the dearest constructs), so a rule at the budget
// evaluates in about 10 ms at worst; a rule set's total is the sum of its
// rules, and the caller's deadline stops evaluation between rules (see
// [Set.MatchContext]).
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
