package rules

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

// explainCheck is the differential check of Explain: the explanations of
// s (fast path where it answers) and of vmSet (expr's VM only) must be
// the same, and so must every clause and every read of every audience
// evaluated alone on each path, wherever the fast path answers.
func explainCheck(t *testing.T, s, vmSet *Set, env *Env, st *explainStats) {
	t.Helper()
	n := len(s.Audiences)
	m1, m2 := make([]bool, n), make([]bool, n)
	e1, err1 := s.explain(env, m1, nil, st)
	e2, err2 := vmSet.explain(env, m2, nil, nil)
	if fmt.Sprint(err1) != fmt.Sprint(err2) || fmt.Sprint(m1) != fmt.Sprint(m2) {
		t.Fatalf("Explain differs from the VM: %v %v vs %v %v", m1, err1, m2, err2)
	}
	for i := range e1 {
		a, b := e1[i], e2[i]
		if a.Matched != m1[i] || fmt.Sprint(a.Err) != fmt.Sprint(b.Err) || a.Matched != b.Matched || !reflect.DeepEqual(a.Clause, b.Clause) {
			t.Fatalf("audience %q = %q: explanations differ\nfast: %+v %+v\nvm:   %+v %+v\ntraits: %#v",
				s.Audiences[i].ID, s.Audiences[i].When, a, a.Clause, b, b.Clause, env.Traits)
		}
		if !a.Matched && a.Err == nil && a.Clause == nil {
			t.Fatalf("audience %q = %q did not match and names no clause", s.Audiences[i].ID, s.Audiences[i].When)
		}
	}
	ex := s.prog.explainProgram(s)
	r := s.prog.get(env, m1)
	defer s.prog.put(r)
	var leaves func(*ctree)
	leaves = func(ct *ctree) {
		if ct == nil {
			return
		}
		if ct.c == nil {
			leaves(ct.l)
			leaves(ct.r)
			return
		}
		c := ct.c
		if c.fast != nil {
			if v, ok := c.fast(&r.fr); ok && v.k != 0 {
				out, err := r.vm.Run(c.prog, r.box)
				if err != nil || fmt.Sprint(normalize(out)) != fmt.Sprint(anyFromVal(v)) {
					t.Fatalf("clause %q: fast path says %v, VM %v %v\ntraits: %#v", c.src, anyFromVal(v), out, err, env.Traits)
				}
			}
		}
		for _, rd := range c.reads {
			if rd.fast == nil {
				continue
			}
			v, ok := rd.fast(&r.fr)
			if !ok {
				continue
			}
			out, err := r.vm.Run(rd.prog, r.box)
			if err != nil || !reflect.DeepEqual(normalize(v), normalize(out)) {
				t.Fatalf("read %q: fast path says %#v, VM %#v %v", rd.src, normalize(v), normalize(out), err)
			}
		}
	}
	for _, ct := range ex.trees {
		leaves(ct)
	}
}

func TestExplainClauses(t *testing.T) {
	now := time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)
	env := &Env{
		Traits:   map[string]any{"plan": "free", "age": 17.0, "org": map[string]any{"tier": "gold"}},
		Location: Location{CountryCode: "DE"},
		Session:  Session{Count: 2},
		Now:      now,
		Events:   map[string]*History{"purchase": history(time.Hour)},
	}
	src := `audiences:
  - id: pro
    when: traits.plan == "pro"
  - id: and
    when: location.countryCode in ["US", "CA"] && traits.age >= 18
  - id: and-second
    when: session.count > 1 && traits.age >= 18 && traits.plan != "free"
  - id: or
    when: traits.plan == "pro" || eventCount("purchase", "30d") >= 2
  - id: nested
    when: session.count > 1 && (traits.org.tier == "silver" || not hasEvent("purchase"))
  - id: depends
    when: inAudience("pro") and len(traits.plan) > 2
  - id: nil-operand
    when: traits.missing && session.count > 0
  - id: arithmetic
    when: traits.age + session.count > 30
  - id: matches
    when: session.count > 1
  - id: let
    when: let p = traits.plan; p == "pro" && session.count > 1
`
	s, err := Parse("x.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		matched bool
		clause  string
		reads   []Read
		err     bool
	}
	wants := map[string]want{
		"pro":        {clause: `traits.plan == "pro"`, reads: []Read{{Expr: "traits.plan", Value: "free"}}},
		"and":        {clause: `location.countryCode in ["US", "CA"]`, reads: []Read{{Expr: "location.countryCode", Value: "DE"}}},
		"and-second": {clause: `traits.age >= 18`, reads: []Read{{Expr: "traits.age", Value: 17.0}}},
		"or":         {clause: `traits.plan == "pro"`, reads: []Read{{Expr: "traits.plan", Value: "free"}}},
		"nested":     {clause: `traits.org.tier == "silver"`, reads: []Read{{Expr: "traits.org.tier", Value: "gold"}}},
		"depends":    {clause: `inAudience("pro")`, reads: []Read{{Expr: `inAudience("pro")`, Value: false}}},
		"nil-operand": {clause: `traits.missing`, err: true,
			reads: []Read{{Expr: "traits.missing", Value: nil}}},
		"arithmetic": {clause: `traits.age + session.count > 30`,
			reads: []Read{{Expr: "traits.age", Value: 17.0}, {Expr: "session.count", Value: int64(2)}}},
		"matches": {matched: true},
		"let": {clause: `let p = traits.plan; p == "pro" && session.count > 1`,
			reads: []Read{{Expr: "traits.plan", Value: "free"}, {Expr: "session.count", Value: int64(2)}}},
	}
	for _, set := range []*Set{s, s.withoutFastPath()} {
		m := make([]bool, len(s.Audiences))
		exps, _ := set.Explain(env, m, nil)
		for i, e := range exps {
			id := s.Audiences[i].ID
			w := wants[id]
			if e.Matched != w.matched || e.Matched != m[i] {
				t.Errorf("%s: matched %v, want %v", id, e.Matched, w.matched)
			}
			if w.matched {
				if e.Clause != nil {
					t.Errorf("%s: matched but names clause %+v", id, e.Clause)
				}
				continue
			}
			if e.Clause == nil {
				t.Errorf("%s: no clause", id)
				continue
			}
			if e.Clause.Expr != w.clause || !reflect.DeepEqual(e.Clause.Reads, w.reads) {
				t.Errorf("%s: clause %q reads %+v\nwant %q reads %+v", id, e.Clause.Expr, e.Clause.Reads, w.clause, w.reads)
			}
			if (e.Clause.Error != "") != w.err {
				t.Errorf("%s: clause error %q", id, e.Clause.Error)
			}
		}
		if exps[s.AudienceIndex("nil-operand")].Err == nil {
			t.Errorf("nil-operand: no run-time error")
		}
	}
	var st explainStats
	explainCheck(t, s, s.withoutFastPath(), env, &st)
	if st.fast == 0 {
		t.Errorf("the fast path explained nothing: %+v", st)
	}
}

// TestExplainConcurrent builds the clause programs from many goroutines
// at once (the race detector checks the lazy build).
func TestExplainConcurrent(t *testing.T) {
	s, err := Parse("gen.yaml", genRules(3, 50))
	if err != nil {
		t.Fatal(err)
	}
	env := testEnv()
	done := make(chan []Explanation)
	for range 8 {
		go func() {
			e, _ := s.Explain(env, make([]bool, len(s.Audiences)), nil)
			done <- e
		}()
	}
	first := <-done
	for range 7 {
		if e := <-done; !reflect.DeepEqual(e, first) {
			t.Fatal("concurrent explanations differ")
		}
	}
}

func TestExplainEmpty(t *testing.T) {
	var s *Set
	if e, err := s.Explain(&Env{}, nil, nil); e != nil || err != nil {
		t.Errorf("nil Set: %v %v", e, err)
	}
	s, _ = Parse("e.yaml", []byte("audiences: []\n"))
	if e, err := s.Explain(&Env{}, nil, nil); e != nil || err != nil {
		t.Errorf("empty Set: %v %v", e, err)
	}
}

func TestMatchForced(t *testing.T) {
	s, err := Parse("f.yaml", []byte(`audiences:
  - id: pro
    when: traits.plan == "pro"
  - id: pro-de
    when: inAudience("pro") && location.countryCode == "DE"
  - id: not-pro
    when: not inAudience("pro")
`))
	if err != nil {
		t.Fatal(err)
	}
	env := &Env{Traits: map[string]any{"plan": "free"}, Location: Location{CountryCode: "DE"}}
	m := make([]bool, 3)
	if err := s.MatchForced(env, m, map[int]bool{0: true}); err != nil || !m[0] || !m[1] || m[2] {
		t.Errorf("forced in: %v %v", m, err)
	}
	if err := s.MatchForced(env, m, map[int]bool{1: false, 2: true}); err != nil || m[0] || m[1] || !m[2] {
		t.Errorf("forced out: %v %v", m, err)
	}
	if err := s.MatchForced(env, m, nil); err != nil || m[0] || m[1] || !m[2] {
		t.Errorf("none forced: %v %v", m, err)
	}
	exps, err := s.Explain(env, m, map[int]bool{0: true})
	if err != nil || !exps[0].Forced || !exps[0].Matched || exps[0].Clause != nil || exps[1].Forced || !exps[1].Matched {
		t.Errorf("explain forced: %+v %v", exps, err)
	}
	if exps[2].Matched || exps[2].Clause == nil || exps[2].Clause.Expr != `not inAudience("pro")` ||
		!reflect.DeepEqual(exps[2].Clause.Reads, []Read{{Expr: `inAudience("pro")`, Value: true}}) {
		t.Errorf("dependent of a forced audience: %+v", exps[2].Clause)
	}
	if err := s.MatchForced(env, make([]bool, 1), map[int]bool{0: true}); err != ErrMatchLen {
		t.Errorf("wrong length: %v", err)
	}
}
