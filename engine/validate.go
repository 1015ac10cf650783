package engine

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on one request. Identify rejects a request over any of them with
// an *InputError naming the field, before anything is written.
const (
	MaxEvents         = 200      // events per request
	MaxIdentifyEvents = 50       // identify events per request
	MaxBodyBytes      = 1 << 20  // request body on the wire (enforced by the HTTP layer)
	MaxIDBytes        = 256      // profile ids, user ids, anonymous ids, message ids
	MaxNameBytes      = 1024     // event names, screen names, trait and query keys, user agents, locales, location fields
	MaxURLBytes       = 8192     // page URLs, paths, referrers, searches, titles, query values, campaign fields
	MaxQueryBytes     = 8192     // a page's query: its keys and values together
	MaxCampaignBytes  = 8192     // a campaign: its five fields together
	MaxTraitsBytes    = 32 << 10 // traits of one identify event, and of a profile
	MaxTraitsDepth    = 8
	MaxRecordBytes    = 896 << 10 // a profile as stored, everything included (Badger refuses values over 1 MiB)
	// MaxFutureSkew is how far ahead of the engine's clock an event
	// timestamp may be.
	MaxFutureSkew = 24 * time.Hour
)

// minTimestamp is the earliest event time accepted.
var minTimestamp = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

// event is a validated event with its time in Unix milliseconds.
type event struct {
	*Event
	at int64
}

// validate checks the whole request and returns its events sorted by time
// (stable, so events with equal times keep their order).
func validate(req *Request, now time.Time) ([]event, error) {
	n := len(req.Events)
	if n == 0 {
		return nil, invalid("events", "at least one event is required")
	}
	if n > MaxEvents {
		return nil, invalid("events", "%d events, at most %d allowed", n, MaxEvents)
	}
	for i, f := range req.Options.Features {
		if r := stringProblem(f, MaxNameBytes); r != "" {
			return nil, &InputError{Field: fmt.Sprintf("options.features[%d]", i), Reason: r}
		}
	}
	if err := checkString("locale", req.Locale, MaxNameBytes); err != nil {
		return nil, err
	}
	nowMs := now.UnixMilli()
	evs := make([]event, n)
	identifies := 0
	for i := range req.Events {
		ev := &req.Events[i]
		at, err := checkEvent(i, ev, nowMs)
		if err != nil {
			return nil, err
		}
		if ev.Type == EventIdentify {
			identifies++
			if identifies > MaxIdentifyEvents {
				return nil, invalid("events", "more than %d identify events", MaxIdentifyEvents)
			}
		}
		evs[i] = event{Event: ev, at: at}
	}
	slices.SortStableFunc(evs, func(a, b event) int {
		switch {
		case a.at < b.at:
			return -1
		case a.at > b.at:
			return 1
		}
		return 0
	})
	return evs, nil
}

func checkEvent(i int, ev *Event, nowMs int64) (int64, error) {
	// Field names are built only when an error is reported: a valid
	// request builds no strings.
	field := eventField(i).name
	switch ev.Type {
	case EventPage, EventTrack, EventIdentify, EventScreen, EventComponent, EventAlias, EventGroup:
	case "":
		return 0, invalid(field("type"), "is required")
	default:
		return 0, invalid(field("type"), "unknown event type %q", truncate(ev.Type))
	}
	switch ev.Channel {
	case "", "web", "mobile", "server":
	default:
		return 0, invalid(field("channel"), "must be web, mobile or server, not %q", truncate(ev.Channel))
	}
	for _, s := range [...]struct{ name, v string }{
		{"messageId", ev.MessageID}, {"anonymousId", ev.AnonymousID}, {"userId", ev.UserID},
		{"componentId", ev.ComponentID}, {"experienceId", ev.ExperienceID}, {"viewId", ev.ViewID},
	} {
		if r := stringProblem(s.v, MaxIDBytes); r != "" {
			return 0, &InputError{Field: field(s.name), Reason: r}
		}
	}
	for _, s := range [...]struct{ name, v string }{
		{"name", ev.Name}, {"event", ev.Event}, {"componentType", ev.ComponentType},
		{"context.locale", ev.Context.Locale}, {"context.userAgent", ev.Context.UserAgent},
	} {
		if r := stringProblem(s.v, MaxNameBytes); r != "" {
			return 0, &InputError{Field: field(s.name), Reason: r}
		}
	}
	switch ev.Type {
	case EventTrack:
		if ev.Event == "" {
			return 0, invalid(field("event"), "is required for a track event")
		}
	case EventScreen:
		if ev.Name == "" {
			return 0, invalid(field("name"), "is required for a screen event")
		}
	case EventIdentify:
		if path, r := traitsProblem(ev.Traits); r != "" {
			return 0, &InputError{Field: field("traits", path), Reason: r}
		}
	case EventComponent:
		if ev.ComponentID == "" {
			return 0, invalid(field("componentId"), "is required for a component event")
		}
		if ev.VariantIndex != nil && *ev.VariantIndex < 0 {
			return 0, invalid(field("variantIndex"), "must not be negative")
		}
		if math.IsNaN(ev.ViewDurationMs) || math.IsInf(ev.ViewDurationMs, 0) || ev.ViewDurationMs < 0 {
			return 0, invalid(field("viewDurationMs"), "must be a non-negative number")
		}
	}
	if path, r := valueProblem(ev.Properties, 1, MaxTraitsDepth); r != "" {
		return 0, &InputError{Field: field("properties", path), Reason: r}
	}
	if p := ev.Context.Page; p != nil {
		for _, s := range [...]struct{ name, v string }{
			{"url", p.URL}, {"path", p.Path}, {"referrer", p.Referrer}, {"search", p.Search}, {"title", p.Title},
		} {
			if r := stringProblem(s.v, MaxURLBytes); r != "" {
				return 0, &InputError{Field: field("context.page.", s.name), Reason: r}
			}
		}
		n := 0
		for k, v := range p.Query {
			if r := stringProblem(k, MaxNameBytes); r != "" {
				return 0, &InputError{Field: field("context.page.query"), Reason: r}
			}
			if r := stringProblem(v, MaxURLBytes); r != "" {
				return 0, &InputError{Field: field("context.page.query.", truncate(k)), Reason: r}
			}
			n += len(k) + len(v)
		}
		if n > MaxQueryBytes {
			return 0, invalid(field("context.page.query"), "keys and values are %d bytes, at most %d allowed", n, MaxQueryBytes)
		}
	}
	if ev.Type == EventPage {
		// The page's fields missing from context.page are taken from the
		// properties (see pageOf): those are stored too.
		var p Page
		if ev.Context.Page != nil {
			p = *ev.Context.Page
		}
		for _, s := range [...]struct{ name, have string }{
			{"url", p.URL}, {"path", p.Path}, {"referrer", p.Referrer}, {"title", p.Title},
		} {
			if v, ok := ev.Properties[s.name].(string); ok && s.have == "" {
				if r := stringProblem(v, MaxURLBytes); r != "" {
					return 0, &InputError{Field: field("properties.", s.name), Reason: r}
				}
			}
		}
	}
	if c := ev.Context.Campaign; c != nil {
		n := 0
		for _, s := range [...]struct{ name, v string }{
			{"name", c.Name}, {"source", c.Source}, {"medium", c.Medium}, {"term", c.Term}, {"content", c.Content},
		} {
			if r := stringProblem(s.v, MaxURLBytes); r != "" {
				return 0, &InputError{Field: field("context.campaign.", s.name), Reason: r}
			}
			n += len(s.v)
		}
		if n > MaxCampaignBytes {
			return 0, invalid(field("context.campaign"), "fields are %d bytes together, at most %d allowed", n, MaxCampaignBytes)
		}
	}
	if l := ev.Context.Location; l != nil {
		if path, r := locationProblem(l); r != "" {
			return 0, &InputError{Field: field("context.location", path), Reason: r}
		}
	}
	return eventTime(eventField(i), ev, nowMs)
}

// eventField is the index of an event, naming its fields in errors.
type eventField int

// name returns "events[i]." followed by parts.
func (i eventField) name(parts ...string) string {
	return fmt.Sprintf("events[%d].%s", int(i), strings.Join(parts, ""))
}

// eventTime returns the time of ev: timestamp, else originalTimestamp, else
// sentAt, else now. Every one given must parse.
func eventTime(i eventField, ev *Event, nowMs int64) (int64, error) {
	field := i.name
	at := int64(0)
	for _, s := range [...]struct{ name, v string }{
		{"timestamp", ev.Timestamp}, {"originalTimestamp", ev.OriginalTimestamp}, {"sentAt", ev.SentAt},
	} {
		if s.v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, s.v)
		if err != nil {
			return 0, invalid(field(s.name), "%q is not an ISO 8601 time (RFC 3339)", truncate(s.v))
		}
		ms := t.UnixMilli()
		if ms < minTimestamp {
			return 0, invalid(field(s.name), "%s is before 2000-01-01", s.v)
		}
		if ms > nowMs+MaxFutureSkew.Milliseconds() {
			return 0, invalid(field(s.name), "%s is more than %s in the future", s.v, MaxFutureSkew)
		}
		if at == 0 {
			at = ms
		}
	}
	if at == 0 {
		at = nowMs
	}
	return at, nil
}

// locationProblem returns what is wrong with l, if anything: the path of
// the bad field (from l, starting with '.') and the reason, or "", "".
func locationProblem(l *Location) (path, reason string) {
	if l.CountryCode != "" && l.CountryCode != "XX" && l.CountryCode != "unknown" &&
		!validCountryCode(strings.ToUpper(l.CountryCode)) {
		return ".countryCode", fmt.Sprintf("%q is not an ISO 3166-1 alpha-2 country code", truncate(l.CountryCode))
	}
	if c := l.Coordinates; c != nil {
		if !(c.Latitude >= -90 && c.Latitude <= 90) {
			return ".coordinates.latitude", "must be within [-90, 90]"
		}
		if !(c.Longitude >= -180 && c.Longitude <= 180) {
			return ".coordinates.longitude", "must be within [-180, 180]"
		}
	}
	for _, s := range [...]struct{ name, v string }{
		{"city", l.City}, {"postalCode", l.PostalCode}, {"region", l.Region}, {"regionCode", l.RegionCode},
		{"country", l.Country}, {"continent", l.Continent}, {"timezone", l.Timezone},
	} {
		if r := stringProblem(s.v, MaxNameBytes); r != "" {
			return "." + s.name, r
		}
	}
	return "", ""
}

// normalizeLocation returns l with its country code upper-cased and the
// placeholders for "unknown country" dropped.
func normalizeLocation(l Location) Location {
	l.CountryCode = strings.ToUpper(l.CountryCode)
	if l.CountryCode == "XX" || l.CountryCode == "UNKNOWN" {
		l.CountryCode = ""
	}
	if l.Coordinates != nil {
		c := *l.Coordinates
		l.Coordinates = &c
	}
	return l
}

// checkID validates a profile id given by a caller. Besides the rules of
// every string, ids must not contain path separators: they appear in URL
// paths (/profiles/{id}) and in logs and exports, where "a/../b" or `a\b`
// could be read as a path.
func checkID(field, id string) error {
	if err := checkString(field, id, MaxIDBytes); err != nil {
		return err
	}
	if strings.ContainsAny(id, "/\\") {
		return invalid(field, "must not contain / or \\")
	}
	return nil
}

func checkString(field, s string, maxBytes int) error {
	if r := stringProblem(s, maxBytes); r != "" {
		return &InputError{Field: field, Reason: r}
	}
	return nil
}

// stringProblem returns what is wrong with s as a string field of at most
// maxBytes, or "" when nothing is.
func stringProblem(s string, maxBytes int) string {
	if len(s) > maxBytes {
		return fmt.Sprintf("is %d bytes long, at most %d allowed", len(s), maxBytes)
	}
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	for i := 0; i < len(s); i++ {
		// Valid UTF-8 never has a byte below 0x80 inside a multi-byte
		// sequence, so a byte scan finds every control character.
		if c := s[i]; c < 0x20 || c == 0x7f {
			return "contains a control character"
		}
	}
	return ""
}

// traitsProblem returns what is wrong with traits, if anything: the path
// of the bad value (from traits) and the reason, or "", "".
func traitsProblem(traits map[string]any) (path, reason string) {
	if path, r := valueProblem(traits, 1, MaxTraitsDepth); r != "" {
		return path, r
	}
	n, err := jsonSize(traits)
	if err != nil {
		return "", fmt.Sprintf("cannot be encoded as JSON: %v", err)
	}
	if n > MaxTraitsBytes {
		return "", fmt.Sprintf("is %d bytes as JSON, at most %d allowed", n, MaxTraitsBytes)
	}
	return "", ""
}

// jsonSize returns len(json.Marshal(v)) without building the encoding for
// the types JSON decoding produces (maps, slices, strings, float64s,
// booleans, nil); other values are marshalled. TestJSONSize and
// FuzzJSONSize hold it to encoding/json.
func jsonSize(v any) (int, error) {
	switch x := v.(type) {
	case nil:
		return 4, nil
	case bool:
		if x {
			return 4, nil
		}
		return 5, nil
	case string:
		return jsonStringSize(x), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			break // json.Marshal reports the error
		}
		// encoding/json's float format: 'e' outside [1e-6, 1e21), with a
		// two-digit negative exponent shortened (1e-07 → 1e-7).
		var buf [32]byte
		format := byte('f')
		if abs := math.Abs(x); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
			format = 'e'
		}
		b := strconv.AppendFloat(buf[:0], x, format, -1, 64)
		n := len(b)
		if format == 'e' && n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			n--
		}
		return n, nil
	case map[string]any:
		n := 2 + max(len(x)-1, 0) // braces and commas
		for k, e := range x {
			m, err := jsonSize(e)
			if err != nil {
				return 0, err
			}
			n += jsonStringSize(k) + 1 + m
		}
		return n, nil
	case []any:
		n := 2 + max(len(x)-1, 0)
		for _, e := range x {
			m, err := jsonSize(e)
			if err != nil {
				return 0, err
			}
			n += m
		}
		return n, nil
	}
	b, err := json.Marshal(v)
	return len(b), err
}

// maxJSONNumber is the longest float64 encoding/json writes:
// "-0.0000012345678901234567" (17 digits below 1e-6 switch to exponents).
const maxJSONNumber = 25

// jsonSizeBound returns an upper bound of jsonSize(v) without formatting
// numbers or scanning strings (a byte escapes to at most 6), or false for
// a value it does not bound: one jsonSize marshals or rejects.
func jsonSizeBound(v any) (int, bool) {
	switch x := v.(type) {
	case nil, bool:
		return 5, true
	case string:
		return 2 + 6*len(x), true
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return 0, false
		}
		return maxJSONNumber, true
	case map[string]any:
		n := 2 + len(x) // braces, commas and colons
		for k, e := range x {
			m, ok := jsonSizeBound(e)
			if !ok {
				return 0, false
			}
			n += 2 + 6*len(k) + m
		}
		return n, true
	case []any:
		n := 2 + len(x)
		for _, e := range x {
			m, ok := jsonSizeBound(e)
			if !ok {
				return 0, false
			}
			n += m
		}
		return n, true
	}
	return 0, false
}

// jsonStringSize is the length of s encoded by encoding/json: quoted, with
// its escapes (HTML characters, U+2028 and U+2029 as \uXXXX, invalid
// UTF-8 bytes as \ufffd).
func jsonStringSize(s string) int {
	n := 2
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t':
				n += 2
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				n += 6
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			n += 6
		case r == '\u2028' || r == '\u2029':
			n += 6
		default:
			n += size
		}
		i += size
	}
	return n
}

// valueProblem walks a JSON-like value: keys are valid strings, numbers
// are finite, nesting is at most maxDepth levels. It returns the path of
// the first bad value found (from v: ".key" and "[index]" steps) and what
// is wrong with it, or "", "". The path is built only on error.
func valueProblem(v any, depth, maxDepth int) (path, reason string) {
	switch x := v.(type) {
	case map[string]any:
		if depth > maxDepth {
			return "", fmt.Sprintf("is nested more than %d levels deep", maxDepth)
		}
		for k, e := range x {
			if r := stringProblem(k, MaxNameBytes); r != "" {
				return "", "has a bad key: " + r
			}
			if p, r := valueProblem(e, depth+1, maxDepth); r != "" {
				return "." + truncate(k) + p, r
			}
		}
	case []any:
		if depth > maxDepth {
			return "", fmt.Sprintf("is nested more than %d levels deep", maxDepth)
		}
		for i, e := range x {
			if p, r := valueProblem(e, depth+1, maxDepth); r != "" {
				return fmt.Sprintf("[%d]%s", i, p), r
			}
		}
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "", "is not a finite number"
		}
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return "", "is not a finite number"
		}
	case string:
		if !utf8.ValidString(x) {
			return "", "is not valid UTF-8"
		}
	}
	return "", ""
}

// truncate shortens s for an error message.
func truncate(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "…"
}

// MaxMergedIDs bounds how many merged-away ids a profile keeps as aliases;
// past it, the oldest stop resolving.
const MaxMergedIDs = 256

// checkStoredTraits keeps a profile's accumulated traits within
// MaxTraitsBytes: many identify events, each within the limit, must not
// grow a profile without bound.
func checkStoredTraits(traits map[string]any) error {
	if len(traits) == 0 {
		return nil
	}
	if n, ok := jsonSizeBound(traits); ok && n <= MaxTraitsBytes {
		return nil // within the limit however it encodes
	}
	n, err := jsonSize(traits)
	if err != nil {
		return invalid("traits", "cannot be encoded as JSON: %v", err)
	}
	if n > MaxTraitsBytes {
		return invalid("traits", "the profile's traits would be %d bytes as JSON, at most %d allowed", n, MaxTraitsBytes)
	}
	return nil
}

// checkRecordSize refuses to store a profile record of n bytes over
// MaxRecordBytes. The bounds on every field and history keep a profile
// well within it; this is the last line, so that nothing a request adds can
// make a profile too large to write (the store's limit on one value is
// larger).
func checkRecordSize(n int) error {
	if n > MaxRecordBytes {
		return invalid("profile", "would be %d bytes stored, at most %d allowed", n, MaxRecordBytes)
	}
	return nil
}

// traitsChanged reports whether any event sets traits.
func traitsChanged(evs []event) bool {
	for _, ev := range evs {
		if ev.Type == EventIdentify && len(ev.Traits) > 0 {
			return true
		}
	}
	return false
}
