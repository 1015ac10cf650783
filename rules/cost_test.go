package rules

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/expr-lang/expr/builtin"
)

// literalArray returns an expr array literal of n integers.
func literalArray(n int) string {
	xs := make([]string, n)
	for i := range xs {
		xs[i] = fmt.Sprint(i)
	}
	return "[" + strings.Join(xs, ", ") + "]"
}

// nestedAll returns depth nested all(...) over literal arrays of n
// elements: n^depth predicate runs.
func nestedAll(depth, n int) string {
	s := "# >= 0"
	for range depth {
		s = "all(" + literalArray(n) + ", " + s + ")"
	}
	return s
}

// TestCostRejectsAtLoad is the regression test of rules that loaded and
// then took seconds per Identify: each is refused at load, at the
// construct that takes it over the budget.
func TestCostRejectsAtLoad(t *testing.T) {
	cases := []struct {
		name, when string
		at         string // the construct the error points at
	}{
		// The error points at the innermost all over the budget: three deep.
		{"four nested all over 120", nestedAll(4, 120), nestedAll(3, 120)},
		{"six nested all over 120 (10^13 steps)", nestedAll(6, 120), nestedAll(3, 120)},
		{"nested ranges", `all(1..999, all(1..999, # >= 0))`, "all(1..999, all"},
		{"nested filter and map", `len(filter(map(1..2000, # * 2), any(1..2000, # > 3))) > 0`, "filter("},
		{"one, none and count nested", `one(1..3000, none(1..3000, count(1..2, # > 0) > 0))`, "one("},
		// Operators are located at the operator.
		{"huge range", `len(1..2000000) > 0`, "..2000000"},
		{"range with a run-time bound", `len(1..session.count) > 0`, "..session.count"},
		{"huge repeat", `repeat("x", 2000000) != ""`, `repeat("x", 2000000)`},
		{"repeat of a trait", `repeat(traits.name, 100) != ""`, "repeat(traits.name, 100)"},
		{"doubling reduce", `reduce(1..64, #acc + #acc, "x") != ""`, "+ #acc"},
		{"two traits lists crossed", `any(traits.a, # in traits.b)`, "any("},
		{"pattern from a trait", `page.url matches traits.pattern`, "matches traits.pattern"},
		{"sort inside a loop", `all(1..100, len(sort(traits.list)) > 0)`, "all("},
		{"sort of a trait list", `len(sort(traits.list)) > 0 && len(sort(traits.other)) > 0`, "&&"},
		{"string building in a loop", `all(1..500, len(upper(traits.name)) > 0)`, "all("},
		{"glob in a loop", `any(1..100, viewedPage("/docs/*"))`, "any("},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := fmt.Sprintf("audiences:\n  - id: slow\n    when: %q\n", tc.when)
			s, err := Parse("r.yaml", []byte(src))
			if err == nil {
				total, _, _, _ := ruleCost(tc.when, nil)
				t.Fatalf("loaded (model cost %s)", steps(total))
			}
			if s != nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse: %v, %v", s, err)
			}
			var list Errors
			if !errors.As(err, &list) || len(list) != 1 {
				t.Fatalf("want one error, got %v", err)
			}
			e := list[0]
			if e.Rule != "slow" || e.Field != "when" || e.Pos.File != "r.yaml" || e.Pos.Line != 3 ||
				!strings.Contains(e.Msg, "over the budget of 1000000 per rule") {
				t.Fatalf("error %+v", e)
			}
			// The column points into the quoted expression at the culprit.
			col := e.Pos.Column - len(`    when: "`) - 1
			if col < 0 || !strings.HasPrefix(tc.when[col:], tc.at) {
				t.Errorf("error points at %q, want %q\n%v", tc.when[max(col, 0):], tc.at, err)
			}
		})
	}
}

// TestCostAcceptsRealRules checks that the rules people write stay within
// half the budget (so two combine in one rule): the shapes the fast path
// compiles, the example file, and loops over trait lists with the usual
// predicates.
func TestCostAcceptsRealRules(t *testing.T) {
	rules := append([]string{
		`any(traits.tags, # in ["vip", "beta", "staff", "press", "partner", "investor", "employee", "family"])`,
		`any(traits.orders, .total > 100 && .currency == "EUR")`,
		`all(traits.orders, .status != "refunded") && len(traits.orders) > 2`,
		`count(traits.orders, .total > 50) >= 3`,
		`sum(map(traits.orders, .total)) > 500`,
		`reduce(traits.orders, #acc + .total, 0) > 500`,
		`any(traits.tags, # startsWith "seg-")`,
		`traits.plan in traits.tags`,
		`traits.email matches "^[a-z.]+@(acme|initech)\\.com$"`,
		`page.url matches "[?&]utm_source=(google|bing)"`,
		`viewedPage("/docs/*", "7d") || viewedPage("/pricing*") || viewedPage("/blog/*/*", "30d")`,
		`lower(traits.company) contains "bank" || upper(page.path) startsWith "/EN/"`,
		`len(split(page.path, "/")) > 3`,
		`now.Format("2006-01-02") >= "2026-01-01"`,
		`all(1..10, eventCount("step-" + string(#), "30d") > 0)`,
		`any(keys(page.query), # startsWith "utm_")`,
		`toJSON(traits.flags) contains "beta"`,
		`location.countryCode in ["AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE"]`,
		nestedAll(2, 100),
	}, shapes...)
	for i, when := range rules {
		total, _, why, err := ruleCost(when, nil)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if total > MaxCost/2 {
			t.Errorf("%s: cost %s, want well within the budget (%s)", when, steps(total), why)
		}
		src := fmt.Sprintf("audiences:\n  - id: r%d\n    when: %q\n", i, when)
		if _, err := Parse("r.yaml", []byte(src)); err != nil {
			t.Errorf("%s: %v", when, err)
		}
	}
	for _, name := range []string{"testdata/example.yaml", "testdata/example.json"} {
		if _, err := Load(name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestCostCoversBuiltins fails when expr gains a builtin the model does
// not know (rules using it would be refused as of unknown cost).
func TestCostCoversBuiltins(t *testing.T) {
	for _, name := range builtin.Names {
		if !builtinCosts[name] {
			t.Errorf("builtin %s has no cost model in cost.go", name)
		}
	}
	if len(builtinCosts) != len(builtin.Names) {
		t.Errorf("cost.go lists %d builtins, expr has %d", len(builtinCosts), len(builtin.Names))
	}
}

// TestCostModelIsMonotonic checks that a bigger literal costs more and
// nesting multiplies.
func TestCostModelIsMonotonic(t *testing.T) {
	prev := 0.0
	for _, n := range []int{1, 10, 100, 1000} {
		c, _, _, err := ruleCost(nestedAll(2, n), nil)
		if err != nil {
			t.Fatal(err)
		}
		if c <= prev || c < float64(n*n) {
			t.Errorf("all over %d nested twice costs %v (previous %v)", n, c, prev)
		}
		prev = c
	}
}

// worstEnv is a profile at the input limits the cost model assumes, for
// BenchmarkRuleCost.
func worstEnv() *Env {
	env := testEnv()
	env.Traits["big"] = strings.Repeat("ab", MaxInputLen/2)
	var list, tags []any
	for i := range MaxInputLen / 2 {
		list = append(list, float64(i%10))
	}
	for i := range MaxInputLen / 4 {
		tags = append(tags, fmt.Sprint(i%10))
	}
	env.Traits["list"] = list
	env.Traits["tags"] = tags
	env.Page.URL = strings.Repeat("/x", 4096)
	env.Views = map[string]*History{}
	name := strings.Repeat("a", MaxHistoryBytes/MaxHistoryNames-8)
	for i := range MaxHistoryNames {
		h := &History{}
		for d := range HistoryDays {
			h.Add(testNow.Add(-time.Duration(d) * day).UnixMilli())
		}
		env.Views[fmt.Sprintf("/docs/%s%d", name, i)] = h
	}
	return env
}

// BenchmarkRuleCost evaluates rules of every dear kind on a profile at the
// input limits and reports the time per step of the cost model (ns/step):
// the figure behind MaxCost's documentation.
func BenchmarkRuleCost(b *testing.B) {
	env := worstEnv()
	for _, when := range []string{
		nestedAll(2, 300),
		`all(1..1000, # >= 0)`,
		`any(traits.list, # in [-1, -2, -3, -4, -5, -6, -7, -8, -9, -10])`,
		`any(traits.tags, # startsWith "zz")`,
		`traits.big matches "(a|b)*c"`,
		`traits.big matches "(abc|abd|abe|abf|abg|abh)+[a-z]{3,9}x"`,
		`upper(traits.big) == ""`,
		`len(split(traits.big, "")) == 0`,
		`len(toJSON(traits.list)) == 0`,
		`len(sortBy(traits.list, -#)) > 0`,
		`len(uniq(traits.tags)) > 0`,
		`len(map(traits.list, # * 2)) > 0`,
		`viewedPage("/docs/*b")`,
	} {
		total, _, _, err := ruleCost(when, nil)
		if err != nil {
			b.Fatal(err)
		}
		s, err := Parse("b.yaml", []byte(fmt.Sprintf("audiences:\n  - id: b\n    when: %q\n", when)))
		if err != nil {
			b.Fatal(err)
		}
		name := when
		if len(name) > 40 {
			name = name[:40]
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			m := make([]bool, 1)
			for b.Loop() {
				_ = s.Match(env, m)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/total, "ns/step")
			b.ReportMetric(total, "steps")
		})
	}
}
