package engine

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/tailorhq/tailor/rules"
)

// recordFormatBinary is the first byte of a record in the compact binary
// format, the one written since format 1 (JSON, still read). Its layout is
// the fields of record in declaration order up to Exposed: strings and
// byte runs as a uvarint length and the bytes, integers as varints,
// float64s as 8 little-endian bytes of their IEEE 754 bits, maps and
// slices as a uvarint count and their entries (map keys sorted, so a
// record always encodes to the same bytes). Trait values are tagged
// (valueNil ... valueMap).
//
// Format 3 adds, after Exposed, an extension block: a uvarint count of
// fields, each a uvarint tag (ext...), a uvarint length and that many
// bytes. Fields at their zero value are left out, and a decoder skips the
// tags it does not know, so later fields need no new format byte. Format
// 2 (no block) is still read. A change to the fixed layout needs a new
// format byte; decodeRecord keeps reading every format ever written.
const (
	recordFormatV2     = 2
	recordFormatBinary = 3
)

// Tags of the extension block of format 3.
const (
	extForward      = 1 // string
	extFlags        = 2 // uvarint of flag... bits
	extAbsorbed     = 3 // uvarint count, then uvarints
	extImports      = 4 // uvarint count, then (uvarint batch, uvarint group) pairs
	extAliasesUntil = 5 // varint Unix ms
	extStickyAt     = 6 // uvarint count, then (string experience id, varint Unix ms) pairs: Assignment.At
)

// Bits of extFlags.
const (
	flagPending = 1 << iota
	flagDeleted
	flagBindPending
)

// Tags of trait values in the binary format.
const (
	valueNil = iota
	valueFalse
	valueTrue
	valueNumber
	valueString
	valueArray
	valueMap
)

// maxValueDepth bounds the nesting of trait values the decoder accepts, so
// crafted input cannot exhaust the stack (validation allows
// MaxTraitsDepth).
const maxValueDepth = 64

var errCorrupt = errors.New("tailor: corrupt profile record")

// encoder appends a record in the binary format. keys is scratch for
// sorting map keys; nested maps use it as a stack.
type encoder struct {
	b    []byte
	keys []string
}

func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) float(f float64)  { e.b = binary.LittleEndian.AppendUint64(e.b, math.Float64bits(f)) }

func (e *encoder) str(s string) {
	e.uvarint(uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *encoder) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

// sortedKeys pushes the keys of m on e.keys, sorted, and returns where
// they start; the caller reads e.keys[start:start+len(m)] (re-slicing
// after any nested push) and truncates e.keys to start when done.
func sortedKeys[V any](e *encoder, m map[string]V) int {
	start := len(e.keys)
	for k := range m {
		e.keys = append(e.keys, k)
	}
	slices.Sort(e.keys[start:])
	return start
}

func (e *encoder) record(r *record) error {
	e.str(r.ID)
	e.str(r.StableID)
	e.float(r.Random)
	e.str(r.UserID)
	e.uvarint(uint64(len(r.Merged)))
	for _, m := range r.Merged {
		e.str(m)
	}
	e.varint(r.Created)
	e.varint(r.Updated)
	if err := e.traits(r.Traits, r.scratch.traitKeys); err != nil {
		return err
	}
	e.location(&r.Location)
	e.str(r.Device.Type)
	e.str(r.Device.OS)
	e.str(r.Device.Browser)
	e.str(r.UserAgent)
	e.str(r.Locale)
	e.page(&r.Page)
	c := &r.Campaign
	for _, s := range [...]string{c.Name, c.Source, c.Medium, c.Term, c.Content} {
		e.str(s)
	}
	s := &r.Session
	e.str(s.ID)
	e.varint(s.Count)
	e.varint(s.Start)
	e.varint(s.LastSeen)
	e.page(&s.LandingPage)
	e.bool(s.Landed)
	e.varint(s.PastLength)
	e.histories(r.Events, r.scratch.eventKeys)
	e.histories(r.Views, r.scratch.viewKeys)

	start := sortedKeys(e, r.Sticky)
	e.uvarint(uint64(len(r.Sticky)))
	for _, k := range e.keys[start:] {
		as := r.Sticky[k]
		e.str(k)
		e.varint(int64(as.Variant))
		e.varint(int64(as.Bucket))
	}
	e.keys = e.keys[:start]

	start = sortedKeys(e, r.Exposed)
	e.uvarint(uint64(len(r.Exposed)))
	for _, k := range e.keys[start:] {
		vs := r.Exposed[k]
		e.str(k)
		e.uvarint(uint64(len(vs)))
		for _, v := range vs {
			e.varint(int64(v))
		}
	}
	e.keys = e.keys[:start]
	e.extensions(r)
	return nil
}

// extensions appends the extension block of format 3.
func (e *encoder) extensions(r *record) {
	var flags uint64
	if r.Pending {
		flags |= flagPending
	}
	if r.Deleted {
		flags |= flagDeleted
	}
	if r.BindPending {
		flags |= flagBindPending
	}
	stickyAt := 0 // assignments whose time is known
	for _, as := range r.Sticky {
		if as.At != 0 {
			stickyAt++
		}
	}
	n := 0
	for _, present := range [...]bool{r.Forward != "", flags != 0, len(r.Absorbed) > 0, len(r.Imports) > 0, r.AliasesUntil != 0, stickyAt > 0} {
		if present {
			n++
		}
	}
	e.uvarint(uint64(n))
	if r.Forward != "" {
		e.field(extForward, func() { e.b = append(e.b, r.Forward...) })
	}
	if flags != 0 {
		e.field(extFlags, func() { e.uvarint(flags) })
	}
	if len(r.Absorbed) > 0 {
		e.field(extAbsorbed, func() {
			e.uvarint(uint64(len(r.Absorbed)))
			for _, a := range r.Absorbed {
				e.uvarint(a)
			}
		})
	}
	if len(r.Imports) > 0 {
		e.field(extImports, func() {
			e.uvarint(uint64(len(r.Imports)))
			for _, m := range r.Imports {
				e.uvarint(m.Batch)
				e.uvarint(uint64(m.Group))
			}
		})
	}
	if r.AliasesUntil != 0 {
		e.field(extAliasesUntil, func() { e.varint(r.AliasesUntil) })
	}
	if stickyAt > 0 {
		e.field(extStickyAt, func() {
			e.uvarint(uint64(stickyAt))
			start := sortedKeys(e, r.Sticky)
			for _, k := range e.keys[start:] {
				if at := r.Sticky[k].At; at != 0 {
					e.str(k)
					e.varint(at)
				}
			}
			e.keys = e.keys[:start]
		})
	}
}

// field appends one extension field: its tag, then the bytes body appends,
// prefixed by their length. The length is written in one byte, and the
// body moved along when it needs more.
func (e *encoder) field(tag uint64, body func()) {
	e.uvarint(tag)
	at := len(e.b)
	e.b = append(e.b, 0)
	body()
	n := len(e.b) - at - 1
	if n < 0x80 {
		e.b[at] = byte(n)
		return
	}
	var l [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(l[:], uint64(n))
	e.b = append(e.b, l[:k-1]...) // room for the longer length
	copy(e.b[at+k:], e.b[at+1:at+1+n])
	copy(e.b[at:], l[:k])
}

func (e *encoder) location(l *Location) {
	if c := l.Coordinates; c != nil {
		e.b = append(e.b, 1)
		e.float(c.Latitude)
		e.float(c.Longitude)
	} else {
		e.b = append(e.b, 0)
	}
	for _, s := range [...]string{l.City, l.PostalCode, l.Region, l.RegionCode, l.Country, l.CountryCode, l.Continent, l.Timezone} {
		e.str(s)
	}
}

// page encodes p; its query is counted plus one, so that 0 means nil and
// an empty query survives as empty.
func (e *encoder) page(p *Page) {
	e.str(p.URL)
	e.str(p.Path)
	if p.Query == nil {
		e.uvarint(0)
	} else {
		start := sortedKeys(e, p.Query)
		e.uvarint(uint64(len(p.Query)) + 1)
		for _, k := range e.keys[start:] {
			e.str(k)
			e.str(p.Query[k])
		}
		e.keys = e.keys[:start]
	}
	e.str(p.Referrer)
	e.str(p.Search)
	e.str(p.Title)
}

// histories encodes a history map. order is its keys as last decoded
// (recordScratch): when they are still exactly its keys, the map is
// neither iterated nor sorted.
func (e *encoder) histories(m map[string]*rules.History, order []string) {
	if len(order) == len(m) {
		mark := len(e.b)
		if e.historiesIn(m, order) {
			return
		}
		e.b = e.b[:mark]
	}
	start := sortedKeys(e, m)
	e.historiesIn(m, e.keys[start:])
	e.keys = e.keys[:start]
}

// historiesIn appends m in the order of keys and reports true when keys
// are m's keys (as many, each in m, strictly increasing); else it stops
// early, having appended part.
func (e *encoder) historiesIn(m map[string]*rules.History, keys []string) bool {
	return inOrder(e, m, keys, func(h *rules.History) bool {
		if h == nil {
			h = &rules.History{}
		}
		e.varint(h.Count)
		e.varint(h.First)
		e.varint(h.Last)
		e.uvarint(uint64(len(h.Days)))
		for _, d := range h.Days {
			e.varint(int64(d.Day))
			e.varint(int64(d.N))
		}
		return true
	})
}

// keyInOrder returns m[keys[i]] and whether keys[i] is in m and greater
// than keys[i-1]: len(m) keys for which it holds are m's keys, sorted.
func keyInOrder[V any](m map[string]V, keys []string, i int) (V, bool) {
	v, ok := m[keys[i]]
	return v, ok && (i == 0 || keys[i-1] < keys[i])
}

// traits encodes a profile's traits, taking their keys from order (as
// histories does) when they are still the map's keys. A value that cannot
// be encoded is reported by the sorted path, naming the same key whatever
// the order was.
func (e *encoder) traits(m map[string]any, order []string) error {
	if len(order) == len(m) {
		mark, keys := len(e.b), len(e.keys)
		if e.valueMapIn(m, order, 0) {
			return nil
		}
		e.b, e.keys = e.b[:mark], e.keys[:keys] // a nested map's failure leaves its keys
	}
	return e.valueMap(m, 0)
}

// valueMap encodes a map of trait values: its count, then sorted keys
// with their values.
func (e *encoder) valueMap(m map[string]any, depth int) error {
	start := sortedKeys(e, m)
	n := len(m)
	e.uvarint(uint64(n))
	for i := range n {
		k := e.keys[start+i] // re-sliced: nested maps push on e.keys
		e.str(k)
		if err := e.value(m[k], depth+1); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	e.keys = e.keys[:start]
	return nil
}

// valueMapIn is valueMap in the order of keys, reporting false (having
// appended part) unless keys are m's keys, as historiesIn does, or a
// value cannot be encoded.
func (e *encoder) valueMapIn(m map[string]any, keys []string, depth int) bool {
	return inOrder(e, m, keys, func(v any) bool { return e.value(v, depth+1) == nil })
}

// inOrder appends the count of keys, then each key and, by value, its
// value in m, while keyInOrder holds and value succeeds; it reports
// whether all were appended.
func inOrder[V any](e *encoder, m map[string]V, keys []string, value func(V) bool) bool {
	e.uvarint(uint64(len(keys)))
	for i, k := range keys {
		v, ok := keyInOrder(m, keys, i)
		if !ok {
			return false
		}
		e.str(k)
		if !value(v) {
			return false
		}
	}
	return true
}

func (e *encoder) value(v any, depth int) error {
	if depth > maxValueDepth {
		return errors.New("nested too deep")
	}
	switch x := v.(type) {
	case nil:
		e.b = append(e.b, valueNil)
	case bool:
		if x {
			e.b = append(e.b, valueTrue)
		} else {
			e.b = append(e.b, valueFalse)
		}
	case float64:
		e.b = append(e.b, valueNumber)
		e.float(x)
	case string:
		e.b = append(e.b, valueString)
		e.str(x)
	case []any:
		e.b = append(e.b, valueArray)
		e.uvarint(uint64(len(x)))
		for _, y := range x {
			if err := e.value(y, depth+1); err != nil {
				return err
			}
		}
	case map[string]any:
		e.b = append(e.b, valueMap)
		return e.valueMap(x, depth)
	default:
		// Any other Go value (a caller's int, struct, json.Number) is
		// stored as JSON would store it, so both formats read back the
		// same generic value.
		g, err := jsonGeneric(x)
		if err != nil {
			return err
		}
		return e.value(g, depth)
	}
	return nil
}

// jsonGeneric returns v as encoding/json would decode its encoding into
// an any: maps, slices, float64s, strings, booleans and nil.
func jsonGeneric(v any) (any, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var g any
	err = json.Unmarshal(j, &g)
	return g, err
}

// decoder reads a record in the binary format. Strings are substrings of
// s, one copy of the whole input, so decoding allocates per map and slice
// rather than per string. Every read is bounds-checked: garbage gives
// errCorrupt, never a panic.
type decoder struct {
	s   string
	i   int
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errCorrupt
	}
	d.i = len(d.s)
}

func (d *decoder) uvarint() uint64 {
	var v uint64
	var shift uint
	for k := 0; k < binary.MaxVarintLen64; k++ {
		if d.i >= len(d.s) {
			d.fail()
			return 0
		}
		c := d.s[d.i]
		d.i++
		if c < 0x80 {
			if k == binary.MaxVarintLen64-1 && c > 1 {
				d.fail()
				return 0
			}
			return v | uint64(c)<<shift
		}
		v |= uint64(c&0x7f) << shift
		shift += 7
	}
	d.fail()
	return 0
}

func (d *decoder) varint() int64 {
	u := d.uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

// int reads a varint that must fit an int32-sized count or index.
func (d *decoder) int() int {
	v := d.varint()
	if v < math.MinInt32 || v > math.MaxInt32 {
		d.fail()
		return 0
	}
	return int(v)
}

// count reads a length of elements each taking at least min bytes, and
// checks that many bytes remain, so garbage cannot make the decoder
// allocate more than the input's size.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if n > uint64(len(d.s)-d.i)/uint64(min) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *decoder) float() float64 {
	if len(d.s)-d.i < 8 {
		d.fail()
		return 0
	}
	var b [8]byte
	copy(b[:], d.s[d.i:d.i+8])
	d.i += 8
	return math.Float64frombits(binary.LittleEndian.Uint64(b[:]))
}

func (d *decoder) byte() byte {
	if d.i >= len(d.s) {
		d.fail()
		return 0
	}
	c := d.s[d.i]
	d.i++
	return c
}

func (d *decoder) bool() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail()
	return false
}

func (d *decoder) str() string {
	n := d.count(1)
	s := d.s[d.i : d.i+n]
	d.i += n
	return s
}

// decodeBinary decodes a record of format (recordFormatV2 or
// recordFormatBinary) from b, the bytes after the format byte.
func decodeBinary(b []byte, format byte) (*record, error) {
	r := new(record)
	if err := decodeInto(r, b, format); err != nil {
		return nil, err
	}
	return r, nil
}

// decodeInto is decodeBinary into r, reusing r's maps and the arrays of
// its histories and exposures (record.scratch) from an earlier decode, so
// that a pooled record decodes with few allocations. Nothing of r's
// earlier content may be in use: the maps are cleared and the arrays
// overwritten.
func decodeInto(r *record, b []byte, format byte) error {
	old := *r
	*r = record{scratch: old.scratch}
	sc := &r.scratch
	clear(old.Traits)
	clear(old.Events)
	clear(old.Views)
	clear(old.Sticky)
	clear(old.Exposed)
	d := &decoder{s: string(b)}
	r.ID = d.str()
	r.StableID = d.str()
	r.Random = d.float()
	r.UserID = d.str()
	if n := d.count(1); n > 0 {
		r.Merged = slices.Grow(old.Merged[:0], n)[:n]
		for i := range r.Merged {
			r.Merged[i] = d.str()
		}
	}
	r.Created = d.varint()
	r.Updated = d.varint()
	r.Traits = d.valueMapInto(old.Traits, 0, &sc.traitKeys)
	d.location(&r.Location)
	r.Device.Type = d.str()
	r.Device.OS = d.str()
	r.Device.Browser = d.str()
	r.UserAgent = d.str()
	r.Locale = d.str()
	d.page(&r.Page)
	c := &r.Campaign
	for _, p := range [...]*string{&c.Name, &c.Source, &c.Medium, &c.Term, &c.Content} {
		*p = d.str()
	}
	s := &r.Session
	s.ID = d.str()
	s.Count = d.varint()
	s.Start = d.varint()
	s.LastSeen = d.varint()
	d.page(&s.LandingPage)
	s.Landed = d.bool()
	s.PastLength = d.varint()
	r.Events = d.histories(old.Events, &sc.events, &sc.eventDays, &sc.eventKeys)
	r.Views = d.histories(old.Views, &sc.views, &sc.viewDays, &sc.viewKeys)
	if n := d.count(3); n > 0 {
		r.Sticky = old.Sticky
		if r.Sticky == nil {
			r.Sticky = make(map[string]Assignment, n)
		}
		for range n {
			k := d.str()
			r.Sticky[k] = Assignment{Variant: d.int(), Bucket: d.int()}
		}
	}
	if n := d.count(2); n > 0 {
		r.Exposed = old.Exposed
		if r.Exposed == nil {
			r.Exposed = make(map[string][]int, n)
		}
		ints := sc.exposed[:0]
		for range n {
			k := d.str()
			nv := d.count(1)
			start := len(ints)
			for range nv {
				ints = append(ints, d.int())
			}
			// Capped, so that an append copies rather than writing
			// into the next experience's variants.
			r.Exposed[k] = ints[start:len(ints):len(ints)]
		}
		sc.exposed = ints
	}
	if format >= recordFormatBinary {
		d.extensions(r)
	}
	if d.err == nil && d.i != len(d.s) {
		d.err = errCorrupt // trailing bytes
	}
	return d.err
}

// extensions reads the extension block of format 3 into r, skipping
// fields of unknown tags.
func (d *decoder) extensions(r *record) {
	n := d.count(2)
	for range n {
		tag := d.uvarint()
		body := d.count(1)
		end := d.i + body
		if d.err != nil {
			return
		}
		f := &decoder{s: d.s[:end], i: d.i}
		switch tag {
		case extForward:
			r.Forward = f.s[f.i:end]
			f.i = end
		case extFlags:
			flags := f.uvarint()
			r.Pending = flags&flagPending != 0
			r.Deleted = flags&flagDeleted != 0
			r.BindPending = flags&flagBindPending != 0
		case extAbsorbed:
			r.Absorbed = make([]uint64, f.count(1))
			for i := range r.Absorbed {
				r.Absorbed[i] = f.uvarint()
			}
		case extImports:
			r.Imports = make([]importMark, f.count(2))
			for i := range r.Imports {
				r.Imports[i] = importMark{Batch: f.uvarint(), Group: uint32(f.uvarint())}
			}
		case extAliasesUntil:
			r.AliasesUntil = f.varint()
		case extStickyAt:
			for range f.count(2) {
				k := f.str()
				at := f.varint()
				if as, ok := r.Sticky[k]; ok {
					as.At = at
					r.Sticky[k] = as
				}
			}
		default:
			f.i = end // a field of a later version
		}
		if f.err != nil || f.i != end {
			d.fail()
			return
		}
		d.i = end
	}
}

func (d *decoder) location(l *Location) {
	if d.bool() {
		l.Coordinates = &Coordinates{Latitude: d.float(), Longitude: d.float()}
	}
	for _, p := range [...]*string{&l.City, &l.PostalCode, &l.Region, &l.RegionCode, &l.Country, &l.CountryCode, &l.Continent, &l.Timezone} {
		*p = d.str()
	}
}

func (d *decoder) page(p *Page) {
	p.URL = d.str()
	p.Path = d.str()
	if n := d.uvarint(); n > 0 {
		n--
		if n > uint64(len(d.s)-d.i)/2 {
			d.fail()
			return
		}
		p.Query = make(map[string]string, n)
		for range n {
			k := d.str()
			p.Query[k] = d.str()
		}
	}
	p.Referrer = d.str()
	p.Search = d.str()
	p.Title = d.str()
}

// histories decodes a history map into m (cleared; nil: a new one), and
// its keys in encoded order into *keys. The histories and their daily
// counts share two arrays, *hsBuf and *daysBuf, reused from an earlier
// decode when large enough; each Days slice is capped at its length so an
// append never writes into its neighbour.
func (d *decoder) histories(m map[string]*rules.History, hsBuf *[]rules.History, daysBuf *[]rules.DayCount, keys *[]string) map[string]*rules.History {
	n := d.count(5)
	*keys = (*keys)[:0]
	if n == 0 {
		return m
	}
	if m == nil {
		m = make(map[string]*rules.History, n)
	}
	if cap(*hsBuf) < n {
		*hsBuf = make([]rules.History, n)
	}
	hs := (*hsBuf)[:n]
	days := (*daysBuf)[:0]
	defer func() { *daysBuf = days }()
	for i := range hs {
		k := d.str()
		*keys = append(*keys, k)
		h := &hs[i]
		h.Count = d.varint()
		h.First = d.varint()
		h.Last = d.varint()
		if nd := d.count(2); nd > 0 {
			if cap(days)-len(days) < nd {
				// Room for this history's days and, as a guess, as many
				// per remaining history, bounded by what the remaining
				// input can hold (a day takes at least 2 bytes).
				c := min(nd*(n-i), nd+(len(d.s)-d.i)/2)
				days = make([]rules.DayCount, 0, c)
			}
			start := len(days)
			for range nd {
				days = append(days, rules.DayCount{Day: int32(d.int()), N: int32(d.int())})
			}
			h.Days = days[start:len(days):len(days)]
		}
		m[k] = h
	}
	return m
}

func (d *decoder) valueMap(depth int) map[string]any {
	return d.valueMapInto(nil, depth, nil)
}

// valueMapInto decodes a map of values into m (cleared; nil: a new one,
// or nil when the map is empty), and its keys in encoded order into *keys
// unless keys is nil.
func (d *decoder) valueMapInto(m map[string]any, depth int, keys *[]string) map[string]any {
	n := d.count(2)
	if keys != nil {
		*keys = (*keys)[:0]
	}
	if n == 0 {
		return m
	}
	if m == nil {
		m = make(map[string]any, n)
	}
	for range n {
		k := d.str()
		if keys != nil {
			*keys = append(*keys, k)
		}
		m[k] = d.value(depth + 1)
		if d.err != nil {
			return nil
		}
	}
	return m
}

func (d *decoder) value(depth int) any {
	if depth > maxValueDepth {
		d.fail()
		return nil
	}
	switch d.byte() {
	case valueNil:
		return nil
	case valueFalse:
		return false
	case valueTrue:
		return true
	case valueNumber:
		return d.float()
	case valueString:
		return d.str()
	case valueArray:
		a := make([]any, d.count(1))
		for i := range a {
			a[i] = d.value(depth + 1)
			if d.err != nil {
				return nil
			}
		}
		return a
	case valueMap:
		m := d.valueMap(depth)
		if m == nil {
			// An empty nested map stays a map, as JSON would give it.
			m = map[string]any{}
		}
		return m
	}
	d.fail()
	return nil
}
