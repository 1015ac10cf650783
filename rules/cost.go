package rules

import (
	"fmt"
	"math"
	"reflect"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/conf"
)

// MaxCost is the most a single audience rule may cost, in steps, on the
// worst input the engine accepts; Parse rejects a rule whose worst case is
// higher. A step is about one expression node evaluated, or one element
// visited by an iterating builtin: 1 to 10 ns on a 2-core machine, so a rule
// at the budget evaluates in about 10 ms at worst. See "Cost" in the package
// documentation for how the cost is counted.
const MaxCost = 1_000_000

// Sizes the cost model assumes for what a rule reads at run time. The
// engine's input limits keep every profile within them (its tests hold it
// to these constants).
const (
	// MaxInputLen bounds any value read from an [Env]: the bytes of a
	// string, the entries of an array or map, and the JSON size of a trait
	// value with everything nested in it.
	MaxInputLen = 32 << 10
	// MaxHistoryNames bounds the names in Env.Events, and in Env.Views.
	MaxHistoryNames = 256
	// MaxHistoryBytes bounds the bytes of all names in Env.Events, and of
	// all names in Env.Views.
	MaxHistoryBytes = 64 << 10
)

const (
	// scanBytes is how many bytes a step compares or searches
	// (==, <, contains, startsWith, map keys, ...).
	scanBytes = 16
	// patternBytes is how many bytes of a pattern (a regular expression,
	// a glob) add one step per byte matched.
	patternBytes = 8
	// runtimeRange is the size assumed for a range whose bounds are not
	// constant, and the count assumed for a non-constant repeat: expr's
	// memory budget (conf.DefaultMemoryBudget) stops larger ones at run
	// time.
	runtimeRange = 1e6
)

// shape is what a value may be at run time, as far as cost goes.
type shape uint8

const (
	shapeScalar shape = iota // number, bool, nil, time, struct
	shapeString
	shapeColl // array or map
	shapeAny  // a string or a collection: unknown until run time
)

// bound is an upper bound on a value: its length (bytes of a string,
// entries of a collection), its deep size (bytes of a string; entries plus
// their deep sizes for a collection) and, for collections, a bound on
// every element (map value).
type bound struct {
	shape shape
	n     float64
	size  float64
	elem  *bound
}

var (
	scalarBound = &bound{shape: shapeScalar, size: 1}
	// inputBound is a value read from the environment whose type is not
	// known (a trait): a string or a collection of such values.
	inputBound = func() *bound {
		b := &bound{shape: shapeAny, n: MaxInputLen, size: MaxInputLen}
		b.elem = b
		return b
	}()
	inputString = stringBound(MaxInputLen)
	infinite    = &bound{shape: shapeAny, n: math.Inf(1), size: math.Inf(1)}
)

func init() { infinite.elem = infinite }

func stringBound(n float64) *bound { return &bound{shape: shapeString, n: n, size: n} }

func collBound(n, size float64, elem *bound) *bound {
	if elem == nil {
		elem = scalarBound
	}
	return &bound{shape: shapeColl, n: n, size: size, elem: elem}
}

// element returns the bound of the largest element of b (of a character,
// for a string): no element is larger than b itself.
func (b *bound) element() *bound {
	switch b.shape {
	case shapeString:
		return stringBound(4)
	case shapeColl, shapeAny:
		if b.elem != nil {
			return clamp(b.elem, b.size)
		}
		return clamp(inputBound, b.size)
	}
	return scalarBound
}

// clamp returns b limited to length and size s.
func clamp(b *bound, s float64) *bound {
	if b.n <= s && b.size <= s {
		return b
	}
	out := *b
	out.n, out.size = math.Min(b.n, s), math.Min(b.size, s)
	return &out
}

// items is the number of elements an iterating builtin visits in b. A
// value of unknown shape is bounded in bytes; as a collection it holds at
// most half as many entries, each taking at least two bytes of JSON.
func (b *bound) items() float64 {
	switch b.shape {
	case shapeColl:
		return b.n
	case shapeAny:
		return math.Ceil(b.n / 2)
	}
	return 0 // not iterable: a run-time error
}

// eachElement bounds the sum of f over the elements of coll. Element sizes
// add up to at most coll's size, and f grows with the size of its element
// (costs are sums and products of sizes), so the sum is largest when as
// many elements as the size allows are as large as the element bound
// allows, and the rest are of size one.
func eachElement(coll *bound, f func(elem *bound) float64) float64 {
	n := coll.items()
	if n <= 0 {
		return 0
	}
	big := coll.element()
	full := math.Min(n, math.Max(1, math.Floor(coll.size/math.Max(big.size, 1))))
	cost := full * f(big)
	if rest := n - full; rest > 0 {
		cost += rest * f(clamp(big, 1))
	}
	return cost
}

// scan is the cost of comparing or hashing b once.
func (b *bound) scan() float64 {
	if b.shape == shapeScalar {
		return 0
	}
	if b.shape == shapeString {
		return b.n / scanBytes
	}
	return b.size
}

// join is the least bound covering a and b.
func join(a, b *bound) *bound { return joinDepth(a, b, 0) }

func joinDepth(a, b *bound, depth int) *bound {
	switch {
	case a == nil:
		return b
	case b == nil || a == b:
		return a
	case a == infinite || b == infinite:
		return infinite
	case depth > 16:
		return inputBound
	}
	s := a.shape
	if s != b.shape {
		switch {
		case s == shapeScalar:
			s = b.shape
		case b.shape == shapeScalar:
		default:
			s = shapeAny
		}
	}
	out := &bound{shape: s, n: math.Max(a.n, b.n), size: math.Max(a.size, b.size)}
	if a.elem != nil || b.elem != nil {
		out.elem = joinDepth(a.elem, b.elem, depth+1)
	}
	return out
}

// resized returns b with length and size s, keeping its element bound.
func resized(b *bound, s float64) *bound {
	out := *b
	if out.shape == shapeScalar {
		out.shape = shapeAny
	}
	out.n, out.size = s, s
	if out.elem == nil && out.shape != shapeString {
		out.elem = inputBound
	}
	return &out
}

// typeBound bounds a value of static type t read from the environment.
func typeBound(t reflect.Type) *bound {
	if t == nil {
		return inputBound
	}
	switch t.Kind() {
	case reflect.String:
		return inputString
	case reflect.Slice, reflect.Array, reflect.Map:
		return collBound(MaxInputLen, MaxInputLen, typeBound(t.Elem()))
	case reflect.Interface:
		return inputBound
	case reflect.Pointer:
		return typeBound(t.Elem())
	}
	return scalarBound
}

// valueBound bounds a constant value.
func valueBound(v any) *bound {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String:
		return stringBound(float64(rv.Len()))
	case reflect.Slice, reflect.Array, reflect.Map:
		n := float64(rv.Len())
		return collBound(n, n, inputBound)
	}
	return scalarBound
}

// costBudget checks the worst-case cost of every audience of s that
// compiled, reports the rules over MaxCost at the construct that takes
// them over, and returns the cost of each audience.
func (p *parser) costBudget(s *Set, ids map[string]int, compiled func(i int) bool) []float64 {
	costs := make([]float64, len(s.Audiences))
	for i, a := range s.Audiences {
		if !compiled(i) {
			continue
		}
		total, at, why, err := ruleCost(a.When, ids)
		costs[i] = total
		if err != nil || total <= MaxCost {
			continue // compile errors are reported by compile
		}
		msg := fmt.Sprintf("costs up to %s steps on the worst input, over the budget of %s per rule",
			steps(total), steps(MaxCost))
		if why != "" {
			msg += ": " + why
		}
		p.rule = a.ID
		p.exprErr(p.whens[i], a.When, at.Location().From, msg)
	}
	return costs
}

// ruleCost returns the worst-case cost of the rule src, the innermost node
// that alone is over MaxCost (the root when none is) and what makes it so.
// ids maps audience ids to indexes, for inAudience.
func ruleCost(src string, ids map[string]int) (total float64, at ast.Node, why string, err error) {
	config := conf.CreateNew()
	for _, op := range []expr.Option{expr.Env(vmEnv{}), expr.AsBool(), expr.Patch(&rewriter{ids: ids})} {
		op(config)
	}
	config.Check()
	tree, err := checker.ParseCheck(src, config)
	if err != nil {
		return 0, nil, "", err
	}
	c := &coster{}
	total, _ = c.node(tree.Node)
	if c.culprit != nil {
		return total, c.culprit, c.why, nil
	}
	return total, tree.Node, "", nil
}

// steps formats a step count.
func steps(x float64) string {
	if math.IsInf(x, 1) || x > 1e18 {
		return "unboundedly many"
	}
	if x < 1e7 {
		return fmt.Sprintf("%.0f", x)
	}
	return fmt.Sprintf("%.2g", x)
}

// coster computes the worst-case cost of one checked expression tree.
type coster struct {
	preds []predScope // the predicates being costed, innermost last
	vars  []letVar    // let variables in scope, innermost last
	trial int         // > 0 while trying accumulator bounds for reduce

	// culprit is the innermost node whose cost alone is over MaxCost, and
	// why says what makes it so.
	culprit ast.Node
	why     string
}

type predScope struct {
	elem, acc *bound
}

type letVar struct {
	name string
	b    *bound
}

// over records n as the culprit when cost is over the budget and nothing
// inside n was.
func (c *coster) over(n ast.Node, cost float64, why func() string) {
	if cost > MaxCost && c.culprit == nil && c.trial == 0 {
		c.culprit, c.why = n, why()
	}
}

// node returns the worst-case cost of evaluating n once and a bound on its
// value.
func (c *coster) node(n ast.Node) (float64, *bound) {
	switch n := n.(type) {
	case *ast.NilNode, *ast.BoolNode, *ast.IntegerNode, *ast.FloatNode:
		return 1, scalarBound
	case *ast.StringNode:
		return 1, stringBound(float64(len(n.Value)))
	case *ast.BytesNode:
		return 1, stringBound(float64(len(n.Value)))
	case *ast.ConstantNode:
		return 1, valueBound(n.Value)
	case *ast.IdentifierNode:
		for i := len(c.vars) - 1; i >= 0; i-- {
			if c.vars[i].name == n.Value {
				return 1, c.vars[i].b
			}
		}
		return 1, typeBound(n.Type())
	case *ast.PointerNode:
		if len(c.preds) == 0 {
			return 1, inputBound
		}
		sc := c.preds[len(c.preds)-1]
		switch n.Name {
		case "":
			return 1, sc.elem
		case "acc":
			if sc.acc != nil {
				return 1, sc.acc
			}
			return 1, inputBound
		}
		return 1, scalarBound
	case *ast.UnaryNode:
		k, _ := c.node(n.Node)
		return k + 1, scalarBound
	case *ast.BinaryNode:
		return c.binary(n)
	case *ast.ChainNode:
		return c.node(n.Node)
	case *ast.MemberNode:
		kn, base := c.node(n.Node)
		kp, key := c.node(n.Property)
		var b *bound
		if base.shape == shapeScalar {
			b = typeBound(n.Type()) // a field of an environment struct
		} else {
			b = base.element()
		}
		return kn + kp + key.scan() + 1, b
	case *ast.SliceNode:
		k, b := c.node(n.Node)
		if n.From != nil {
			kf, _ := c.node(n.From)
			k += kf
		}
		if n.To != nil {
			kt, _ := c.node(n.To)
			k += kt
		}
		return k + 1, b
	case *ast.CallNode:
		return c.call(n)
	case *ast.BuiltinNode:
		return c.builtin(n)
	case *ast.PredicateNode:
		return c.node(n.Node)
	case *ast.ConditionalNode:
		kc, _ := c.node(n.Cond)
		k1, b1 := c.node(n.Exp1)
		k2, b2 := c.node(n.Exp2)
		return kc + math.Max(k1, k2) + 1, join(b1, b2)
	case *ast.VariableDeclaratorNode:
		kv, bv := c.node(n.Value)
		c.vars = append(c.vars, letVar{n.Name, bv})
		ke, be := c.node(n.Expr)
		c.vars = c.vars[:len(c.vars)-1]
		return kv + ke + 1, be
	case *ast.SequenceNode:
		k, b := 0.0, scalarBound
		for _, e := range n.Nodes {
			ke, be := c.node(e)
			k += ke
			b = be
		}
		return k, b
	case *ast.ArrayNode:
		return c.array(n)
	case *ast.MapNode:
		k, size := 1.0, 0.0
		var elem *bound
		for _, pn := range n.Pairs {
			pair, ok := pn.(*ast.PairNode)
			if !ok {
				kk, _ := c.node(pn)
				k += kk
				continue
			}
			kk, bk := c.node(pair.Key)
			kv, bv := c.node(pair.Value)
			k += kk + kv + bk.scan() + 1
			size += 1 + bk.size + bv.size
			elem = join(elem, bv)
		}
		return k, collBound(float64(len(n.Pairs)), size, elem)
	}
	// A node kind this model does not know (a newer expr): refuse rather
	// than guess.
	c.over(n, math.Inf(1), func() string { return fmt.Sprintf("no cost model for %T", n) })
	return math.Inf(1), inputBound
}

// literal reports whether n is a scalar literal expr's optimizer folds into
// a constant array element.
func literal(n ast.Node) bool {
	switch n := n.(type) {
	case *ast.IntegerNode, *ast.FloatNode, *ast.StringNode, *ast.BoolNode:
		return true
	case *ast.UnaryNode:
		switch n.Node.(type) {
		case *ast.IntegerNode, *ast.FloatNode:
			return n.Operator == "-" || n.Operator == "+"
		}
	}
	return false
}

func (c *coster) array(n *ast.ArrayNode) (float64, *bound) {
	k, size := 1.0, 0.0
	var elem *bound
	folded := true // an array of literals is built once, at compile time
	for _, e := range n.Nodes {
		ke, be := c.node(e)
		k += ke
		size += 1 + be.size
		elem = join(elem, be)
		folded = folded && literal(e)
	}
	if folded {
		k = 1
	} else {
		k += float64(len(n.Nodes))
	}
	return k, collBound(float64(len(n.Nodes)), size, elem)
}

// hashedIn reports whether `left in right` is a map lookup after expr's
// optimizer: a non-empty literal array of strings, or of integers with an
// integer needle.
func hashedIn(left, right ast.Node) bool {
	arr, ok := right.(*ast.ArrayNode)
	if !ok || len(arr.Nodes) == 0 {
		return false
	}
	allStr, allInt := true, true
	for _, e := range arr.Nodes {
		_, isStr := e.(*ast.StringNode)
		_, isInt := e.(*ast.IntegerNode)
		allStr, allInt = allStr && isStr, allInt && isInt
	}
	t := left.Type()
	return allStr || (allInt && t != nil && t.Kind() == reflect.Int)
}

// equal is the cost of comparing a value bounded by a with one bounded by
// b.
func equal(a, b *bound) float64 { return 1 + math.Min(a.scan(), b.scan()) }

func (c *coster) binary(n *ast.BinaryNode) (float64, *bound) {
	kl, bl := c.node(n.Left)
	kr, br := c.node(n.Right)
	k := kl + kr + 1
	switch n.Operator {
	case "and", "&&", "or", "||":
		return k, scalarBound
	case "==", "!=":
		return k + equal(bl, br), scalarBound
	case "<", ">", "<=", ">=":
		return k + math.Min(bl.scan(), br.scan()), scalarBound
	case "contains", "startsWith", "endsWith":
		return k + bl.scan() + br.scan(), scalarBound
	case "-", "*", "/", "%", "**", "^":
		return k, scalarBound
	case "+":
		if bl.shape == shapeScalar || br.shape == shapeScalar || bl.shape == shapeColl || br.shape == shapeColl {
			return k, scalarBound // numbers, times and durations; + concatenates only strings
		}
		out := stringBound(bl.n + br.n)
		cost := k + out.n
		c.over(n, cost, func() string { return "+ concatenates strings of up to " + steps(out.n) + " bytes" })
		return cost, out
	case "in":
		if hashedIn(n.Left, n.Right) {
			return kl + 1 + bl.scan() + 1, scalarBound // the array is a constant map
		}
		if t := n.Right.Type(); t != nil && (t.Kind() == reflect.Map || t.Kind() == reflect.Struct) {
			return k + bl.scan(), scalarBound
		}
		cost := k + eachElement(br, func(e *bound) float64 { return equal(bl, e) })
		c.over(n, cost, func() string {
			return fmt.Sprintf("in searches up to %s elements", steps(br.items()))
		})
		return cost, scalarBound
	case "matches":
		match := bl.n * (2 + br.n/patternBytes)
		if _, constant := n.Right.(*ast.StringNode); !constant {
			match += 64 * br.n // compiled on every evaluation
		}
		cost := k + match
		c.over(n, cost, func() string {
			return fmt.Sprintf("matches runs a pattern of up to %s bytes over up to %s bytes", steps(br.n), steps(bl.n))
		})
		return cost, scalarBound
	case "..":
		size := runtimeRange
		from, ok1 := n.Left.(*ast.IntegerNode)
		to, ok2 := n.Right.(*ast.IntegerNode)
		if ok1 && ok2 {
			size = math.Max(0, float64(to.Value)-float64(from.Value)+1)
		}
		cost := k + size
		c.over(n, cost, func() string {
			if ok1 && ok2 {
				return fmt.Sprintf("the range builds %s elements", steps(size))
			}
			return "a range whose bounds are not constants may build up to " + steps(size) + " elements"
		})
		return cost, collBound(size, size, scalarBound)
	case "??":
		return k, join(bl, br)
	}
	c.over(n, math.Inf(1), func() string { return "no cost model for operator " + n.Operator })
	return math.Inf(1), inputBound
}

// countCost is the cost of counting one history: a day at a time.
const countCost = HistoryDays + 1

// globCost is the cost of matching a glob of patternLen bytes against
// every view.
func globCost(patternLen float64) float64 {
	return MaxHistoryNames*(HistoryDays+1) + MaxHistoryBytes*(1+patternLen/patternBytes)/2
}

func (c *coster) call(n *ast.CallNode) (float64, *bound) {
	k := 1.0
	var args []*bound
	for _, a := range n.Arguments {
		ka, ba := c.node(a)
		k += ka
		args = append(args, ba)
	}
	if m, ok := n.Callee.(*ast.MemberNode); ok {
		// A method of an environment value (time.Time, Location): cheap,
		// except that Format's output grows with its layout.
		km, _ := c.node(m.Node)
		out := 64.0
		for _, a := range args {
			out += 4 * a.n
		}
		if t := n.Type(); t != nil && t.Kind() == reflect.String {
			return k + km + out, stringBound(out)
		}
		return k + km + out/scanBytes, typeBound(n.Type())
	}
	name := ""
	if id, ok := n.Callee.(*ast.IdentifierNode); ok {
		name = id.Value
	}
	keys := 0.0
	for _, a := range args {
		keys += a.scan()
	}
	switch name {
	case "_audience":
		return k, scalarBound
	case "_trait":
		return k + keys, inputBound
	case "_window":
		return k + keys, scalarBound
	case "_events", "eventCount", "hasEvent":
		return k + keys + countCost, scalarBound
	case "_views", "viewedPage":
		if len(n.Arguments) == 0 {
			return k, scalarBound
		}
		if s, ok := n.Arguments[0].(*ast.StringNode); ok && !isGlob(s.Value) {
			return k + keys + countCost, scalarBound // an exact path: one lookup
		}
		cost := k + keys + globCost(args[0].n)
		c.over(n, cost, func() string { return "viewedPage matches a pattern against every viewed page" })
		return cost, scalarBound
	case "inAudience":
		return k + keys, scalarBound
	}
	// A function held in a let variable (let f = viewedPage): cost it as
	// the dearest helper.
	pattern := 0.0
	for _, a := range args {
		pattern = math.Max(pattern, a.n)
	}
	return k + keys + globCost(pattern), typeBound(n.Type())
}

// builtinCosts lists the builtins the model knows, beyond the iterating
// ones; TestCostCoversBuiltins holds it to expr's list.
var builtinCosts = map[string]bool{}

func init() {
	for _, names := range []string{
		"all none any one filter map find findIndex findLast findLastIndex count sum groupBy sortBy reduce",
		"len type abs ceil floor round int float string trim trimPrefix trimSuffix upper lower",
		"split splitAfter replace repeat join indexOf lastIndexOf hasPrefix hasSuffix max min mean median",
		"toJSON fromJSON toBase64 fromBase64 now duration date timezone first last get take keys values",
		"toPairs fromPairs reverse uniq concat flatten sort",
		"bitand bitor bitxor bitnand bitnot bitshl bitshr bitushr",
	} {
		for _, name := range strings.Fields(names) {
			builtinCosts[name] = true
		}
	}
}

func (c *coster) builtin(n *ast.BuiltinNode) (float64, *bound) {
	switch n.Name {
	case "all", "none", "any", "one", "filter", "map", "find", "findIndex", "findLast", "findLastIndex",
		"count", "sum", "groupBy", "sortBy", "reduce":
		return c.iterate(n)
	}
	k := 1.0
	args := make([]*bound, len(n.Arguments))
	for i, a := range n.Arguments {
		ka, ba := c.node(a)
		k += ka
		args[i] = ba
	}
	arg := func(i int) *bound {
		if i < len(args) {
			return args[i]
		}
		return scalarBound
	}
	a0 := arg(0)
	var cost float64
	var out *bound
	switch n.Name {
	case "type", "abs", "ceil", "floor", "round", "now", "timezone", "first", "last", "get",
		"bitand", "bitor", "bitxor", "bitnand", "bitnot", "bitshl", "bitshr", "bitushr":
		cost, out = k, scalarBound
		if n.Name == "first" || n.Name == "last" || n.Name == "get" {
			out = a0.element()
		}
		if n.Name == "type" {
			out = stringBound(16)
		}
	case "len":
		cost, out = k, scalarBound // arrays and maps know their length
		if a0.shape == shapeString || a0.shape == shapeAny {
			cost += a0.n / scanBytes // strings count their runes
		}
	case "int", "float", "duration", "date":
		for _, a := range args {
			k += a.n
		}
		cost, out = k, scalarBound
	case "string", "toJSON":
		// Up to 6 bytes of escapes a byte, and toJSON's indentation; the
		// encoders write about four bytes a step.
		size := 24 * a0.size
		cost, out = k+size/4, stringBound(size)
	case "fromJSON":
		cost, out = k+a0.n, resized(inputBound, a0.n)
	case "trim", "trimPrefix", "trimSuffix":
		cost, out = k+a0.n+arg(1).n, stringBound(a0.n)
	case "upper", "lower":
		// Case mapping can lengthen some runes by half.
		cost, out = k+2*a0.n, stringBound(1.5*a0.n)
	case "toBase64":
		cost, out = k+2*a0.n, stringBound(4*a0.n/3+4)
	case "fromBase64":
		cost, out = k+a0.n, stringBound(a0.n)
	case "indexOf", "lastIndexOf", "hasPrefix", "hasSuffix":
		cost, out = k+a0.scan()+arg(1).scan(), scalarBound
	case "split", "splitAfter":
		// Up to one part per byte (per rune when splitting on "").
		cost, out = k+2*a0.n, collBound(a0.n+1, 2*a0.n+1, stringBound(a0.n))
	case "replace":
		// An empty old string inserts new between every rune.
		size := a0.n + (a0.n+1)*arg(2).n
		cost, out = k+a0.n+size, stringBound(size)
	case "repeat":
		count := runtimeRange
		if len(n.Arguments) > 1 {
			if v, ok := n.Arguments[1].(*ast.IntegerNode); ok {
				count = math.Max(0, float64(v.Value))
			}
		}
		size := a0.n * count
		cost, out = k+size, stringBound(size)
		c.over(n, cost, func() string {
			return fmt.Sprintf("repeat builds up to %s bytes", steps(size))
		})
	case "join":
		sep := arg(1).n
		size := a0.size + a0.n*sep
		cost, out = k+a0.n+size, stringBound(size)
	case "max", "min", "mean", "median":
		// Over the arguments, or over one array argument (median sorts).
		for _, a := range args {
			if a.shape != shapeScalar {
				cost += a.n * (1 + math.Log2(a.n+1))
			}
		}
		cost, out = k+cost+float64(len(args)), scalarBound
	case "take":
		cost, out = k+a0.n, a0
	case "keys", "values", "toPairs", "reverse", "uniq":
		elem := a0.element()
		if n.Name == "keys" {
			elem = inputString
		}
		if n.Name == "toPairs" {
			elem = collBound(2, 2+a0.size, join(inputString, a0.element()))
		}
		cost, out = k+a0.n+2*a0.scan(), collBound(a0.n, a0.size, elem)
	case "fromPairs":
		cost, out = k+a0.size, collBound(a0.n, a0.size, a0.element().element())
	case "concat":
		var total, size float64
		var elem *bound
		for _, a := range args {
			total += a.n
			size += a.size
			elem = join(elem, a.element())
		}
		cost, out = k+total, collBound(total, size, elem)
	case "flatten":
		// Reflection on every nested element.
		cost, out = k+16*a0.size, collBound(a0.size, a0.size, inputBound)
	case "sort":
		depth := math.Log2(a0.items() + 1) // comparisons per element
		cost, out = k+eachElement(a0, func(e *bound) float64 { return depth * (1 + e.scan()) }), a0
	default:
		// A builtin of a newer expr: refuse rather than guess.
		c.over(n, math.Inf(1), func() string { return "no cost model for builtin " + n.Name })
		return math.Inf(1), inputBound
	}
	c.over(n, cost, func() string {
		return fmt.Sprintf("%s over a value of up to %s bytes or elements", n.Name, steps(math.Max(a0.n, a0.size)))
	})
	return cost, out
}

// iterate costs a builtin that runs a predicate on every element of its
// first argument: in effect the collection's length times the predicate's
// cost (see eachElement).
func (c *coster) iterate(n *ast.BuiltinNode) (float64, *bound) {
	if len(n.Arguments) == 0 {
		return 1, scalarBound
	}
	kc, coll := c.node(n.Arguments[0])
	items := coll.items()
	big := coll.element()
	var pred ast.Node
	if len(n.Arguments) > 1 {
		pred = n.Arguments[1]
	}
	k := kc + 1
	var init *bound
	if len(n.Arguments) > 2 {
		ki, bi := c.node(n.Arguments[2])
		k += ki
		init = bi
	}
	predCost := func(elem, acc *bound) (float64, *bound) {
		if pred == nil {
			return 0, elem
		}
		c.preds = append(c.preds, predScope{elem: elem, acc: acc})
		defer func() { c.preds = c.preds[:len(c.preds)-1] }()
		return c.node(pred)
	}
	var acc *bound
	if n.Name == "reduce" {
		if init == nil {
			init = big
		}
		acc = c.accumulator(init, items, func(acc *bound) (float64, *bound) { return predCost(big, acc) })
	}
	var most float64 // the dearest single predicate run
	each := eachElement(coll, func(e *bound) float64 {
		kp, _ := predCost(e, acc)
		most = math.Max(most, kp+1)
		return kp + 1
	})
	_, bp := predCost(big, acc)
	cost := k + each
	var out *bound
	switch n.Name {
	case "filter", "sortBy":
		out = collBound(items, coll.size, coll.elem)
		cost += items
		if n.Name == "sortBy" {
			depth := math.Log2(items + 1)
			cost += items * depth * (1 + bp.scan())
		}
	case "map":
		out = collBound(items, items*(1+bp.size), bp)
		cost += items
	case "groupBy":
		out = collBound(items, coll.size+items, collBound(items, coll.size, coll.elem))
		cost += items * (1 + bp.scan())
	case "find", "findLast":
		out = big
	case "reduce":
		out = bp
	default:
		out = scalarBound
	}
	c.over(n, cost, func() string {
		return fmt.Sprintf("%s runs its predicate on up to %s elements, at up to %s steps each",
			n.Name, steps(items), steps(most))
	})
	return cost, out
}

// accumulator bounds #acc of a reduce over items elements starting from
// init: it tries the predicate on accumulators of two sizes to see how
// much one step grows it. Growth that is not additive (#acc + #acc) is
// unbounded.
func (c *coster) accumulator(init *bound, items float64, pred func(acc *bound) (float64, *bound)) *bound {
	c.trial++
	defer func() { c.trial-- }()
	_, b := pred(init)
	if b.shape == shapeScalar && init.shape == shapeScalar {
		return init // numbers and booleans do not grow
	}
	base := join(init, b)
	s := math.Max(base.size, 1)
	a1, a2 := resized(base, s), resized(base, 2*s+1024)
	_, r1 := pred(a1)
	_, r2 := pred(a2)
	d1, d2 := r1.size-a1.size, r2.size-a2.size
	if d2 > d1+1e-9*math.Abs(d1) {
		return infinite
	}
	return resized(base, base.size+items*math.Max(d1, 0))
}
