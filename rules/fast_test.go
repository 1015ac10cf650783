package rules

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/tailorhq/tailor/internal/cputime"
)

// diffStats counts how often the fast path answered and how often it
// handed an evaluation to the VM, for audiences and for explanations.
type diffStats struct {
	fast, bail int
	explain    explainStats
}

// diffCheck evaluates every audience of s over env on both paths: the VM
// (authoritative) and each fast closure, which must either bail or give
// the VM's result for a rule that does not fail on the VM. It also checks
// that Match on both paths agrees, errors included.
func diffCheck(t *testing.T, s, vmSet *Set, env *Env, st *diffStats) {
	t.Helper()
	n := len(s.Audiences)
	want := make([]bool, n)
	wantErr := make([]error, n)
	for _, i := range s.Order() {
		want[i], wantErr[i] = vmSet.MatchOne(env, i, want)
	}
	fr := frame{env: env, matched: want, gen: 1, memo: make([]memo, s.prog.memoSlots)}
	for _, i := range s.Order() {
		f := s.prog.fast[i]
		if f == nil {
			continue
		}
		got, ok := f(&fr)
		if !ok {
			st.bail++
			continue
		}
		st.fast++
		if wantErr[i] != nil {
			t.Fatalf("audience %q = %q: fast path says %v, VM fails: %v\nenv traits: %#v",
				s.Audiences[i].ID, s.Audiences[i].When, got, wantErr[i], env.Traits)
		}
		if got != want[i] {
			t.Fatalf("audience %q = %q: fast path says %v, VM says %v\nenv traits: %#v",
				s.Audiences[i].ID, s.Audiences[i].When, got, want[i], env.Traits)
		}
	}
	m1, m2 := make([]bool, n), make([]bool, n)
	err1, err2 := s.Match(env, m1), vmSet.Match(env, m2)
	if fmt.Sprint(m1) != fmt.Sprint(m2) || fmt.Sprint(err1) != fmt.Sprint(err2) {
		t.Fatalf("Match differs:\nfast %v %v\nvm   %v %v", m1, err1, m2, err2)
	}
	explainCheck(t, s, vmSet, env, &st.explain)
}

// shapes holds every expression shape the fast path handles, and some it
// leaves to the VM, with operands of every kind.
var shapes = []string{
	`traits.plan == "pro"`,
	`traits.plan != "pro"`,
	`"pro" == traits.plan`,
	`traits.age == 30`,
	`traits.age == 30.0`,
	`traits.age != 30`,
	`traits.age > 30`,
	`traits.age <= 30.5`,
	`traits.age < -1`,
	`traits.seats >= traits.age`,
	`traits.plan < "q"`,
	`traits.plan >= traits.industry`,
	`traits.plan == nil`,
	`traits.missing == nil`,
	`nil == traits.plan`,
	`traits.plan == traits.industry`,
	`traits.beta`,
	`!traits.beta`,
	`not traits.beta`,
	`traits.beta == true`,
	`traits.beta != false`,
	`traits.beta && traits.plan == "pro"`,
	`traits.beta || session.count > 2`,
	`traits.beta and traits.seats > 3 or traits.age < 20`,
	`traits.plan in ["pro", "enterprise"]`,
	`traits.plan not in ["pro", "enterprise"]`,
	`traits.plan in ["pro", "", "a", "b", "c", "d", "e", "f", "g", "h"]`,
	`traits.plan in ["pro", 1, nil]`,
	`traits.age in [30, 31.0, "x"]`,
	`traits.age in [30, 31]`,
	`traits.beta in [true]`,
	`nil in ["", "x"]`,
	`traits.missing in ["", "x"]`,
	`"pro" in traits.tags`,
	`traits.plan in traits.tags`,
	`1 in traits.tags`,
	`"plan" in traits`,
	`traits.plan in traits`,
	`"utm_source" in page.query`,
	`session.count in [1, 2, 3]`,
	`session.count in [1, 2.5]`,
	`session.count in []`,
	`session.count in 1..5`,
	`session.count not in 3..4`,
	`traits.age in 18..30`,
	`traits.plan in 1..3`,
	`len(traits.plan) in 1..3`,
	`len(page.path) in 5..2`,
	`random * 10 in 0..5`,
	`location.countryCode in ["US", "CA"]`,
	`location.countryCode in ["US", 1]`,
	`len(traits.plan) > 2`,
	`len(traits) > 3`,
	`len(page.path) == 8`,
	`len(page.query) == 1`,
	`len(traits.tags) == 3`,
	`len(location.city) == 9`,
	`traits.email endsWith "@acme.com"`,
	`traits.email startsWith "user1"`,
	`traits.email contains "gmail"`,
	`traits.email not contains "gmail"`,
	`traits.email matches "^user[0-9]+@acme"`,
	`page.path matches "^/blog"`,
	`traits.plan contains traits.industry`,
	`traits.missing startsWith "a"`,
	`page.path startsWith traits.plan`,
	`page.query.utm_source == "google"`,
	`page.query["utm_source"] in ["google", "newsletter"]`,
	`page.query[traits.plan] == ""`,
	`traits.org.tier == "gold"`,
	`traits["plan"] == "pro"`,
	`traits[traits.industry] == nil`,
	`session.count > 3 && session.count < 10`,
	`session.count == 3.0`,
	`session.count > 2.5`,
	`session.count >= session.averageSessionLength`,
	`-session.count < -3`,
	`-random < -0.5`,
	`+session.count > 1`,
	`random < 0.5`,
	`random >= traits.age`,
	`location.countryCode == "US" && location.city startsWith "San"`,
	`session.landingPage.path == "/"`,
	`userId == "u1" || locale == "fr-FR" || jurisdiction == "GDPR"`,
	`device.type == "mobile" && campaign.source != ""`,
	`eventCount("purchase", "30d") >= 2`,
	`eventCount("purchase") == eventCount("purchase", "60d")`,
	`hasEvent("signup", "7d") || viewedPage("/docs/*", "30d")`,
	`viewedPage("/pricing")`,
	`viewedPage("/blog/*", "2w")`,
	`eventCount(traits.plan, "7d") > 0`,
	`eventCount(page.path) > 0`,
	`hasEvent(traits.missing)`,
	`hasEvent("purchase", traits.plan == "pro" ? "7d" : "30d")`,
	`traits.plan == "pro" ? true : false`,
	`now.Year() == 2026`,
	`(traits.plan ?? "x") == "pro"`,
	`traits.age + 1 > 30`,
	`traits.age - traits.seats <= 0`,
	`traits.seats * 2 == 24`,
	`traits.seats / 4 == 3`,
	`traits.seats % 5 == 2`,
	`session.count % 3 == 0`,
	`session.count / 2 == 1.5`,
	`session.count * 2 + 1 > 5`,
	`session.count - 10 < random`,
	`random * 100 > 50`,
	`session.count % traits.seats == 0`,
	`traits.plan + "x" == "prox"`,
	`(traits.beta ? traits.age : 0) > 30`,
	`(session.isReturningVisitor ? "yes" : "no") == "yes"`,
	`traits.beta ? traits.plan == "pro" : traits.seats > 3`,
	`(traits.beta ? nil : traits.plan) == nil`,
	`(session.count > 3 ? traits.plan : location.city) startsWith "S"`,
	`true`,
	`traits.missing`,
}

func TestFastPathShapes(t *testing.T) {
	var b strings.Builder
	b.WriteString("audiences:\n")
	for i, sh := range shapes {
		fmt.Fprintf(&b, "  - id: s%d\n    when: %q\n", i, sh)
	}
	// inAudience over shapes, so the fast path reads VM-evaluated results.
	fmt.Fprintf(&b, "  - id: combo\n    when: inAudience(\"s0\") && !inAudience(\"s24\") || inAudience(\"s78\")\n")
	s, err := Parse("shapes.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	vmOnly := map[string]bool{
		`hasEvent("purchase", traits.plan == "pro" ? "7d" : "30d")`: true,
		`now.Year() == 2026`:             true,
		`(traits.plan ?? "x") == "pro"`:  true,
		`traits[traits.industry] == nil`: true,
		`traits.plan + "x" == "prox"`:    true,
		`page.query[traits.plan] == ""`:  true,
	}
	for i, sh := range shapes {
		if got := s.Compiled(i); got == vmOnly[sh] {
			t.Errorf("Compiled(%q) = %v", sh, got)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	var st diffStats
	vmSet := s.withoutFastPath()
	for k := range iterations(800) {
		diffCheck(t, s, vmSet, genEnv(r, k%2 == 1), &st)
	}
	t.Logf("fast answers %d, bails %d; explanations: fast %d, VM %d", st.fast, st.bail, st.explain.fast, st.explain.vm)
	if st.fast < 5*st.bail {
		t.Errorf("fast path bails too often: %d answers, %d bails", st.fast, st.bail)
	}
	if st.explain.fast < 5*st.explain.vm {
		t.Errorf("explanations fall back to the VM too often: %+v", st.explain)
	}
}

// TestFastPathGenerated runs the differential check over generated mixed
// audiences: all of them must be compiled, and on well-typed profiles the
// fast path must never hand over to the VM.
func TestFastPathGenerated(t *testing.T) {
	for seed := range uint64(4) {
		s, err := Parse("gen.yaml", genRules(seed, 100))
		if err != nil {
			t.Fatal(err)
		}
		for i := range s.Audiences {
			if !s.Compiled(i) {
				t.Errorf("seed %d: %q not compiled", seed, s.Audiences[i].When)
			}
		}
		r := rand.New(rand.NewPCG(seed, 9))
		var plain, odd diffStats
		vmSet := s.withoutFastPath()
		for k := range iterations(200) {
			if k%2 == 0 {
				diffCheck(t, s, vmSet, genEnv(r, false), &plain)
			} else {
				diffCheck(t, s, vmSet, genEnv(r, true), &odd)
			}
		}
		if plain.bail != 0 || plain.explain.vm != 0 || plain.explain.fast == 0 {
			t.Errorf("seed %d: %d bails, %+v explanations on well-typed profiles", seed, plain.bail, plain.explain)
		}
		t.Logf("seed %d: plain %+v, odd %+v", seed, plain, odd)
	}
}

// genExpr builds a random expression over the environment from r.
func genExpr(r *rand.Rand, depth int) string {
	atoms := []string{
		`traits.plan`, `traits.age`, `traits.email`, `traits.seats`, `traits.beta`, `traits.missing`,
		`traits.tags`, `traits.org`, `traits.org.tier`, `traits["industry"]`, `traits`,
		`location.countryCode`, `location.city`, `session.count`, `session.isReturningVisitor`,
		`session.averageSessionLength`, `random`, `page.path`, `page.query`, `page.query.utm_source`,
		`device.type`, `locale`, `jurisdiction`,
		`"pro"`, `"gold"`, `""`, `"/blog"`, `30`, `0`, `-2`, `30.5`, `true`, `false`, `nil`,
		`["pro", "free"]`, `[30, 31.0]`, `["a", 1, nil]`, `[]`, `["US", "CA", "GB"]`,
		`eventCount("purchase", "30d")`, `eventCount("signup")`, `hasEvent("share", "7d")`,
		`viewedPage("/docs/*")`, `len(traits.plan)`, `len(traits)`, `len(page.path)`,
	}
	if depth <= 0 || r.IntN(4) == 0 {
		return pick(r, atoms)
	}
	switch r.IntN(6) {
	case 0:
		return pick(r, []string{"!", "not ", "-"}) + "(" + genExpr(r, depth-1) + ")"
	case 1:
		return "(" + genExpr(r, depth-1) + ")"
	default:
		ops := []string{"==", "!=", "<", "<=", ">", ">=", "&&", "||", "in", "not in",
			"startsWith", "endsWith", "contains", "matches"}
		op := pick(r, ops)
		right := genExpr(r, depth-1)
		if op == "matches" {
			right = pick(r, []string{`"^u"`, `"gold|pro"`, `"[0-9]+"`})
		}
		return genExpr(r, depth-1) + " " + op + " " + right
	}
}

// genBool builds a random boolean expression whose operands have
// plausible kinds, so most of them type-check (genExpr mostly does not).
func genBool(r *rand.Rand, depth int) string {
	anyv := []string{`traits.plan`, `traits.age`, `traits.beta`, `traits.missing`, `traits.tags`, `traits.org.tier`, `nil`}
	nums := []string{`traits.age`, `traits.seats`, `session.count`, `session.averageSessionLength`, `random`,
		`eventCount("purchase", "30d")`, `eventCount("signup")`, `len(traits.plan)`, `len(traits)`, `30`, `2.5`, `-1`, `0`,
		`(traits.age + 1)`, `(session.count / 2)`, `(session.count % 3)`, `(traits.seats * 2.5)`, `(traits.age % 7)`,
		`(traits.beta ? traits.age : 0)`, `(session.count - traits.seats)`}
	strs := []string{`traits.plan`, `traits.email`, `traits.industry`, `location.countryCode`, `location.city`,
		`page.path`, `page.query.utm_source`, `device.type`, `"pro"`, `"US"`, `""`, `"/blog"`, `"user1"`,
		`(traits.beta ? traits.plan : "x")`, `(random < 0.5 ? location.city : page.path)`}
	bools := []string{`traits.beta`, `session.isReturningVisitor`, `hasEvent("share", "7d")`, `viewedPage("/docs/*")`,
		`viewedPage("/pricing", "24h")`, `true`, `traits.missing`, `inAudience("base")`}
	lists := []string{`["pro", "free"]`, `[30, 31.0]`, `["a", 1, nil]`, `[]`, `["US", "CA", "GB"]`, `traits.tags`, `traits`}
	if depth <= 0 {
		return pick(r, bools)
	}
	switch r.IntN(10) {
	case 8:
		return "(" + genBool(r, depth-1) + " ? " + genBool(r, depth-1) + " : " + genBool(r, depth-1) + ")"
	case 0:
		return pick(r, anyv) + pick(r, []string{" == ", " != "}) + pick(r, append(anyv, strs...))
	case 1:
		return pick(r, nums) + pick(r, []string{" < ", " <= ", " > ", " >= ", " == "}) + pick(r, append(nums, anyv...))
	case 2:
		return pick(r, strs) + pick(r, []string{" < ", " >= ", " == ", " != "}) + pick(r, strs)
	case 3:
		if r.IntN(3) == 0 {
			return pick(r, append(nums, anyv...)) + " in " + pick(r, []string{"1..5", "18..30", "0..0", "3..1"})
		}
		return pick(r, append(strs, anyv...)) + pick(r, []string{" in ", " not in "}) + pick(r, lists)
	case 4:
		return pick(r, append(strs, anyv...)) + pick(r, []string{" startsWith ", " endsWith ", " contains "}) + pick(r, strs)
	case 5:
		return pick(r, strs) + " matches " + pick(r, []string{`"^u"`, `"gold|pro"`, `"[0-9]+"`})
	case 6:
		return pick(r, []string{"!", "not "}) + "(" + genBool(r, depth-1) + ")"
	default:
		return "(" + genBool(r, depth-1) + pick(r, []string{" && ", " || ", " and ", " or "}) + genBool(r, depth-1) + ")"
	}
}

// fastFuzzOne compiles one random expression and compares both paths over
// random profiles; expressions expr rejects are skipped.
func fastFuzzOne(t *testing.T, exprSeed, envSeed uint64) (valid, compiled bool) {
	r := rand.New(rand.NewPCG(exprSeed, 3))
	var when string
	if exprSeed%2 == 0 {
		when = genExpr(r, 3)
	} else {
		when = genBool(r, 3)
	}
	src := fmt.Sprintf("audiences:\n  - id: base\n    when: traits.plan == \"pro\"\n  - id: x\n    when: %q\n", when)
	s, err := Parse("fuzz.yaml", []byte(src))
	if err != nil {
		return false, false
	}
	er := rand.New(rand.NewPCG(envSeed, 4))
	var st diffStats
	vmSet := s.withoutFastPath()
	for k := range 8 {
		diffCheck(t, s, vmSet, genEnv(er, k%2 == 1), &st)
	}
	return true, s.Compiled(1)
}

func TestFastPathRandom(t *testing.T) {
	n, compiled := 0, 0
	for seed := range uint64(iterations(1500)) {
		valid, c := fastFuzzOne(t, seed, seed)
		if valid {
			n++
		}
		if c {
			compiled++
		}
	}
	t.Logf("%d valid random expressions, %d on the fast path", n, compiled)
	if compiled < n/10 {
		t.Errorf("only %d of %d random expressions compiled", compiled, n)
	}
}

// FuzzFastPath compares the fast path with expr's VM on random
// expressions and profiles.
func FuzzFastPath(f *testing.F) {
	for i := range uint64(20) {
		f.Add(i, i*7)
	}
	f.Fuzz(func(t *testing.T, exprSeed, envSeed uint64) {
		fastFuzzOne(t, exprSeed, envSeed)
	})
}

func TestMatch100Allocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	s, err := Parse("gen.yaml", genRules(1, 100))
	if err != nil {
		t.Fatal(err)
	}
	env := genEnv(rand.New(rand.NewPCG(5, 5)), false)
	m := make([]bool, len(s.Audiences))
	if err := s.Match(env, m); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(200, func() { _ = s.Match(env, m) }); n != 0 {
		t.Errorf("Match allocates %v times per call, want 0", n)
	}
}

// TestMatchOneCost checks MatchOne against Match, audience by audience.
func TestMatchOneCost(t *testing.T) {
	s, err := Parse("gen.yaml", genRules(2, 100))
	if err != nil {
		t.Fatal(err)
	}
	env := genEnv(rand.New(rand.NewPCG(6, 6)), false)
	want := make([]bool, len(s.Audiences))
	if err := s.Match(env, want); err != nil {
		t.Fatal(err)
	}
	got := make([]bool, len(s.Audiences))
	for _, i := range s.Order() {
		if ok, err := s.MatchOne(env, i, got); err != nil || ok != want[i] {
			t.Fatalf("MatchOne(%d) = %v, %v; Match says %v", i, ok, err, want[i])
		}
	}
	if _, err := s.MatchOne(env, len(got), got); err == nil {
		t.Error("MatchOne out of range: no error")
	}
}

func benchMatch(b *testing.B, s *Set, env *Env) {
	m := make([]bool, len(s.Audiences))
	if err := s.Match(env, m); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	defer cputime.Report(b)()
	for b.Loop() {
		_ = s.Match(env, m)
	}
}

// BenchmarkMatch100 evaluates 100 generated audiences of mixed shapes for
// one profile, on the fast path and on expr's VM alone.
func BenchmarkMatch100(b *testing.B) {
	s, err := Parse("gen.yaml", genRules(1, 100))
	if err != nil {
		b.Fatal(err)
	}
	env := genEnv(rand.New(rand.NewPCG(5, 5)), false)
	b.Run("fast", func(b *testing.B) { benchMatch(b, s, env) })
	b.Run("vm", func(b *testing.B) { benchMatch(b, s.withoutFastPath(), env) })
}

// BenchmarkMatchPeer is the peer SDKs' scenario: one audience that
// matches.
func BenchmarkMatchPeer(b *testing.B) {
	s, err := Parse("peer.yaml", []byte(`audiences:
  - id: peer
    when: location.countryCode in ["US","CA"] && traits.plan == "pro"
`))
	if err != nil {
		b.Fatal(err)
	}
	env := &Env{Traits: map[string]any{"plan": "pro", "seats": 10.0}, Location: Location{CountryCode: "CA"}}
	b.Run("fast", func(b *testing.B) { benchMatch(b, s, env) })
	b.Run("vm", func(b *testing.B) { benchMatch(b, s.withoutFastPath(), env) })
}

// TestSharedSubexpressions checks that repeated helper calls, trait reads
// and comparisons get one memo slot each, and single ones none.
func TestSharedSubexpressions(t *testing.T) {
	s, err := Parse("m.yaml", []byte(`audiences:
  - id: a
    when: eventCount("purchase", "30d") >= 2 && traits.plan == "pro"
  - id: b
    when: eventCount("purchase", "30d") >= 5 || traits.plan == "pro"
  - id: c
    when: eventCount("purchase", "7d") > 0 && traits.seats > 3
`))
	if err != nil {
		t.Fatal(err)
	}
	// eventCount("purchase", "30d"), traits.plan, traits.plan == "pro"
	// and the purchase History (read by both windows).
	if s.prog.memoSlots != 4 {
		t.Errorf("memo slots = %d, want 4", s.prog.memoSlots)
	}
	r := rand.New(rand.NewPCG(7, 7))
	var st diffStats
	vmSet := s.withoutFastPath()
	for range iterations(300) {
		diffCheck(t, s, vmSet, genEnv(r, false), &st)
	}
	// Repeated Match calls on one runner must not reuse the previous
	// call's memo.
	e1, e2 := testEnv(), testEnv()
	e2.Traits = map[string]any{"plan": "free", "seats": 1.0}
	e2.Events = nil
	m := make([]bool, 3)
	for range 3 {
		if err := s.Match(e1, m); err != nil || !m[0] || !m[1] {
			t.Fatalf("e1: %v %v", m, err)
		}
		if err := s.Match(e2, m); err != nil || m[0] || m[1] || m[2] {
			t.Fatalf("e2: %v %v", m, err)
		}
	}
}

// iterations scales a test's iteration count down under the race
// detector, which makes these differential loops several times slower.
func iterations(n int) int {
	if raceEnabled {
		return n / 5
	}
	return n
}

// BenchmarkMatchN shows how Match cost grows with the number of generated
// audiences (the cost should be linear, with no cliff).
func BenchmarkMatchN(b *testing.B) {
	env := genEnv(rand.New(rand.NewPCG(5, 5)), false)
	for _, n := range []int{1, 10, 100, 1000} {
		s, err := Parse("gen.yaml", genRules(1, n))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprint(n), func(b *testing.B) { benchMatch(b, s, env) })
	}
}
