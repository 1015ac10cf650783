package rules

import (
	"fmt"
	"maps"
	"reflect"
	"slices"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/conf"
	exprparser "github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
)

// Explanation says why one audience matched a visitor or not.
type Explanation struct {
	// Matched is the audience's outcome, exactly as Match (or
	// MatchForced) gives it.
	Matched bool
	// Forced reports that the outcome was forced, not evaluated.
	Forced bool
	// Err is the run-time error that made the audience not match, if any.
	Err error
	// Clause is, for an audience that did not match, the first clause of
	// its rule that failed, with the values it read; nil when the
	// audience matched or its outcome was forced.
	Clause *Clause
}

// Clause is one operand of the && and || that join an audience's rule
// (the whole rule when it has none), with the values it read. "The first
// clause that failed" follows expr's evaluation order: in a && b it is a
// when a failed, else b; in a || b that failed it is a.
type Clause struct {
	// Expr is the clause in expr syntax, as expr prints it (so spacing
	// and parentheses may differ from the file).
	Expr string `json:"expr"`
	// Reads are the values the clause read, in the order they appear:
	// fields (traits.plan, location.countryCode), the helpers
	// (eventCount("purchase", "30d")) and inAudience results.
	Reads []Read `json:"reads"`
	// Error says why the clause did not yield true or false, when it did
	// not (a run-time error, or a value of another type).
	Error string `json:"error,omitempty"`
}

// Read is one value a clause read. Value is nil (a missing trait reads as
// nil), a bool, an int64 (every integer), a float64, a string, or what the
// field holds (a map, a list, a time); maps and lists are copied at the
// top level. Error is set instead when the read itself failed.
type Read struct {
	Expr  string `json:"expr"`
	Value any    `json:"value"`
	Error string `json:"error,omitempty"`
}

// Explain evaluates every audience over env as MatchForced does (forced
// may be nil), storing the outcomes in matched (len(matched) must be
// len(s.Audiences)), and returns an Explanation per audience, index as
// s.Audiences; the error is MatchForced's.
// For each audience that did not match it then evaluates the clauses of
// its rule one by one to find the first that failed. Clauses and values
// run on the fast path where it models them and on expr's VM otherwise,
// like Match; the two agree (the differential tests check it).
//
// Explain is for looking into a decision, not for the request path: it
// allocates, and the first call on a Set compiles every clause once.
// It is safe for concurrent use; env is only read, during the call.
func (s *Set) Explain(env *Env, matched []bool, forced map[int]bool) ([]Explanation, error) {
	return s.explain(env, matched, forced, nil)
}

// explainStats counts how often the fast path answered a clause or a
// read during explain, and how often the VM did; tests check it.
type explainStats struct{ fast, vm int }

func (s *Set) explain(env *Env, matched []bool, forced map[int]bool, st *explainStats) ([]Explanation, error) {
	err := s.MatchForced(env, matched, forced)
	if s == nil || s.prog == nil || len(s.Audiences) == 0 {
		return nil, err
	}
	out := make([]Explanation, len(s.Audiences))
	var errs []error
	if err != nil {
		// Match joins one wrapped error per failing audience.
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = j.Unwrap()
		}
	}
	pr := s.prog
	ex := pr.explainProgram(s)
	r := pr.get(env, matched)
	defer pr.put(r)
	for i := range out {
		out[i].Matched = matched[i]
		if _, ok := forced[i]; ok {
			out[i].Forced = true
			continue
		}
		for _, e := range errs {
			if ae, ok := e.(*audienceError); ok && ae.i == i {
				out[i].Err = ae
			}
		}
		if matched[i] || ex.trees[i] == nil {
			continue
		}
		_, c, msg := r.explainTree(ex.trees[i], st)
		if c == nil {
			continue
		}
		cl := &Clause{Expr: c.src, Error: msg, Reads: make([]Read, 0, len(c.reads))}
		for _, rd := range c.reads {
			cl.Reads = append(cl.Reads, r.evalRead(rd, st))
		}
		out[i].Clause = cl
	}
	return out, err
}

// outcome is what a clause yielded.
type outcome uint8

const (
	outFalse outcome = iota
	outTrue
	outBad // an error or a value that is not a bool: fails like an error
)

// ctree is an audience rule as clauses joined by && (and) and || (or).
type ctree struct {
	or   bool
	l, r *ctree
	c    *clause // a leaf when set
}

// clause is one leaf of a ctree, compiled for both paths.
type clause struct {
	src   string
	prog  *vm.Program
	fast  valFn // nil: VM only
	reads []*read
}

// read is one value a clause reads, compiled for both paths.
type read struct {
	src  string
	prog *vm.Program
	fast anyFn // nil: VM only
}

// explainProg holds the clause trees of a Set, built on the first
// Explain.
type explainProg struct {
	trees []*ctree // per audience; nil when it cannot be split
}

func (pr *program) explainProgram(s *Set) *explainProg {
	pr.explainOnce.Do(func() { pr.explained = pr.buildExplain(s) })
	return pr.explained
}

func (pr *program) buildExplain(s *Set) *explainProg {
	ex := &explainProg{trees: make([]*ctree, len(s.Audiences))}
	fc := &fastCompiler{counts: map[string]int{}, slots: map[string]int{}} // nothing repeats: no memo slots
	for i, a := range s.Audiences {
		tree, err := exprparser.Parse(a.When)
		if err != nil {
			continue
		}
		if t, ok := pr.clauses(fc, tree.Node); ok {
			ex.trees[i] = t
			continue
		}
		// A clause that does not stand alone (a let variable, say): the
		// whole rule is one clause.
		if c, ok := pr.leaf(fc, a.When, tree.Node); ok {
			ex.trees[i] = &ctree{c: c}
		}
	}
	return ex
}

// clauses splits n at && and || and compiles every leaf.
func (pr *program) clauses(fc *fastCompiler, n ast.Node) (*ctree, bool) {
	if b, ok := n.(*ast.BinaryNode); ok {
		switch b.Operator {
		case "&&", "and", "||", "or":
			l, ok1 := pr.clauses(fc, b.Left)
			r, ok2 := pr.clauses(fc, b.Right)
			return &ctree{or: b.Operator == "||" || b.Operator == "or", l: l, r: r}, ok1 && ok2
		}
	}
	c, ok := pr.leaf(fc, n.String(), n)
	return &ctree{c: c}, ok
}

// leaf compiles the clause src (whose parsed tree is n) and its reads.
func (pr *program) leaf(fc *fastCompiler, src string, n ast.Node) (*clause, bool) {
	prog, fast, err := pr.compileBoth(fc, src)
	if err != nil {
		return nil, false
	}
	c := &clause{src: src, prog: prog}
	if fast != nil {
		c.fast, _ = toVal(*fast)
	}
	seen := map[string]bool{}
	for _, rs := range readsOf(n, nil) {
		if seen[rs] {
			continue
		}
		seen[rs] = true
		prog, fast, err := pr.compileBoth(fc, rs)
		if err != nil {
			continue // a read that only means something in context
		}
		rd := &read{src: rs, prog: prog}
		if fast != nil {
			rd.fast, _ = anyOf(*fast)
		}
		c.reads = append(c.reads, rd)
	}
	return c, true
}

// compileBoth compiles src for the VM and, unless the program runs on the
// VM alone, for the fast path (nil when it has no closure for it).
func (pr *program) compileBoth(fc *fastCompiler, src string) (*vm.Program, *cnode, error) {
	prog, err := expr.Compile(src, exprOptions(pr.ids, false)...)
	if err != nil {
		return nil, nil, err
	}
	if pr.noFast {
		return prog, nil, nil
	}
	tree, err := checkTree(src, pr.ids, false)
	if err != nil {
		return prog, nil, nil
	}
	c, ok := fc.node(tree)
	if !ok {
		return prog, nil, nil
	}
	return prog, &c, nil
}

// exprOptions are the options every rule program is compiled with; asBool
// adds expr.AsBool (audiences; clauses and reads keep their own type).
func exprOptions(ids map[string]int, asBool bool) []expr.Option {
	opts := []expr.Option{expr.Env(vmEnv{}), expr.Patch(&rewriter{ids: ids})}
	if asBool {
		opts = append(opts, expr.AsBool())
	}
	return opts
}

// checkTree parses and type-checks src as expr.Compile does, returning the
// checked, helper-rewritten tree the fast path is built from.
func checkTree(src string, ids map[string]int, asBool bool) (ast.Node, error) {
	config := conf.CreateNew()
	for _, op := range exprOptions(ids, asBool) {
		op(config)
	}
	config.Check()
	tree, err := checker.ParseCheck(src, config)
	if err != nil {
		return nil, err
	}
	return tree.Node, nil
}

// envNames are the identifiers rules read from Env.
var envNames = func() map[string]bool {
	m := map[string]bool{}
	for i := range envType.NumField() {
		f := envType.Field(i)
		if tag := f.Tag.Get("expr"); f.IsExported() && tag != "-" {
			m[tag] = true
		}
	}
	return m
}()

// helpers are the user-facing helper functions; a call to one is a read.
var helpers = map[string]bool{"eventCount": true, "hasEvent": true, "viewedPage": true, "inAudience": true}

// readsOf appends the sources of the values n reads, in the order they
// appear: maximal field chains rooted at an Env field (traits.org.tier,
// page.query.utm_source), Env fields alone (random, traits) and helper
// calls. Arguments and dynamic keys are searched too.
func readsOf(n ast.Node, out []string) []string {
	if n == nil {
		return out
	}
	switch n := n.(type) {
	case *ast.IdentifierNode:
		if envNames[n.Value] {
			out = append(out, n.String())
		}
	case *ast.MemberNode:
		if !n.Method && envRooted(n) {
			out = append(out, n.String())
			return dynamicKeys(n, out)
		}
		out = readsOf(n.Node, out)
		if !n.Method {
			out = readsOf(n.Property, out)
		}
	case *ast.CallNode:
		if id, ok := n.Callee.(*ast.IdentifierNode); ok && helpers[id.Value] {
			out = append(out, n.String())
		} else {
			out = readsOf(n.Callee, out)
		}
		for _, a := range n.Arguments {
			out = readsOf(a, out)
		}
	case *ast.UnaryNode:
		out = readsOf(n.Node, out)
	case *ast.BinaryNode:
		out = readsOf(n.Right, readsOf(n.Left, out))
	case *ast.ChainNode:
		out = readsOf(n.Node, out)
	case *ast.SliceNode:
		out = readsOf(n.To, readsOf(n.From, readsOf(n.Node, out)))
	case *ast.BuiltinNode:
		for _, a := range n.Arguments {
			out = readsOf(a, out)
		}
	case *ast.PredicateNode:
		out = readsOf(n.Node, out)
	case *ast.ConditionalNode:
		out = readsOf(n.Exp2, readsOf(n.Exp1, readsOf(n.Cond, out)))
	case *ast.VariableDeclaratorNode:
		out = readsOf(n.Expr, readsOf(n.Value, out))
	case *ast.SequenceNode:
		for _, x := range n.Nodes {
			out = readsOf(x, out)
		}
	case *ast.ArrayNode:
		for _, x := range n.Nodes {
			out = readsOf(x, out)
		}
	case *ast.MapNode:
		for _, x := range n.Pairs {
			out = readsOf(x, out)
		}
	case *ast.PairNode:
		out = readsOf(n.Value, readsOf(n.Key, out))
	}
	return out
}

// envRooted reports whether the member chain m starts at an Env field.
func envRooted(m *ast.MemberNode) bool {
	for {
		switch n := m.Node.(type) {
		case *ast.IdentifierNode:
			return envNames[n.Value]
		case *ast.MemberNode:
			if n.Method {
				return false
			}
			m = n
		default:
			return false
		}
	}
}

// dynamicKeys appends the reads of the non-constant keys of chain m
// (traits[traits.industry] reads traits.industry too).
func dynamicKeys(m *ast.MemberNode, out []string) []string {
	for {
		if _, isConst := m.Property.(*ast.StringNode); !isConst {
			out = readsOf(m.Property, out)
		}
		next, ok := m.Node.(*ast.MemberNode)
		if !ok {
			return out
		}
		m = next
	}
}

// anyOf reads a node as a Go value, for explanations; false for kinds
// that are not values by themselves.
func anyOf(c cnode) (anyFn, bool) {
	switch c.kind {
	case kBool:
		return boxed(c.b), true
	case kInt:
		return boxed(c.i), true
	case kFloat:
		return boxed(c.f), true
	case kStr:
		return boxed(c.s), true
	case kAny, kNil:
		return c.a, true
	case kVal:
		return func(fr *frame) (any, bool) {
			v, ok := c.v(fr)
			return anyFromVal(v), ok && v.k != 0
		}, true
	case kMapAny:
		return boxed(fieldFn[map[string]any](c.off)), true
	case kMapStr:
		return boxed(fieldFn[map[string]string](c.off)), true
	}
	return nil, false
}

// boxed reads the T that f yields as an any.
func boxed[T any](f reader[T]) anyFn {
	return func(fr *frame) (any, bool) {
		v, ok := f(fr)
		return v, ok
	}
}

// explainTree evaluates t in expr's order and returns its outcome and, when
// that is not true, the first clause that failed with what went wrong.
func (r *runner) explainTree(t *ctree, st *explainStats) (outcome, *clause, string) {
	if t.c != nil {
		o, msg := r.evalClause(t.c, st)
		return o, t.c, msg
	}
	lo, lc, lmsg := r.explainTree(t.l, st)
	switch {
	case lo == outBad:
		return lo, lc, lmsg
	case !t.or && lo == outFalse:
		return lo, lc, lmsg
	case t.or && lo == outTrue:
		return outTrue, nil, ""
	}
	ro, rc, rmsg := r.explainTree(t.r, st)
	if t.or && ro == outFalse {
		return outFalse, lc, lmsg // both failed: the first did first
	}
	return ro, rc, rmsg
}

// evalClause evaluates one clause on the fast path, or on the VM when the
// fast path has no closure for it or bails.
func (r *runner) evalClause(c *clause, st *explainStats) (outcome, string) {
	if c.fast != nil {
		if v, ok := c.fast(&r.fr); ok && v.k != 0 {
			st.count(true)
			if v.k != kBool {
				return outBad, notBool(anyFromVal(v))
			}
			return boolOutcome(v.b), ""
		}
	}
	st.count(false)
	out, err := r.vm.Run(c.prog, r.box)
	if err != nil {
		return outBad, err.Error()
	}
	b, ok := out.(bool)
	if !ok {
		return outBad, notBool(out)
	}
	return boolOutcome(b), ""
}

func boolOutcome(b bool) outcome {
	if b {
		return outTrue
	}
	return outFalse
}

func notBool(v any) string {
	if v == nil {
		return "yields nil, not a boolean"
	}
	v = normalize(v)
	return fmt.Sprintf("yields %v (%T), not a boolean", v, v)
}

// anyFromVal is v as a Go value (nil for kNil and unmodelled values).
func anyFromVal(v val) any {
	switch v.k {
	case kBool:
		return v.b
	case kInt:
		return v.i
	case kFloat:
		return v.f
	case kStr:
		return v.s
	}
	return nil
}

// evalRead evaluates one read like evalClause.
func (r *runner) evalRead(rd *read, st *explainStats) Read {
	if rd.fast != nil {
		if v, ok := rd.fast(&r.fr); ok {
			st.count(true)
			return Read{Expr: rd.src, Value: normalize(v)}
		}
	}
	st.count(false)
	out, err := r.vm.Run(rd.prog, r.box)
	if err != nil {
		return Read{Expr: rd.src, Error: err.Error()}
	}
	return Read{Expr: rd.src, Value: normalize(out)}
}

func (st *explainStats) count(fast bool) {
	switch {
	case st == nil:
	case fast:
		st.fast++
	default:
		st.vm++
	}
}

// normalize gives a read value the one form both paths agree on: every
// integer as int64, maps and lists copied at the top level (they belong
// to the caller's Env). It also detaches the value from the runner: the
// VM reads Env fields out of the runner's box without copying them (see
// newRunner), so a field value it returns points into memory the next
// call overwrites.
func normalize(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case int:
		return int64(x)
	case int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return reflect.ValueOf(x).Convert(reflect.TypeFor[int64]()).Interface()
	case map[string]any:
		return maps.Clone(x)
	case map[string]string:
		return maps.Clone(x)
	case []any:
		return slices.Clone(x)
	}
	// An addressable copy's Interface copies the value out.
	rv := reflect.ValueOf(v)
	c := reflect.New(rv.Type()).Elem()
	c.Set(rv)
	return c.Interface()
}

// audienceError is the error of one audience that failed at run time,
// naming it; Match joins them.
type audienceError struct {
	i   int
	id  string
	err error
}

func (e *audienceError) Error() string { return fmt.Sprintf("rules: audience %q: %v", e.id, e.err) }
func (e *audienceError) Unwrap() error { return e.err }
