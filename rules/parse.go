package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"
)

// Load reads and parses the rules file at path; see Parse.
func Load(path string) (*Set, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	return Parse(path, data)
}

// Parse parses, validates and compiles a rules file. name is the file name
// used in error positions. The format is JSON when the first non-space byte
// is '{', YAML otherwise; the schema is the same.
//
// An invalid file yields an Errors listing every problem found, each with
// file, line:column, rule id and field; errors.Is(err, ErrInvalid) holds.
// The returned Set is immutable and safe for concurrent use.
func Parse(name string, data []byte) (*Set, error) {
	root, err := decodeNode(name, data)
	if err != nil {
		return nil, err
	}
	p := &parser{file: name, data: string(data)}
	s := p.set(root)
	p.compile(s)
	if len(p.errs) > 0 {
		p.errs.sort()
		return nil, p.errs
	}
	return s, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// decodeNode parses data into a yaml node tree. JSON is first checked with
// encoding/json so JSON-only rules (no comments, quoted keys) hold and
// syntax errors point at the right byte, then read through the YAML parser
// (YAML is a superset of JSON) to get positions for every value.
func decodeNode(name string, data []byte) (*yaml.Node, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, Errors{{Pos: Pos{File: name, Line: 1, Column: 1}, Msg: "empty rules file"}}
	}
	if trimmed[0] == '{' {
		if err := json.Unmarshal(data, new(any)); err != nil {
			off := len(data)
			var se *json.SyntaxError
			if errors.As(err, &se) {
				off = int(se.Offset)
			}
			line, col := lineCol(data, off)
			return nil, Errors{{Pos: Pos{File: name, Line: line, Column: col}, Msg: "invalid JSON: " + err.Error()}}
		}
		// Tabs are JSON whitespace but not YAML indentation; inside valid
		// JSON strings they are always escaped, so swapping them keeps
		// every value and column.
		data = bytes.ReplaceAll(data, []byte("\t"), []byte(" "))
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line, msg := 1, err.Error()
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
		}
		return nil, Errors{{Pos: Pos{File: name, Line: line, Column: 1}, Msg: "invalid YAML: " + msg}}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, Errors{{Pos: Pos{File: name, Line: 1, Column: 1}, Msg: "empty rules file"}}
	}
	return doc.Content[0], nil
}

// lineCol turns a byte offset into a 1-based line and column.
func lineCol(data []byte, off int) (int, int) {
	if off > len(data) {
		off = len(data)
	}
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	start := bytes.LastIndexByte(data[:off], '\n') + 1
	col := off - start
	if col < 1 {
		col = 1
	}
	return line, col
}

// parser collects every problem of one file.
type parser struct {
	file string
	data string
	errs Errors
	// kind and rule name the rule being read, for error messages.
	kind, rule string
	// base prefixes field paths when the rule id is not known yet.
	base string
	// whens holds the node of each accepted audience's when, audPos the
	// position of each accepted experience's audience field.
	whens  []*yaml.Node
	audPos []Pos
	// budget is how many more nodes the current variable value may hold.
	budget int
}

// maxValueNodes bounds one variable value, so YAML aliases cannot expand
// a small file into an exponentially large value.
const maxValueNodes = 10_000

func (p *parser) pos(n *yaml.Node) Pos { return Pos{File: p.file, Line: n.Line, Column: n.Column} }

func (p *parser) errf(n *yaml.Node, field, format string, args ...any) {
	if p.rule == "" && p.base != "" {
		if field == "" {
			field = p.base
		} else {
			field = p.base + "." + field
		}
	}
	p.errs = append(p.errs, &Error{Pos: p.pos(n), Kind: p.kind, Rule: p.rule, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// fields checks that n is a mapping with only the allowed keys, no
// duplicates, and returns key -> (key node, value node).
func (p *parser) fields(n *yaml.Node, field string, allowed ...string) map[string][2]*yaml.Node {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		p.errf(n, field, "want a mapping, got %s", describe(n))
		return nil
	}
	out := make(map[string][2]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := k.Value
		sub := key
		if field != "" {
			sub = field + "." + key
		}
		if k.Kind != yaml.ScalarNode {
			p.errf(k, field, "keys must be strings")
			continue
		}
		if _, dup := out[key]; dup {
			p.errf(k, sub, "duplicate key")
			continue
		}
		known := false
		for _, a := range allowed {
			if a == key {
				known = true
				break
			}
		}
		if !known {
			p.errf(k, sub, "unknown field")
			continue
		}
		out[key] = [2]*yaml.Node{k, v}
	}
	return out
}

// resolve follows aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "null"
		case "!!str":
			return fmt.Sprintf("string %q", n.Value)
		}
		return n.Value
	}
	return "nothing"
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// str reads a string scalar. Any non-null scalar is accepted (an id such
// as 123 reads as "123").
func (p *parser) str(n *yaml.Node, field string) (string, bool) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || isNull(n) {
		p.errf(n, field, "want a string, got %s", describe(n))
		return "", false
	}
	return n.Value, true
}

func (p *parser) id(n *yaml.Node, field string) (string, bool) {
	s, ok := p.str(n, field)
	if ok && s == "" {
		p.errf(n, field, "must not be empty")
		return "", false
	}
	return s, ok
}

func (p *parser) num(n *yaml.Node, field string) (float64, bool) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") {
		p.errf(n, field, "want a number, got %s", describe(n))
		return 0, false
	}
	var f float64
	if err := n.Decode(&f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		p.errf(n, field, "want a finite number, got %s", n.Value)
		return 0, false
	}
	return f, true
}

func (p *parser) boolean(n *yaml.Node, field string) (bool, bool) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		p.errf(n, field, "want true or false, got %s", describe(n))
		return false, false
	}
	var b bool
	if err := n.Decode(&b); err != nil {
		p.errf(n, field, "want true or false, got %s", n.Value)
		return false, false
	}
	return b, true
}

func (p *parser) seq(n *yaml.Node, field string) []*yaml.Node {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		p.errf(n, field, "want a list, got %s", describe(n))
		return nil
	}
	return n.Content
}

func (p *parser) set(root *yaml.Node) *Set {
	s := &Set{}
	f := p.fields(root, "", "audiences", "experiences")
	if kv, ok := f["audiences"]; ok && !isNull(kv[1]) {
		auds := p.seq(kv[1], "audiences")
		seen := map[string]*yaml.Node{}
		for i, n := range auds {
			if a, ok := p.audience(n, i, seen); ok {
				s.Audiences = append(s.Audiences, a)
			}
		}
	}
	if kv, ok := f["experiences"]; ok && !isNull(kv[1]) {
		exps := p.seq(kv[1], "experiences")
		seen := map[string]*yaml.Node{}
		for i, n := range exps {
			if e, ok := p.experience(n, i, seen); ok {
				s.Experiences = append(s.Experiences, e)
			}
		}
	}
	// Audience references.
	p.kind, p.base = "experience", ""
	for i := range s.Experiences {
		e := &s.Experiences[i]
		e.AudienceIndex = -1
		if e.Audience == "" {
			continue
		}
		e.AudienceIndex = s.AudienceIndex(e.Audience)
		if e.AudienceIndex < 0 {
			p.rule = e.ID
			p.errs = append(p.errs, &Error{Pos: p.audPos[i], Kind: "experience", Rule: e.ID, Field: "audience", Msg: fmt.Sprintf("unknown audience %q", e.Audience)})
		}
	}
	return s
}

// ruleID reads the id of rule i before its other fields, so every error of
// the rule names it.
func (p *parser) ruleID(f map[string][2]*yaml.Node, n *yaml.Node, seen map[string]*yaml.Node) (string, bool) {
	kv, ok := f["id"]
	if !ok {
		p.errf(n, "id", "missing")
		return "", false
	}
	id, ok := p.id(kv[1], "id")
	if !ok {
		return "", false
	}
	if prev, dup := seen[id]; dup {
		p.rule = id
		p.errf(kv[1], "id", "duplicate %s id (first defined at line %d)", p.kind, prev.Line)
		return id, false
	}
	seen[id] = kv[1]
	return id, true
}

// peekID returns the id of a rule mapping, if it has a string one, so
// that errors about fields read before it already name the rule.
func peekID(n *yaml.Node) string {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "id" {
			if v := resolve(n.Content[i+1]); v.Kind == yaml.ScalarNode && !isNull(v) {
				return v.Value
			}
			return ""
		}
	}
	return ""
}

func (p *parser) audience(n *yaml.Node, i int, seen map[string]*yaml.Node) (Audience, bool) {
	p.kind, p.rule, p.base = "audience", peekID(n), fmt.Sprintf("audiences[%d]", i)
	f := p.fields(n, "", "id", "name", "when")
	if f == nil {
		return Audience{}, false
	}
	id, ok := p.ruleID(f, n, seen)
	p.rule = id
	a := Audience{ID: id, Pos: p.pos(resolve(n))}
	if kv, has := f["name"]; has {
		a.Name, _ = p.str(kv[1], "name")
	}
	kv, has := f["when"]
	if !has {
		p.errf(n, "when", "missing")
		return a, false
	}
	w := resolve(kv[1])
	src, okw := p.str(w, "when")
	if okw && src == "" {
		p.errf(w, "when", "must not be empty")
		okw = false
	}
	a.When = src
	if ok && okw {
		p.whens = append(p.whens, w)
	}
	return a, ok && okw
}

func (p *parser) experience(n *yaml.Node, i int, seen map[string]*yaml.Node) (Experience, bool) {
	p.kind, p.rule, p.base = "experience", peekID(n), fmt.Sprintf("experiences[%d]", i)
	f := p.fields(n, "", "id", "type", "audience", "traffic", "distribution", "sticky",
		"bucketVersion", "namespace", "status", "start", "end", "components", "qaUsers")
	if f == nil {
		return Experience{}, false
	}
	nerr := len(p.errs)
	id, _ := p.ruleID(f, n, seen)
	p.rule = id
	e := Experience{ID: id, Type: TypeExperiment, Traffic: 1, Status: StatusRunning, AudienceIndex: -1, Pos: p.pos(resolve(n))}
	var audPos Pos
	if kv, ok := f["type"]; ok {
		if t, ok := p.str(kv[1], "type"); ok {
			if t != TypeExperiment && t != TypePersonalization {
				p.errf(kv[1], "type", "unknown type %q (want %s or %s)", t, TypeExperiment, TypePersonalization)
			}
			e.Type = t
		}
	}
	if kv, ok := f["audience"]; ok {
		e.Audience, _ = p.id(kv[1], "audience")
		audPos = p.pos(resolve(kv[1]))
	}
	if kv, ok := f["traffic"]; ok {
		if t, ok := p.num(kv[1], "traffic"); ok {
			if t < 0 || t > 1 {
				p.errf(kv[1], "traffic", "%v is outside [0, 1]", t)
			}
			e.Traffic = t
		}
	}
	if kv, ok := f["sticky"]; ok {
		e.Sticky, _ = p.boolean(kv[1], "sticky")
	}
	if kv, ok := f["bucketVersion"]; ok {
		if v, ok := p.num(kv[1], "bucketVersion"); ok {
			if v < 0 || v != math.Trunc(v) || v > math.MaxInt32 {
				p.errf(kv[1], "bucketVersion", "want a whole number >= 0, got %v", v)
			}
			e.BucketVersion = int(v)
		}
	}
	if kv, ok := f["status"]; ok {
		if s, ok := p.str(kv[1], "status"); ok {
			if s != StatusRunning && s != StatusPaused {
				p.errf(kv[1], "status", "unknown status %q (want %s or %s)", s, StatusRunning, StatusPaused)
			}
			e.Status = s
		}
	}
	for _, k := range []string{"start", "end"} {
		kv, ok := f[k]
		if !ok {
			continue
		}
		s, ok := p.str(kv[1], k)
		if !ok {
			continue
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			p.errf(kv[1], k, "want an RFC 3339 time like 2026-01-02T15:04:05Z, got %q", s)
			continue
		}
		if k == "start" {
			e.Start = t
		} else {
			e.End = t
			if !e.Start.IsZero() && !t.After(e.Start) {
				p.errf(kv[1], k, "end %s is not after start %s", s, e.Start.Format(time.RFC3339))
			}
		}
	}
	if kv, ok := f["namespace"]; ok {
		e.Namespace = p.namespace(kv[1])
	}
	var comps []*yaml.Node
	if kv, ok := f["components"]; ok {
		for j, c := range p.seq(kv[1], "components") {
			e.Components = append(e.Components, p.component(c, j))
			comps = append(comps, c)
		}
	}
	variants := -1
	for j, c := range e.Components {
		if j == 0 {
			variants = len(c.Variants)
		} else if len(c.Variants) != variants {
			p.errf(resolve(comps[j]), fmt.Sprintf("components[%d].variants", j), "has %d variants, components[0] has %d: every component needs the same count", len(c.Variants), variants)
		}
	}
	if kv, ok := f["distribution"]; ok {
		e.Distribution = p.distribution(kv[1], variants)
	} else {
		n := max(variants, 0) + 1
		e.Distribution = make([]float64, n)
		for j := range e.Distribution {
			e.Distribution[j] = 1 / float64(n)
		}
	}
	if kv, ok := f["qaUsers"]; ok {
		e.QAUsers = p.qaUsers(kv[1], len(e.Distribution))
	}
	ok := id != "" && len(p.errs) == nerr
	if ok {
		p.audPos = append(p.audPos, audPos)
	}
	return e, ok
}

func (p *parser) distribution(n *yaml.Node, variants int) []float64 {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		p.errf(n, "distribution", "want a list, got %s", describe(n))
		return nil
	}
	items := n.Content
	d := make([]float64, 0, len(items))
	sum, ok := 0.0, true
	for j, it := range items {
		v, good := p.num(it, fmt.Sprintf("distribution[%d]", j))
		if !good {
			ok = false
			continue
		}
		if v < 0 {
			p.errf(resolve(it), fmt.Sprintf("distribution[%d]", j), "%v is negative", v)
			ok = false
		}
		d = append(d, v)
		sum += v
	}
	if len(items) == 0 {
		p.errf(n, "distribution", "must not be empty")
		return d
	}
	if variants >= 0 && len(items) != variants+1 {
		p.errf(n, "distribution", "has %d entries, want %d (the baseline and %d variants)", len(items), variants+1, variants)
	}
	if ok && math.Abs(sum-1) > 1e-9 {
		p.errf(n, "distribution", "sums to %v, want 1", sum)
	}
	return d
}

func (p *parser) namespace(n *yaml.Node) *Namespace {
	f := p.fields(n, "namespace", "id", "range")
	if f == nil {
		return nil
	}
	ns := &Namespace{Range: [2]float64{0, 1}}
	if kv, ok := f["id"]; ok {
		ns.ID, _ = p.id(kv[1], "namespace.id")
	} else {
		p.errf(resolve(n), "namespace.id", "missing")
	}
	kv, ok := f["range"]
	if !ok {
		p.errf(resolve(n), "namespace.range", "missing")
		return ns
	}
	items := p.seq(kv[1], "namespace.range")
	if items == nil {
		return ns
	}
	if len(items) != 2 {
		p.errf(resolve(kv[1]), "namespace.range", "want [lo, hi], got %d numbers", len(items))
		return ns
	}
	good := true
	for j, it := range items {
		v, ok := p.num(it, fmt.Sprintf("namespace.range[%d]", j))
		if !ok {
			good = false
			continue
		}
		if v < 0 || v > 1 {
			p.errf(resolve(it), fmt.Sprintf("namespace.range[%d]", j), "%v is outside [0, 1]", v)
			good = false
		}
		ns.Range[j] = v
	}
	if good && ns.Range[0] > ns.Range[1] {
		p.errf(resolve(kv[1]), "namespace.range", "lo %v is above hi %v", ns.Range[0], ns.Range[1])
	}
	return ns
}

func (p *parser) component(n *yaml.Node, j int) Component {
	field := fmt.Sprintf("components[%d]", j)
	var c Component
	f := p.fields(n, field, "type", "key", "baseline", "variants")
	if f == nil {
		return c
	}
	n = resolve(n)
	if kv, ok := f["type"]; ok {
		if t, ok := p.str(kv[1], field+".type"); ok {
			if t != EntryReplacement && t != InlineVariable {
				p.errf(resolve(kv[1]), field+".type", "unknown component type %q (want %s or %s)", t, EntryReplacement, InlineVariable)
			}
			c.Type = t
		}
	} else {
		p.errf(n, field+".type", "missing")
	}
	if kv, ok := f["key"]; ok {
		c.Key, _ = p.id(kv[1], field+".key")
	}
	kv, hasBase := f["baseline"]
	if hasBase {
		c.Baseline = p.variant(c.Type, kv[1], field+".baseline")
	} else {
		p.errf(n, field+".baseline", "missing")
	}
	if kv, ok := f["variants"]; ok && !isNull(resolve(kv[1])) {
		for k, v := range p.seq(kv[1], field+".variants") {
			c.Variants = append(c.Variants, p.variant(c.Type, v, fmt.Sprintf("%s.variants[%d]", field, k)))
		}
	}
	if c.Key == "" {
		switch {
		case c.Type == EntryReplacement && hasBase:
			c.Key, _ = c.Baseline.Value.(string)
		case c.Type == InlineVariable:
			p.errf(n, field+".key", "missing (required for %s)", InlineVariable)
		}
	}
	return c
}

func (p *parser) variant(typ string, n *yaml.Node, field string) Variant {
	n = resolve(n)
	switch typ {
	case EntryReplacement:
		if n.Kind == yaml.MappingNode {
			f := p.fields(n, field, "id", "hidden")
			v := Variant{}
			if kv, ok := f["id"]; ok {
				v.Value, _ = p.id(kv[1], field+".id")
			} else if f != nil {
				p.errf(n, field+".id", "missing")
			}
			if kv, ok := f["hidden"]; ok {
				v.Hidden, _ = p.boolean(kv[1], field+".hidden")
			}
			return v
		}
		id, _ := p.id(n, field)
		return Variant{Value: id}
	case InlineVariable:
		v, _ := p.value(n, field, true)
		return Variant{Value: v}
	}
	return Variant{}
}

// value decodes an InlineVariable value: string, float64, bool or
// map[string]any at the top; inside objects any JSON value.
func (p *parser) value(n *yaml.Node, field string, top bool) (any, bool) {
	n = resolve(n)
	if top {
		p.budget = maxValueNodes
	}
	if p.budget--; p.budget < 0 {
		p.errf(n, field, "value too large: more than %d nodes (YAML aliases count each time they are used)", maxValueNodes)
		return nil, false
	}
	switch n.Kind {
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			if top {
				p.errf(n, field, "null is not a valid variable value")
				return nil, false
			}
			return nil, true
		case "!!bool":
			return p.boolean(n, field)
		case "!!int", "!!float":
			return p.num(n, field)
		}
		return n.Value, true
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := resolve(n.Content[i])
			if k.Kind != yaml.ScalarNode {
				p.errf(k, field, "keys must be strings")
				return nil, false
			}
			if _, dup := m[k.Value]; dup {
				p.errf(k, field+"."+k.Value, "duplicate key")
				return nil, false
			}
			v, ok := p.value(n.Content[i+1], field+"."+k.Value, false)
			if !ok {
				return nil, false
			}
			m[k.Value] = v
		}
		return m, true
	case yaml.SequenceNode:
		if top {
			p.errf(n, field, "a list is not a valid variable value (wrap it in an object)")
			return nil, false
		}
		out := make([]any, 0, len(n.Content))
		for i, it := range n.Content {
			v, ok := p.value(it, fmt.Sprintf("%s[%d]", field, i), false)
			if !ok {
				return nil, false
			}
			out = append(out, v)
		}
		return out, true
	}
	p.errf(n, field, "want a value, got %s", describe(n))
	return nil, false
}
