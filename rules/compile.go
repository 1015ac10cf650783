package rules

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unsafe"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
	"go.yaml.in/yaml/v3"
)

// vmEnv is the environment expressions are compiled against: the request's
// Env plus the helper functions, bound once per pooled runner to read that
// runner's Env.
//
// The user-facing helpers (eventCount, hasEvent, viewedPage, inAudience)
// are rewritten at compile time into the internal ones below, whose
// signatures are among expr's typed function kinds, so the VM calls them
// without reflection or argument slices: windows become integer
// milliseconds (parsed at load time when constant) and audience ids become
// indexes. The user-facing fields stay callable for any call shape the
// rewrite does not cover.
type vmEnv struct {
	Env

	EventCount func(string, ...string) int  `expr:"eventCount"`
	HasEvent   func(string, ...string) bool `expr:"hasEvent"`
	ViewedPage func(string, ...string) bool `expr:"viewedPage"`
	InAudience func(string) bool            `expr:"inAudience"`

	XEvents func(string, int) int `expr:"_events"`   // count of event name within window ms (-1: all time)
	XViews  func(string, int) int `expr:"_views"`    // count of views matching a path or glob within window ms
	XWindow func(string) int      `expr:"_window"`   // a window string as ms, for non-constant windows
	XAud    func(int) bool        `expr:"_audience"` // matched[i] of an audience evaluated earlier
	XTrait  func(any) any         `expr:"_trait"`    // Traits[key]: a map read without reflection

	// matched is the caller's result slice during a Match call.
	matched []bool
	// ids maps audience ids to indexes, for the reflective inAudience.
	ids map[string]int
}

// program is the compiled state of a Set.
type program struct {
	progs []*vm.Program // per audience, index as Set.Audiences
	order []int         // evaluation order: dependencies first
	costs []float64     // worst-case cost of each audience (cost.go)
	// fast holds the fast-path closure of each audience, nil where the VM
	// runs it; memoSlots is the number of shared sub-expressions.
	fast      []boolFn
	memoSlots int
	ids       map[string]int
	pool      sync.Pool // of *runner

	// noFast makes every audience, clause and read run on the VM (tests
	// compare the paths with it); explained holds the clause trees
	// Explain builds on first use.
	noFast      bool
	explainOnce sync.Once
	explained   *explainProg
}

// runner is one goroutine's evaluation state: a VM and an environment box
// whose fields the helper closures read.
type runner struct {
	fr  frame // fast-path state; fr.env points at env.Env
	vm  vm.VM
	box any    // holds a vmEnv by value (see newRunner)
	env *vmEnv // points at the value inside box
}

// newRunner builds a runner whose box holds a heap vmEnv value. The VM
// reads struct fields through reflection; with a pointer env every string
// field read would be copied to the heap, with a value env it is not, so
// the env is passed by value and updated in place through env, which
// points into the box's own heap copy (made fresh by reflect, never the
// shared zero value).
func (pr *program) newRunner() *runner {
	box := reflect.New(reflect.TypeFor[vmEnv]()).Elem().Interface()
	r := &runner{box: box, env: (*vmEnv)((*[2]unsafe.Pointer)(unsafe.Pointer(&box))[1])}
	r.fr.memo = make([]memo, pr.memoSlots)
	e := r.env
	e.ids = pr.ids
	e.EventCount = func(name string, w ...string) int { return int(countEvents(&e.Env, name, mustWindow(w))) }
	e.HasEvent = func(name string, w ...string) bool { return countEvents(&e.Env, name, mustWindow(w)) > 0 }
	e.ViewedPage = func(p string, w ...string) bool { return countViews(&e.Env, p, mustWindow(w)) > 0 }
	e.InAudience = func(id string) bool {
		i, ok := e.ids[id]
		if !ok {
			panic(fmt.Sprintf("unknown audience %q", id))
		}
		return e.matched[i]
	}
	e.XEvents = func(name string, w int) int { return int(countEvents(&e.Env, name, int64(w))) }
	e.XViews = func(p string, w int) int { return int(countViews(&e.Env, p, int64(w))) }
	e.XWindow = func(s string) int {
		ms, err := parseWindow(s)
		if err != nil {
			panic(fmt.Sprintf("invalid window %q: %v", s, err))
		}
		return int(ms)
	}
	e.XAud = func(i int) bool { return e.matched[i] }
	e.XTrait = func(k any) any { return e.Traits[k.(string)] }
	return r
}

func mustWindow(w []string) int64 {
	switch len(w) {
	case 0:
		return noWindow
	case 1:
		ms, err := parseWindow(w[0])
		if err != nil {
			panic(fmt.Sprintf("invalid window %q: %v", w[0], err))
		}
		return ms
	}
	panic("too many arguments: want (name, window?)")
}

// compileFast builds the fast-path closures of every audience it can. It
// type-checks each rule again (expr's optimizer rewrites the tree it
// compiles, and the closures are built from the checked tree as written),
// then counts repeated sub-expressions across the Set so each is evaluated
// once per call.
func (pr *program) compileFast(s *Set) {
	trees := make([]ast.Node, len(s.Audiences))
	fc := &fastCompiler{counts: map[string]int{}, slots: map[string]int{}}
	for i, a := range s.Audiences {
		tree, err := checkTree(a.When, pr.ids, true)
		if err != nil {
			continue // cannot happen after expr.Compile succeeded; the VM runs it
		}
		trees[i] = tree
		fc.count(tree)
	}
	pr.fast = make([]boolFn, len(s.Audiences))
	for i, t := range trees {
		if t != nil {
			pr.fast[i] = fc.audience(t)
		}
	}
	pr.memoSlots = len(fc.slots)
}

// compile compiles every audience of s and orders them by dependency.
func (p *parser) compile(s *Set) {
	pr := &program{ids: make(map[string]int, len(s.Audiences)), progs: make([]*vm.Program, len(s.Audiences))}
	for i, a := range s.Audiences {
		pr.ids[a.ID] = i
	}
	deps := make([][]int, len(s.Audiences))
	p.kind, p.base = "audience", ""
	for i, a := range s.Audiences {
		p.rule = a.ID
		w := p.whens[i]
		rw := &rewriter{ids: pr.ids}
		prog, err := expr.Compile(a.When, expr.Env(vmEnv{}), expr.AsBool(), expr.Patch(rw))
		rw.finish()
		for _, pe := range rw.errs {
			p.exprErr(w, a.When, pe.loc.From, pe.msg)
		}
		if err != nil {
			var fe *file.Error
			if errors.As(err, &fe) {
				p.exprErr(w, a.When, fe.From, fe.Message)
			} else {
				p.exprErr(w, a.When, 0, err.Error())
			}
			continue
		}
		if len(rw.errs) > 0 {
			continue
		}
		pr.progs[i] = prog
		deps[i] = rw.deps
	}
	pr.costs = p.costBudget(s, pr.ids, func(i int) bool { return pr.progs[i] != nil })
	if len(p.errs) > 0 {
		return
	}
	pr.order = p.order(s, deps)
	if len(p.errs) > 0 {
		return
	}
	pr.compileFast(s)
	pr.pool.New = func() any { return pr.newRunner() }
	s.prog = pr
}

// order sorts audiences so every inAudience dependency comes first (file
// order otherwise) and reports cycles.
func (p *parser) order(s *Set, deps [][]int) []int {
	const (
		unseen = iota
		active
		done
	)
	state := make([]int, len(deps))
	order := make([]int, 0, len(deps))
	var stack []int
	var visit func(i int) bool
	visit = func(i int) bool {
		switch state[i] {
		case done:
			return true
		case active:
			// stack holds the path; report the cycle from i.
			k := len(stack) - 1
			for stack[k] != i {
				k--
			}
			var path []string
			for _, j := range stack[k:] {
				path = append(path, fmt.Sprintf("%q", s.Audiences[j].ID))
			}
			path = append(path, fmt.Sprintf("%q", s.Audiences[i].ID))
			a := s.Audiences[i]
			p.errs = append(p.errs, &Error{Pos: p.pos(p.whens[i]), Kind: "audience", Rule: a.ID, Field: "when",
				Msg: "inAudience cycle: " + strings.Join(path, " -> ")})
			return false
		}
		state[i] = active
		stack = append(stack, i)
		for _, d := range deps[i] {
			if !visit(d) {
				return false
			}
		}
		stack = stack[:len(stack)-1]
		state[i] = done
		order = append(order, i)
		return true
	}
	for i := range deps {
		if state[i] == unseen && !visit(i) {
			return nil
		}
	}
	return order
}

// exprErr records an error at rune offset off of the expression src held
// by the YAML node w.
func (p *parser) exprErr(w *yaml.Node, src string, off int, msg string) {
	line, col := 0, 0 // 0-based line and rune column inside src
	for i, r := range []rune(src) {
		if i == off {
			break
		}
		if r == '\n' {
			line++
			col = 0
		} else {
			col++
		}
	}
	pos := p.pos(w)
	switch w.Style {
	case yaml.LiteralStyle, yaml.FoldedStyle:
		pos.Line = w.Line + 1 + line
		pos.Column = col + 1 + p.indent(w.Line+1)
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		if line == 0 {
			pos.Column += 1 + col
		}
	default:
		if line == 0 {
			pos.Column += col
		}
	}
	p.errs = append(p.errs, &Error{Pos: pos, Kind: "audience", Rule: p.rule, Field: "when", Msg: strings.TrimSpace(msg)})
}

// indent returns the number of leading spaces of 1-based line n.
func (p *parser) indent(n int) int {
	data := p.data
	for i := 1; i < n; i++ {
		k := strings.IndexByte(data, '\n')
		if k < 0 {
			return 0
		}
		data = data[k+1:]
	}
	return len(data) - len(strings.TrimLeft(data, " "))
}

// stringish reports whether n may be a string at run time.
func stringish(n ast.Node) bool {
	t := n.Type()
	return t == nil || t.Kind() == reflect.String || t.Kind() == reflect.Interface
}

// rewriter is an expr patch that turns helper calls into the internal
// typed functions, checks constant arguments and records inAudience
// dependencies.
type rewriter struct {
	ids   map[string]int
	loose []*ast.IdentifierNode // inAudience identifiers not (yet) rewritten
	deps  []int
	errs  []struct {
		loc file.Location
		msg string
	}
}

// finish reports inAudience used other than as a direct call.
func (rw *rewriter) finish() {
	for _, n := range rw.loose {
		rw.fail(n, "inAudience must be called directly with a constant audience id")
	}
	rw.loose = nil
}

func (rw *rewriter) fail(n ast.Node, format string, args ...any) {
	rw.errs = append(rw.errs, struct {
		loc file.Location
		msg string
	}{n.Location(), fmt.Sprintf(format, args...)})
}

// Visit implements ast.Visitor.
func (rw *rewriter) Visit(node *ast.Node) {
	if id, ok := (*node).(*ast.IdentifierNode); ok && id.Value == "inAudience" {
		// Every use must be a direct call with a constant id, which the
		// CallNode case below rewrites; loose ones are reported by finish.
		rw.loose = append(rw.loose, id)
		return
	}
	if m, ok := (*node).(*ast.MemberNode); ok {
		// traits.x and traits["x"]: expr reads maps through reflection,
		// which copies every any value to the heap; _trait does not.
		// (expr forbids redeclaring traits with let, so the identifier
		// always means the env field.)
		id, ok := m.Node.(*ast.IdentifierNode)
		s, isStr := m.Property.(*ast.StringNode)
		if ok && isStr && id.Value == "traits" {
			ast.Patch(node, &ast.CallNode{
				Callee:    &ast.IdentifierNode{Value: "_trait"},
				Arguments: []ast.Node{&ast.StringNode{Value: s.Value}},
			})
		}
		return
	}
	call, ok := (*node).(*ast.CallNode)
	if !ok {
		return
	}
	callee, ok := call.Callee.(*ast.IdentifierNode)
	if !ok {
		return
	}
	args := call.Arguments
	switch name := callee.Value; name {
	case "inAudience":
		// A direct call: reported below if its argument is wrong.
		rw.loose = slices.DeleteFunc(rw.loose, func(n *ast.IdentifierNode) bool { return n == callee })
		if len(args) != 1 {
			return // the type checker reports it
		}
		s, ok := args[0].(*ast.StringNode)
		if !ok {
			rw.fail(args[0], "inAudience needs a constant audience id")
			return
		}
		i, ok := rw.ids[s.Value]
		if !ok {
			rw.fail(args[0], "unknown audience %q", s.Value)
			return
		}
		rw.deps = append(rw.deps, i)
		ast.Patch(node, &ast.CallNode{
			Callee:    &ast.IdentifierNode{Value: "_audience"},
			Arguments: []ast.Node{&ast.IntegerNode{Value: i}},
		})
	case "eventCount", "hasEvent", "viewedPage":
		if len(args) == 0 || len(args) > 2 {
			if len(args) > 2 {
				rw.fail(call, "%s takes a name and an optional window, got %d arguments", name, len(args))
			}
			return
		}
		for _, a := range args {
			if !stringish(a) {
				return // the type checker reports it against the public signature
			}
		}
		if s, ok := args[0].(*ast.StringNode); ok && name == "viewedPage" {
			if err := checkGlob(s.Value); err != nil {
				rw.fail(args[0], "invalid page pattern %q: %v", s.Value, err)
				return
			}
		}
		var window ast.Node = &ast.IntegerNode{Value: noWindow}
		if len(args) == 2 {
			if s, ok := args[1].(*ast.StringNode); ok {
				ms, err := parseWindow(s.Value)
				if err != nil {
					rw.fail(args[1], "invalid window %q: %v", s.Value, err)
					return
				}
				window = &ast.IntegerNode{Value: int(ms)}
			} else {
				window = &ast.CallNode{Callee: &ast.IdentifierNode{Value: "_window"}, Arguments: []ast.Node{args[1]}}
			}
		}
		fn := "_events"
		if name == "viewedPage" {
			fn = "_views"
		}
		var repl ast.Node = &ast.CallNode{
			Callee:    &ast.IdentifierNode{Value: fn},
			Arguments: []ast.Node{args[0], window},
		}
		if name != "eventCount" {
			repl = &ast.BinaryNode{Operator: ">", Left: repl, Right: &ast.IntegerNode{Value: 0}}
		}
		ast.Patch(node, repl)
	}
}
