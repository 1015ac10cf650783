package rules

import (
	"cmp"
	"math"
	"reflect"
	"regexp"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/expr-lang/expr/ast"
)

// The fast path: the checked (and helper-rewritten) AST of an audience is
// compiled into Go closures over *Env, so the common rule shapes run
// without expr's VM, reflection or boxing. expr stays the language: its
// parser and type checker produce the tree, and its VM runs every audience
// the fast compiler does not fully understand.
//
// Every closure returns (value, ok). ok == false means "bail": the value
// at hand is of a dynamic type this path does not model, or expr would
// report a run-time error. A bailing audience is evaluated again by the
// VM, which then gives the authoritative answer (and the real error), so
// the fast path only has to be right when it does not bail. The
// differential tests check exactly that.

// frame is the per-call state the closures read.
type frame struct {
	env     *Env
	now     int64 // env.Now in Unix milliseconds, once nowSet
	nowSet  bool
	matched []bool
	gen     uint32 // memo generation of this call
	memo    []memo
}

// nowMilli returns env.Now in Unix milliseconds, read once per call (a
// zero Now means the clock, which costs a system call).
func (fr *frame) nowMilli() int64 {
	if !fr.nowSet {
		fr.now, fr.nowSet = fr.env.nowMilli(), true
	}
	return fr.now
}

// memo holds one shared sub-expression's value for the call whose
// generation it carries.
type memo struct {
	gen uint32
	b   bool
	n   int64
	a   any
	h   *History
}

// reader is the closure of a compiled node of Go type T: its value, and
// false to bail. The builders below are generic over T where one serves
// every kind.
type reader[T any] = func(*frame) (T, bool)

type (
	boolFn  = reader[bool]
	intFn   = reader[int64]
	floatFn = reader[float64]
	strFn   = reader[string]
	anyFn   = reader[any]
	valFn   = reader[val]
)

// kind is the static kind of a compiled node.
type kind uint8

const (
	kBool   kind = iota + 1
	kInt         // any Go integer type, held as int64
	kFloat       // float64
	kStr         // string
	kAny         // interface value (traits); dynamic
	kNil         // the nil literal
	kArray       // a literal array of constants
	kStruct      // a struct inside Env (not a value by itself)
	kMapAny      // a map[string]any field (traits)
	kMapStr      // a map[string]string field (page.query)
	kVal         // a dynamic value of a modelled kind (arithmetic on traits, ?:)
)

// cnode is a compiled node: its kind and the accessor for that kind.
type cnode struct {
	kind kind
	b    boolFn
	i    intFn
	f    floatFn
	s    strFn
	a    anyFn
	v    valFn // kVal

	// constants
	isConst bool
	cval    any   // string, int64, float64, bool or nil
	elems   []any // kArray: constant elements (string, int64, float64, bool, nil)
	allStr  bool  // kArray: every element a string literal
	allInt  bool  // kArray: every element an integer literal

	// kStruct, kMapAny, kMapStr: where the field is in Env.
	off uintptr
	typ reflect.Type
}

// fastCompiler compiles the audiences of one Set, sharing sub-expressions
// that occur more than once.
type fastCompiler struct {
	counts map[string]int // sub-expression key -> occurrences in the Set
	slots  map[string]int // key -> memo slot
}

var envType = reflect.TypeFor[Env]()

// count records the memoizable sub-expressions of one tree.
func (fc *fastCompiler) count(n ast.Node) {
	ast.Walk(&n, countVisitor{fc})
}

type countVisitor struct{ fc *fastCompiler }

func (v countVisitor) Visit(n *ast.Node) {
	if k := memoKey(*n); k != "" {
		v.fc.counts[k]++
	}
	if k := historyKey(*n); k != "" {
		v.fc.counts[k]++
	}
}

// historyKey names the History an _events or _views call with a constant
// name (and, for views, an exact path) reads, so that calls with
// different windows share one map lookup per call. Empty otherwise.
func historyKey(n ast.Node) string {
	c, ok := n.(*ast.CallNode)
	if !ok || len(c.Arguments) != 2 {
		return ""
	}
	id, ok := c.Callee.(*ast.IdentifierNode)
	name, isStr := c.Arguments[0].(*ast.StringNode)
	if !ok || !isStr {
		return ""
	}
	switch {
	case id.Value == "_events":
		return "events\x00" + name.Value
	case id.Value == "_views" && !isGlob(name.Value):
		return "views\x00" + name.Value
	}
	return ""
}

// memoKey names a sub-expression worth evaluating once per call: helper
// calls, trait reads and boolean operators. Empty when not memoizable.
func memoKey(n ast.Node) string {
	switch n := n.(type) {
	case *ast.CallNode:
		if id, ok := n.Callee.(*ast.IdentifierNode); ok {
			switch id.Value {
			case "_events", "_views", "_trait":
				return n.String()
			}
		}
	case *ast.BinaryNode:
		switch n.Operator {
		case "==", "!=", "<", "<=", ">", ">=", "in", "matches", "startsWith", "endsWith", "contains":
			return n.String()
		}
	}
	return ""
}

// slot returns the memo slot for key, or -1 when the key occurs once.
func (fc *fastCompiler) slot(key string) int {
	if key == "" || fc.counts[key] < 2 {
		return -1
	}
	if s, ok := fc.slots[key]; ok {
		return s
	}
	s := len(fc.slots)
	fc.slots[key] = s
	return s
}

// audience compiles one audience's tree into a top-level boolean closure,
// or returns nil when some node is not supported.
func (fc *fastCompiler) audience(n ast.Node) boolFn {
	c, ok := fc.node(n)
	if !ok {
		return nil
	}
	switch c.kind {
	case kBool:
		return c.b
	case kAny:
		// expr.AsBool casts the result: nil is false, other types fail.
		a := c.a
		return func(fr *frame) (bool, bool) {
			v, ok := a(fr)
			if !ok {
				return false, false
			}
			switch v := v.(type) {
			case nil:
				return false, true
			case bool:
				return v, true
			}
			return false, false
		}
	case kVal:
		f := c.v
		return func(fr *frame) (bool, bool) {
			v, ok := f(fr)
			switch {
			case !ok:
				return false, false
			case v.k == kNil:
				return false, true
			case v.k == kBool:
				return v.b, true
			}
			return false, false
		}
	case kNil:
		return func(*frame) (bool, bool) { return false, true }
	}
	return nil
}

func (fc *fastCompiler) node(n ast.Node) (cnode, bool) {
	switch n := n.(type) {
	case *ast.NilNode:
		return cnode{kind: kNil, isConst: true, a: constFn[any](nil)}, true
	case *ast.BoolNode:
		return constant(n.Value), true
	case *ast.IntegerNode:
		return constant(int64(n.Value)), true
	case *ast.FloatNode:
		return constant(n.Value), true
	case *ast.StringNode:
		return constant(n.Value), true
	case *ast.ArrayNode:
		return fc.array(n)
	case *ast.IdentifierNode:
		return field(envType, 0, n.Value)
	case *ast.MemberNode:
		return fc.member(n)
	case *ast.CallNode:
		return fc.call(n)
	case *ast.BuiltinNode:
		return fc.builtin(n)
	case *ast.UnaryNode:
		return fc.unary(n)
	case *ast.ConditionalNode:
		return fc.conditional(n)
	case *ast.BinaryNode:
		c, ok := fc.binary(n)
		if !ok || c.kind != kBool {
			return c, ok
		}
		if s := fc.slot(memoKey(n)); s >= 0 {
			c.b = memoize(s, c.b, memoB)
		}
		return c, true
	}
	return cnode{}, false
}

// node returns the node whose accessor is f, of the kind of T (kBool for
// bool, kInt for int64, kFloat, kStr, kAny for any, kVal for val).
func node[T any](f reader[T]) cnode {
	var c cnode
	switch f := any(f).(type) {
	case boolFn:
		c.kind, c.b = kBool, f
	case intFn:
		c.kind, c.i = kInt, f
	case floatFn:
		c.kind, c.f = kFloat, f
	case strFn:
		c.kind, c.s = kStr, f
	case anyFn:
		c.kind, c.a = kAny, f
	case valFn:
		c.kind, c.v = kVal, f
	default:
		panic("rules: no node kind for this type")
	}
	return c
}

// constFn always yields v.
func constFn[T any](v T) reader[T] { return func(*frame) (T, bool) { return v, true } }

// constant is the node of a literal: bool, int64, float64 or string.
func constant[T bool | int64 | float64 | string](v T) cnode {
	c := node(constFn(v))
	c.isConst, c.cval = true, v
	return c
}

func (fc *fastCompiler) array(n *ast.ArrayNode) (cnode, bool) {
	c := cnode{kind: kArray, allStr: true, allInt: true}
	for _, e := range n.Nodes {
		_, isStr := e.(*ast.StringNode)
		_, isInt := e.(*ast.IntegerNode)
		c.allStr = c.allStr && isStr
		c.allInt = c.allInt && isInt
		ec, ok := fc.node(e)
		if !ok || !ec.isConst {
			return cnode{}, false
		}
		c.elems = append(c.elems, ec.cval)
	}
	return c, true
}

// field resolves the field tagged name in struct type t at offset base.
func field(t reflect.Type, base uintptr, name string) (cnode, bool) {
	if t.Kind() != reflect.Struct {
		return cnode{}, false
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || f.Anonymous {
			continue
		}
		tag := f.Tag.Get("expr")
		if tag == "" {
			tag = f.Name
		}
		if tag != name {
			continue
		}
		return fieldNode(f.Type, base+f.Offset)
	}
	return cnode{}, false
}

// at returns the address of the field at offset off of the frame's Env.
// (Not generic: generic callers inline it.)
func at(fr *frame, off uintptr) unsafe.Pointer { return unsafe.Add(unsafe.Pointer(fr.env), off) }

// fieldFn reads the T field at offset off of Env.
func fieldFn[T any](off uintptr) reader[T] {
	return func(fr *frame) (T, bool) { return *(*T)(at(fr, off)), true }
}

// fieldNode builds the reader of a field of type t at offset off in Env.
func fieldNode(t reflect.Type, off uintptr) (cnode, bool) {
	switch t.Kind() {
	case reflect.String:
		return node(fieldFn[string](off)), true
	case reflect.Bool:
		return node(fieldFn[bool](off)), true
	case reflect.Int64:
		return node(fieldFn[int64](off)), true
	case reflect.Int:
		return node(func(fr *frame) (int64, bool) { return int64(*(*int)(at(fr, off))), true }), true
	case reflect.Float64:
		return node(fieldFn[float64](off)), true
	case reflect.Struct:
		return cnode{kind: kStruct, off: off, typ: t}, true
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			break
		}
		switch {
		case t.Elem().Kind() == reflect.Interface && t.Elem().NumMethod() == 0:
			return cnode{kind: kMapAny, off: off, typ: t}, true
		case t.Elem().Kind() == reflect.String:
			return cnode{kind: kMapStr, off: off, typ: t}, true
		}
	}
	return cnode{}, false
}

// mapRead reads the map[string]V field at offset off of Env at the key
// key yields.
func mapRead[V any](off uintptr, key strFn) reader[V] {
	return func(fr *frame) (V, bool) {
		k, ok := key(fr)
		return (*(*map[string]V)(at(fr, off)))[k], ok
	}
}

// mapHas is `key in m` for the map[string]V field at offset off of Env: a
// nil key looks up the zero key "".
func mapHas[V any](off uintptr, key reader[nullStr]) boolFn {
	return func(fr *frame) (bool, bool) {
		k, ok := key(fr)
		if !ok {
			return false, false
		}
		_, has := (*(*map[string]V)(at(fr, off)))[k.s]
		return has, true
	}
}

// mapLen is len(m) for the map[string]V field at offset off of Env.
func mapLen[V any](off uintptr) intFn {
	return func(fr *frame) (int64, bool) { return int64(len(*(*map[string]V)(at(fr, off)))), true }
}

func (fc *fastCompiler) member(n *ast.MemberNode) (cnode, bool) {
	if n.Optional || n.Method {
		return cnode{}, false
	}
	base, ok := fc.node(n.Node)
	if !ok {
		return cnode{}, false
	}
	prop, ok := fc.node(n.Property)
	if !ok {
		return cnode{}, false
	}
	switch base.kind {
	case kStruct:
		name, ok := prop.cval.(string)
		if !prop.isConst || !ok {
			return cnode{}, false
		}
		return field(base.typ, base.off, name)
	case kMapStr:
		if prop.kind != kStr {
			return cnode{}, false
		}
		return node(mapRead[string](base.off, prop.s)), true
	case kMapAny:
		if prop.kind != kStr {
			return cnode{}, false
		}
		return node(mapRead[any](base.off, prop.s)), true
	case kAny:
		// A nested map read, like traits.org.tier: only map[string]any
		// with a string key; anything else (nil included) is the VM's.
		if prop.kind != kStr {
			return cnode{}, false
		}
		ba, ps := base.a, prop.s
		return cnode{kind: kAny, a: func(fr *frame) (any, bool) {
			v, ok := ba(fr)
			if !ok {
				return nil, false
			}
			m, isMap := v.(map[string]any)
			if !isMap {
				return nil, false
			}
			k, ok := ps(fr)
			return m[k], ok
		}}, true
	}
	return cnode{}, false
}

func (fc *fastCompiler) call(n *ast.CallNode) (cnode, bool) {
	id, ok := n.Callee.(*ast.IdentifierNode)
	if !ok {
		return cnode{}, false
	}
	args := n.Arguments
	slot := fc.slot(memoKey(n))
	switch id.Value {
	case "_audience":
		if len(args) != 1 {
			return cnode{}, false
		}
		i, ok := args[0].(*ast.IntegerNode)
		if !ok {
			return cnode{}, false
		}
		k := i.Value
		return cnode{kind: kBool, b: func(fr *frame) (bool, bool) { return fr.matched[k], true }}, true
	case "_trait":
		if len(args) != 1 {
			return cnode{}, false
		}
		s, ok := args[0].(*ast.StringNode)
		if !ok {
			return cnode{}, false
		}
		key := s.Value
		var f anyFn = func(fr *frame) (any, bool) { return fr.env.Traits[key], true }
		if slot >= 0 {
			f = memoize(slot, f, memoA)
		}
		return cnode{kind: kAny, a: f}, true
	case "_events", "_views":
		if len(args) != 2 {
			return cnode{}, false
		}
		w, ok := args[1].(*ast.IntegerNode)
		if !ok {
			return cnode{}, false
		}
		window := int64(w.Value)
		views := id.Value == "_views"
		name, ok := fc.node(args[0])
		if !ok {
			return cnode{}, false
		}
		var f intFn
		switch {
		case name.kind == kStr && name.isConst && fc.slot(historyKey(n)) >= 0:
			// The History is read from the map once per call and shared
			// by every window over the same name.
			key, hs := name.cval.(string), fc.slot(historyKey(n))
			f = func(fr *frame) (int64, bool) {
				c := &fr.memo[hs]
				if c.gen != fr.gen {
					if views {
						c.h = fr.env.Views[key]
					} else {
						c.h = fr.env.Events[key]
					}
					c.gen = fr.gen
				}
				return int64(int(c.h.CountSince(sinceMillis(fr.nowMilli(), window)))), true
			}
		case name.kind == kStr && name.isConst:
			key := name.cval.(string)
			if views {
				glob := isGlob(key)
				f = func(fr *frame) (int64, bool) {
					return int64(int(countViewsAt(fr.env, fr.nowMilli(), key, glob, window))), true
				}
			} else {
				f = func(fr *frame) (int64, bool) {
					return int64(int(countEventsAt(fr.env, fr.nowMilli(), key, window))), true
				}
			}
		case name.kind == kStr || name.kind == kAny:
			kf, ok := strOperand(name)
			if !ok {
				return cnode{}, false
			}
			f = func(fr *frame) (int64, bool) {
				k, ok := kf(fr)
				if !ok || k.isNil { // the VM fails on a non-string name
					return 0, false
				}
				if views {
					return int64(int(countViewsAt(fr.env, fr.nowMilli(), k.s, isGlob(k.s), window))), true
				}
				return int64(int(countEventsAt(fr.env, fr.nowMilli(), k.s, window))), true
			}
		default:
			return cnode{}, false
		}
		if slot >= 0 {
			f = memoize(slot, f, memoN)
		}
		return cnode{kind: kInt, i: f}, true
	}
	return cnode{}, false
}

// memoize wraps f so that it runs at most once per call (frame
// generation) in memo slot slot; field picks the slot's field of T.
func memoize[T any](slot int, f func(*frame) (T, bool), field func(*memo) *T) func(*frame) (T, bool) {
	return func(fr *frame) (T, bool) {
		m := &fr.memo[slot]
		p := field(m)
		if m.gen == fr.gen {
			return *p, true
		}
		v, ok := f(fr)
		if ok {
			m.gen, *p = fr.gen, v
		}
		return v, ok
	}
}

func memoB(m *memo) *bool  { return &m.b }
func memoN(m *memo) *int64 { return &m.n }
func memoA(m *memo) *any   { return &m.a }

func (fc *fastCompiler) builtin(n *ast.BuiltinNode) (cnode, bool) {
	if n.Name != "len" || len(n.Arguments) != 1 {
		return cnode{}, false
	}
	x, ok := fc.node(n.Arguments[0])
	if !ok {
		return cnode{}, false
	}
	var f intFn
	switch x.kind {
	case kStr:
		s := x.s
		f = func(fr *frame) (int64, bool) {
			v, ok := s(fr)
			return int64(utf8.RuneCountInString(v)), ok
		}
	case kMapAny:
		f = mapLen[any](x.off)
	case kMapStr:
		f = mapLen[string](x.off)
	case kAny:
		a := x.a
		f = func(fr *frame) (int64, bool) {
			v, ok := a(fr)
			if !ok {
				return 0, false
			}
			switch v := v.(type) {
			case string:
				return int64(utf8.RuneCountInString(v)), true
			case []any:
				return int64(len(v)), true
			case map[string]any:
				return int64(len(v)), true
			}
			return 0, false
		}
	case kArray:
		return constant(int64(len(x.elems))), true
	default:
		return cnode{}, false
	}
	return cnode{kind: kInt, i: f}, true
}

func (fc *fastCompiler) unary(n *ast.UnaryNode) (cnode, bool) {
	x, ok := fc.node(n.Node)
	if !ok {
		return cnode{}, false
	}
	switch n.Operator {
	case "!", "not":
		b, ok := asBool(x)
		if !ok {
			return cnode{}, false
		}
		return node(not(b)), true
	case "-":
		switch x.kind {
		case kInt:
			return negate(x, x.i), true
		case kFloat:
			return negate(x, x.f), true
		}
	case "+":
		if x.kind == kInt || x.kind == kFloat {
			return x, true
		}
	}
	return cnode{}, false
}

// not is !f.
func not(f boolFn) boolFn {
	return func(fr *frame) (bool, bool) {
		v, ok := f(fr)
		return !v, ok
	}
}

// negate is -x for a number node x whose accessor is f.
func negate[T int64 | float64](x cnode, f reader[T]) cnode {
	if x.isConst {
		return constant(-x.cval.(T))
	}
	return node(func(fr *frame) (T, bool) {
		v, ok := f(fr)
		return -v, ok
	})
}

// asBool returns a reader that yields x as a bool, bailing on anything
// else (expr fails on a non-bool operand of !, && and ||).
func asBool(x cnode) (boolFn, bool) {
	switch x.kind {
	case kBool:
		return x.b, true
	case kAny:
		a := x.a
		return func(fr *frame) (bool, bool) {
			v, ok := a(fr)
			b, isBool := v.(bool)
			return b, ok && isBool
		}, true
	case kVal:
		f := x.v
		return func(fr *frame) (bool, bool) {
			v, ok := f(fr)
			return v.b, ok && v.k == kBool
		}, true
	}
	return nil, false
}

func (fc *fastCompiler) binary(n *ast.BinaryNode) (cnode, bool) {
	l, ok := fc.node(n.Left)
	if !ok {
		return cnode{}, false
	}
	if n.Operator == "in" {
		if rg, ok := n.Right.(*ast.BinaryNode); ok && rg.Operator == ".." {
			return inRange(l, rg)
		}
	}
	r, ok := fc.node(n.Right)
	if !ok {
		return cnode{}, false
	}
	var f boolFn
	switch n.Operator {
	case "&&", "and", "||", "or":
		lb, ok1 := asBool(l)
		rb, ok2 := asBool(r)
		if !ok1 || !ok2 {
			return cnode{}, false
		}
		if n.Operator == "&&" || n.Operator == "and" {
			f = func(fr *frame) (bool, bool) {
				v, ok := lb(fr)
				if !ok || !v {
					return false, ok
				}
				return rb(fr)
			}
		} else {
			f = func(fr *frame) (bool, bool) {
				v, ok := lb(fr)
				if !ok || v {
					return v, ok
				}
				return rb(fr)
			}
		}
	case "==", "!=":
		f, ok = equality(l, r)
		if ok && n.Operator == "!=" {
			f = not(f)
		}
	case "<", "<=", ">", ">=":
		f, ok = compare(n.Operator, l, r)
	case "startsWith", "endsWith", "contains":
		f, ok = stringOp(n.Operator, l, r)
	case "matches":
		f, ok = matches(l, r)
	case "in":
		f, ok = in(n, l, r)
	case "+", "-", "*", "/", "%":
		return arith(n.Operator, l, r)
	default:
		return cnode{}, false
	}
	if !ok {
		return cnode{}, false
	}
	return cnode{kind: kBool, b: f}, true
}

// val is a dynamic value of one of the kinds the fast path models.
type val struct {
	k kind // kNil, kBool, kInt, kFloat, kStr; 0 = unmodelled
	b bool
	i int64
	f float64
	s string
}

// valField is the offset in val of the field holding a value of kind k
// (kBool, kInt, kFloat or kStr).
func valField(k kind) uintptr {
	switch k {
	case kBool:
		return unsafe.Offsetof(val{}.b)
	case kInt:
		return unsafe.Offsetof(val{}.i)
	case kFloat:
		return unsafe.Offsetof(val{}.f)
	}
	return unsafe.Offsetof(val{}.s)
}

// asVal reads the T that f yields as a val of T's kind.
func asVal[T bool | int64 | float64 | string](f reader[T]) valFn {
	k := node(f).kind
	off := valField(k)
	return func(fr *frame) (val, bool) {
		x, ok := f(fr)
		v := val{k: k}
		*(*T)(unsafe.Add(unsafe.Pointer(&v), off)) = x
		return v, ok
	}
}

// toVal reads any kind of node as a val.
func toVal(c cnode) (valFn, bool) {
	switch c.kind {
	case kNil:
		return constFn(val{k: kNil}), true
	case kBool:
		return asVal(c.b), true
	case kInt:
		return asVal(c.i), true
	case kFloat:
		return asVal(c.f), true
	case kStr:
		return asVal(c.s), true
	case kAny:
		a := c.a
		return func(fr *frame) (val, bool) {
			v, ok := a(fr)
			if !ok {
				return val{}, false
			}
			x := anyVal(v)
			return x, x.k != 0
		}, true
	case kVal:
		return c.v, true
	}
	return nil, false
}

// anyVal models a dynamic value; k == 0 when its type is not modelled.
func anyVal(v any) val {
	switch v := v.(type) {
	case nil:
		return val{k: kNil}
	case bool:
		return val{k: kBool, b: v}
	case string:
		return val{k: kStr, s: v}
	case float64:
		return val{k: kFloat, f: v}
	case int:
		return val{k: kInt, i: int64(v)}
	case int64:
		return val{k: kInt, i: v}
	}
	return val{}
}

func constVal(v any) val { return anyVal(v) }

// valEqual is runtime.Equal restricted to modelled kinds: numbers compare
// across int and float, nil equals nil, different kinds are unequal.
func valEqual(a, b val) bool {
	switch {
	case a.k == kInt && b.k == kInt:
		return a.i == b.i
	case isNum(a) && isNum(b):
		return numF(a) == numF(b)
	case a.k != b.k:
		return false
	}
	switch a.k {
	case kNil:
		return true
	case kBool:
		return a.b == b.b
	case kStr:
		return a.s == b.s
	}
	return false
}

func isNum(v val) bool { return v.k == kInt || v.k == kFloat }

func numF(v val) float64 {
	if v.k == kInt {
		return float64(v.i)
	}
	return v.f
}

// valCompare applies op (<, <=, >, >=) to two vals as runtime.Less and
// friends do; ok is false where expr fails (mismatched or unordered
// kinds).
func valCompare(op string, a, b val) (bool, bool) {
	switch {
	case a.k == kInt && b.k == kInt:
		return holds(op, cmp.Compare(a.i, b.i)), true
	case isNum(a) && isNum(b):
		return floatCmp(op)(numF(a), numF(b)), true
	case a.k == kStr && b.k == kStr:
		return holds(op, strings.Compare(a.s, b.s)), true
	}
	return false, false
}

// holds reports whether op (<, <=, >, >=) holds for a comparison result
// c (-1, 0, +1).
func holds(op string, c int) bool {
	switch op {
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	}
	return c >= 0
}

// floatCmp returns the comparison op on float64s (false with a NaN, as
// in Go and expr). It is not generic: a comparator closure made by a
// generic function measured ~12% slower on BenchmarkMatch100.
func floatCmp(op string) func(a, b float64) bool {
	switch op {
	case "<":
		return func(a, b float64) bool { return a < b }
	case "<=":
		return func(a, b float64) bool { return a <= b }
	case ">":
		return func(a, b float64) bool { return a > b }
	}
	return func(a, b float64) bool { return a >= b }
}

// compareConst is f <op> k for an ordered kind, one closure per operator
// so the comparison is inlined into it.
func compareConst[T cmp.Ordered](op string, f reader[T], k T) boolFn {
	switch op {
	case "<":
		return func(fr *frame) (bool, bool) { v, ok := f(fr); return v < k, ok }
	case "<=":
		return func(fr *frame) (bool, bool) { v, ok := f(fr); return v <= k, ok }
	case ">":
		return func(fr *frame) (bool, bool) { v, ok := f(fr); return v > k, ok }
	}
	return func(fr *frame) (bool, bool) { v, ok := f(fr); return v >= k, ok }
}

// compareBoth is l <op> r for two integer or two string operands.
func compareBoth[T int64 | string](op string, l, r reader[T]) boolFn {
	return binaryOp(l, r, func(a, b T) (bool, bool) { return holds(op, cmp.Compare(a, b)), true })
}

// binaryOp is op over the operands l and r, read in that order (the
// order expr evaluates them in); it bails when either does.
func binaryOp[A, B, R any](l reader[A], r reader[B], op func(a A, b B) (R, bool)) reader[R] {
	return func(fr *frame) (R, bool) {
		a, ok := l(fr)
		if !ok {
			var zero R
			return zero, false
		}
		b, ok := r(fr)
		if !ok {
			var zero R
			return zero, false
		}
		return op(a, b)
	}
}

// equalConst is f == k for a comparable kind.
func equalConst[T comparable](f reader[T], k T) boolFn {
	return func(fr *frame) (bool, bool) {
		v, ok := f(fr)
		return v == k, ok
	}
}

// anyEqualConst is a == k for a dynamic a and a string or bool k: a
// value of another type is not equal (runtime.Equal never fails).
func anyEqualConst[T string | bool](a anyFn, k T) boolFn {
	return func(fr *frame) (bool, bool) {
		v, ok := a(fr)
		x, same := v.(T)
		return same && x == k, ok
	}
}

// equality compiles l == r, specializing the common shapes.
func equality(l, r cnode) (boolFn, bool) {
	if l.isConst && !r.isConst {
		l, r = r, l
	}
	if r.isConst {
		switch {
		case l.kind == kStr && r.kind == kStr:
			return equalConst(l.s, r.cval.(string)), true
		case l.kind == kAny && r.kind == kStr:
			return anyEqualConst(l.a, r.cval.(string)), true
		case l.kind == kAny && r.kind == kBool:
			return anyEqualConst(l.a, r.cval.(bool)), true
		case l.kind == kInt && r.kind == kInt:
			return equalConst(l.i, r.cval.(int64)), true
		case l.kind == kFloat && r.kind == kFloat:
			return equalConst(l.f, r.cval.(float64)), true
		case l.kind == kBool && r.kind == kBool:
			return equalConst(l.b, r.cval.(bool)), true
		}
	}
	return valOp(l, r, func(a, b val) (bool, bool) { return valEqual(a, b), true })
}

// valOp is op over l and r read as vals.
func valOp(l, r cnode, op func(a, b val) (bool, bool)) (boolFn, bool) {
	lv, ok1 := toVal(l)
	rv, ok2 := toVal(r)
	if !ok1 || !ok2 {
		return nil, false
	}
	return binaryOp(lv, rv, op), true
}

func compare(op string, l, r cnode) (boolFn, bool) {
	if l.kind == r.kind {
		switch l.kind {
		case kInt:
			if r.isConst {
				return compareConst(op, l.i, r.cval.(int64)), true
			}
			return compareBoth(op, l.i, r.i), true
		case kFloat:
			if r.isConst {
				return compareConst(op, l.f, r.cval.(float64)), true
			}
		case kStr:
			if r.isConst {
				return compareConst(op, l.s, r.cval.(string)), true
			}
			return compareBoth(op, l.s, r.s), true
		}
	}
	if l.kind == kAny && r.isConst && (r.kind == kFloat || r.kind == kInt) {
		// traits.x <op> number, the commonest numeric rule: a float64
		// trait compares as float64 whatever the literal (runtime.Less
		// converts both sides when either is a float).
		a, k := l.a, constVal(r.cval)
		kf := numF(k)
		less := floatCmp(op)
		return func(fr *frame) (bool, bool) {
			v, ok := a(fr)
			if !ok {
				return false, false
			}
			switch x := v.(type) {
			case float64:
				return less(x, kf), true
			case int:
				return valCompare(op, val{k: kInt, i: int64(x)}, k)
			case int64:
				return valCompare(op, val{k: kInt, i: x}, k)
			}
			return false, false
		}, true
	}
	return valOp(l, r, func(a, b val) (bool, bool) { return valCompare(op, a, b) })
}

// nullStr is a string operand that may be nil (which makes startsWith and
// friends false in expr, and looks up "" in a map).
type nullStr struct {
	s     string
	isNil bool
}

// strOperand reads a string operand; it bails on other types.
func strOperand(c cnode) (reader[nullStr], bool) {
	switch c.kind {
	case kStr:
		s := c.s
		return func(fr *frame) (nullStr, bool) {
			v, ok := s(fr)
			return nullStr{s: v}, ok
		}, true
	case kNil:
		return constFn(nullStr{isNil: true}), true
	case kAny:
		a := c.a
		return func(fr *frame) (nullStr, bool) {
			v, ok := a(fr)
			if !ok {
				return nullStr{}, false
			}
			switch v := v.(type) {
			case nil:
				return nullStr{isNil: true}, true
			case string:
				return nullStr{s: v}, true
			}
			return nullStr{}, false
		}, true
	case kVal:
		f := c.v
		return func(fr *frame) (nullStr, bool) {
			v, ok := f(fr)
			return nullStr{s: v.s, isNil: v.k == kNil}, ok && (v.k == kStr || v.k == kNil)
		}, true
	}
	return nil, false
}

func stringOp(op string, l, r cnode) (boolFn, bool) {
	var fn func(string, string) bool
	switch op {
	case "startsWith":
		fn = strings.HasPrefix
	case "endsWith":
		fn = strings.HasSuffix
	default:
		fn = strings.Contains
	}
	if l.kind == kStr && r.kind == kStr && r.isConst {
		s, k := l.s, r.cval.(string)
		return func(fr *frame) (bool, bool) {
			v, ok := s(fr)
			return fn(v, k), ok
		}, true
	}
	if r.kind == kStr && r.isConst {
		// traits.email endsWith "@acme.com": a nil operand is false.
		ls, ok := strOperand(l)
		if !ok {
			return nil, false
		}
		k := r.cval.(string)
		return func(fr *frame) (bool, bool) {
			v, ok := ls(fr)
			return ok && !v.isNil && fn(v.s, k), ok
		}, true
	}
	ls, ok1 := strOperand(l)
	rs, ok2 := strOperand(r)
	if !ok1 || !ok2 {
		return nil, false
	}
	return binaryOp(ls, rs, func(a, b nullStr) (bool, bool) { return !a.isNil && !b.isNil && fn(a.s, b.s), true }), true
}

func matches(l, r cnode) (boolFn, bool) {
	if !r.isConst || r.kind != kStr {
		return nil, false // a pattern built at run time is the VM's
	}
	re, err := regexp.Compile(r.cval.(string))
	if err != nil {
		return nil, false
	}
	ls, ok := strOperand(l)
	if !ok {
		return nil, false
	}
	return func(fr *frame) (bool, bool) {
		s, ok := ls(fr)
		if !ok || s.isNil {
			return false, ok
		}
		return re.MatchString(s.s), true
	}, true
}

// smallSet is the number of strings up to which a linear scan beats a map.
const smallSet = 8

// in compiles `l in r`. A non-empty literal array of strings is what
// expr's optimizer turns into a map[string]struct{} lookup, so it follows
// map semantics; other literal arrays compare each element with
// runtime.Equal semantics (an all-int array with an int needle, which the
// optimizer also turns into a map, gives the same answers either way).
func in(n *ast.BinaryNode, l, r cnode) (boolFn, bool) {
	switch r.kind {
	case kArray:
		if len(r.elems) > 0 && r.allStr && !(isIntType(n.Left) && r.allInt) {
			return inStrings(l, r.elems)
		}
		lv, ok := toVal(l)
		if !ok {
			return nil, false
		}
		elems := make([]val, len(r.elems))
		for i, e := range r.elems {
			elems[i] = constVal(e)
		}
		return func(fr *frame) (bool, bool) {
			v, ok := lv(fr)
			if !ok {
				return false, false
			}
			for _, e := range elems {
				if valEqual(e, v) {
					return true, true
				}
			}
			return false, true
		}, true
	case kMapAny, kMapStr:
		ls, ok := strOperand(l)
		if !ok {
			return nil, false
		}
		if r.kind == kMapAny {
			return mapHas[any](r.off, ls), true
		}
		return mapHas[string](r.off, ls), true
	case kAny:
		lv, ok := toVal(l)
		if !ok {
			return nil, false
		}
		// The needle is read first, as the VM does.
		return binaryOp(lv, r.a, func(v val, arr any) (bool, bool) {
			switch arr := arr.(type) {
			case nil:
				return false, true
			case []any:
				for _, e := range arr {
					ev := anyVal(e)
					if ev.k == 0 {
						return false, false
					}
					if valEqual(ev, v) {
						return true, true
					}
				}
				return false, true
			}
			return false, false
		}), true
	}
	return nil, false
}

func isIntType(n ast.Node) bool {
	t := n.Type()
	return t != nil && t.Kind() == reflect.Int
}

// inStrings is membership in a set of string literals, the way expr's
// optimized map[string]struct{} lookup behaves: a nil needle looks up "",
// a needle of another type is an error (bail).
func inStrings(l cnode, elems []any) (boolFn, bool) {
	strs := make([]string, len(elems))
	for i, e := range elems {
		strs[i] = e.(string)
	}
	contains := func(s string) bool {
		for _, x := range strs {
			if x == s {
				return true
			}
		}
		return false
	}
	if len(strs) > smallSet {
		set := make(map[string]struct{}, len(strs))
		for _, s := range strs {
			set[s] = struct{}{}
		}
		contains = func(s string) bool { _, ok := set[s]; return ok }
	}
	if l.kind == kStr {
		s := l.s
		return func(fr *frame) (bool, bool) {
			v, ok := s(fr)
			return contains(v), ok
		}, true
	}
	ls, ok := strOperand(l)
	if !ok {
		return nil, false
	}
	return func(fr *frame) (bool, bool) {
		v, ok := ls(fr)
		if !ok {
			return false, false
		}
		return contains(v.s), true
	}, true
}

// choose is cond ? x : y.
func choose[T any](cond boolFn, x, y reader[T]) reader[T] {
	return func(fr *frame) (T, bool) {
		v, ok := cond(fr)
		switch {
		case !ok:
			var zero T
			return zero, false
		case v:
			return x(fr)
		}
		return y(fr)
	}
}

// conditional compiles c ? a : b. The condition must be a bool (expr
// fails otherwise); the branches keep their kind when they share one.
func (fc *fastCompiler) conditional(n *ast.ConditionalNode) (cnode, bool) {
	c, ok := fc.node(n.Cond)
	if !ok {
		return cnode{}, false
	}
	cond, ok := asBool(c)
	if !ok {
		return cnode{}, false
	}
	a, ok := fc.node(n.Exp1)
	if !ok {
		return cnode{}, false
	}
	b, ok := fc.node(n.Exp2)
	if !ok {
		return cnode{}, false
	}
	if a.kind == b.kind {
		switch a.kind {
		case kBool:
			return node(choose(cond, a.b, b.b)), true
		case kStr:
			return node(choose(cond, a.s, b.s)), true
		}
	}
	x, ok1 := toVal(a)
	y, ok2 := toVal(b)
	if !ok1 || !ok2 {
		return cnode{}, false
	}
	return node(choose(cond, x, y)), true
}

// arith compiles + - * / % on numbers with runtime.Add (and friends)
// semantics: int op int stays int (wrapping), a float makes it float, /
// is always float, % takes ints only and fails on a zero divisor. Strings
// and other types are left to the VM.
func arith(op string, l, r cnode) (cnode, bool) {
	num := func(c cnode) bool { return c.kind == kInt || c.kind == kFloat || c.kind == kAny || c.kind == kVal }
	if !num(l) || !num(r) {
		return cnode{}, false
	}
	if l.kind == kInt && r.kind == kInt && op != "/" {
		return node(binaryOp(l.i, r.i, func(a, b int64) (int64, bool) {
			v := arithVal(op, val{k: kInt, i: a}, val{k: kInt, i: b})
			return v.i, v.k == kInt
		})), true
	}
	lv, _ := toVal(l)
	rv, _ := toVal(r)
	f := binaryOp(lv, rv, func(a, b val) (val, bool) {
		v := arithVal(op, a, b)
		return v, v.k != 0
	})
	if (l.kind == kInt || l.kind == kFloat) && (r.kind == kInt || r.kind == kFloat) {
		return node(func(fr *frame) (float64, bool) {
			v, ok := f(fr)
			return v.f, ok
		}), true
	}
	return node(f), true
}

// arithVal applies op to two numbers; k == 0 in the result where expr
// fails.
func arithVal(op string, a, b val) val {
	if !isNum(a) || !isNum(b) {
		return val{}
	}
	if a.k == kInt && b.k == kInt {
		switch op {
		case "+":
			return val{k: kInt, i: a.i + b.i}
		case "-":
			return val{k: kInt, i: a.i - b.i}
		case "*":
			return val{k: kInt, i: a.i * b.i}
		case "%":
			if b.i == 0 {
				return val{}
			}
			return val{k: kInt, i: a.i % b.i}
		}
	}
	x, y := numF(a), numF(b)
	switch op {
	case "+":
		return val{k: kFloat, f: x + y}
	case "-":
		return val{k: kFloat, f: x - y}
	case "*":
		return val{k: kFloat, f: x * y}
	case "/":
		return val{k: kFloat, f: x / y}
	}
	return val{} // % on floats
}

// inRange compiles x in lo..hi with integer literal bounds. expr builds
// the []int at run time and compares each element with runtime.Equal (or,
// for an int x, its optimizer tests lo <= x && x <= hi): an integer is in
// when lo <= x <= hi, a float when it is integral and in bounds, anything
// else is not.
func inRange(l cnode, rg *ast.BinaryNode) (cnode, bool) {
	from, ok1 := rg.Left.(*ast.IntegerNode)
	to, ok2 := rg.Right.(*ast.IntegerNode)
	lv, ok3 := toVal(l)
	if !ok1 || !ok2 || !ok3 {
		return cnode{}, false
	}
	lo, hi := int64(from.Value), int64(to.Value)
	return cnode{kind: kBool, b: func(fr *frame) (bool, bool) {
		v, ok := lv(fr)
		if !ok {
			return false, false
		}
		switch v.k {
		case kInt:
			return lo <= v.i && v.i <= hi, true
		case kFloat:
			return v.f >= float64(lo) && v.f <= float64(hi) && v.f == math.Trunc(v.f), true
		}
		return false, true
	}}, true
}
