package engine

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
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
	MaxNameBytes      = 1024     // event names, screen names, trait keys
	MaxURLBytes       = 8192     // page URLs, paths, referrers
	MaxTraitsBytes    = 32 << 10 // traits of one identify event, and of a profile
	MaxTraitsDepth    = 8
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
		if err := checkString(fmt.Sprintf("options.features[%d]", i), f, MaxNameBytes); err != nil {
			return nil, err
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
	field := func(name string) string { return fmt.Sprintf("events[%d].%s", i, name) }
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
		if err := checkString(field(s.name), s.v, MaxIDBytes); err != nil {
			return 0, err
		}
	}
	for _, s := range [...]struct{ name, v string }{
		{"name", ev.Name}, {"event", ev.Event}, {"componentType", ev.ComponentType},
		{"context.locale", ev.Context.Locale}, {"context.userAgent", ev.Context.UserAgent},
	} {
		if err := checkString(field(s.name), s.v, MaxNameBytes); err != nil {
			return 0, err
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
		if err := checkTraits(field("traits"), ev.Traits); err != nil {
			return 0, err
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
	if err := checkValue(field("properties"), ev.Properties, 1, MaxTraitsDepth); err != nil {
		return 0, err
	}
	if p := ev.Context.Page; p != nil {
		for _, s := range [...]struct{ name, v string }{
			{"url", p.URL}, {"path", p.Path}, {"referrer", p.Referrer}, {"search", p.Search}, {"title", p.Title},
		} {
			if err := checkString(field("context.page."+s.name), s.v, MaxURLBytes); err != nil {
				return 0, err
			}
		}
		for k, v := range p.Query {
			if err := checkString(field("context.page.query"), k, MaxNameBytes); err != nil {
				return 0, err
			}
			if err := checkString(field("context.page.query."+truncate(k)), v, MaxURLBytes); err != nil {
				return 0, err
			}
		}
	}
	if c := ev.Context.Campaign; c != nil {
		for _, s := range [...]struct{ name, v string }{
			{"name", c.Name}, {"source", c.Source}, {"medium", c.Medium}, {"term", c.Term}, {"content", c.Content},
		} {
			if err := checkString(field("context.campaign."+s.name), s.v, MaxURLBytes); err != nil {
				return 0, err
			}
		}
	}
	if l := ev.Context.Location; l != nil {
		if err := checkLocation(field("context.location"), l); err != nil {
			return 0, err
		}
	}
	return eventTime(field, ev, nowMs)
}

// eventTime returns the time of ev: timestamp, else originalTimestamp, else
// sentAt, else now. Every one given must parse.
func eventTime(field func(string) string, ev *Event, nowMs int64) (int64, error) {
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

func checkLocation(field string, l *Location) error {
	if l.CountryCode != "" && l.CountryCode != "XX" && l.CountryCode != "unknown" &&
		!validCountryCode(strings.ToUpper(l.CountryCode)) {
		return invalid(field+".countryCode", "%q is not an ISO 3166-1 alpha-2 country code", truncate(l.CountryCode))
	}
	if c := l.Coordinates; c != nil {
		if !(c.Latitude >= -90 && c.Latitude <= 90) {
			return invalid(field+".coordinates.latitude", "must be within [-90, 90]")
		}
		if !(c.Longitude >= -180 && c.Longitude <= 180) {
			return invalid(field+".coordinates.longitude", "must be within [-180, 180]")
		}
	}
	for _, s := range [...]struct{ name, v string }{
		{"city", l.City}, {"postalCode", l.PostalCode}, {"region", l.Region}, {"regionCode", l.RegionCode},
		{"country", l.Country}, {"continent", l.Continent}, {"timezone", l.Timezone},
	} {
		if err := checkString(field+"."+s.name, s.v, MaxNameBytes); err != nil {
			return err
		}
	}
	return nil
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
	if len(s) > maxBytes {
		return invalid(field, "is %d bytes long, at most %d allowed", len(s), maxBytes)
	}
	if !utf8.ValidString(s) {
		return invalid(field, "is not valid UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return invalid(field, "contains a control character")
		}
	}
	return nil
}

func checkTraits(field string, traits map[string]any) error {
	if err := checkValue(field, traits, 1, MaxTraitsDepth); err != nil {
		return err
	}
	b, err := json.Marshal(traits)
	if err != nil {
		return invalid(field, "cannot be encoded as JSON: %v", err)
	}
	if len(b) > MaxTraitsBytes {
		return invalid(field, "is %d bytes as JSON, at most %d allowed", len(b), MaxTraitsBytes)
	}
	return nil
}

// checkValue walks a JSON-like value: keys are valid strings, numbers are
// finite, nesting is at most maxDepth levels.
func checkValue(field string, v any, depth, maxDepth int) error {
	switch x := v.(type) {
	case map[string]any:
		if depth > maxDepth {
			return invalid(field, "is nested more than %d levels deep", maxDepth)
		}
		for k, e := range x {
			if err := checkString(field, k, MaxNameBytes); err != nil {
				return invalid(field, "has a bad key: %s", err.(*InputError).Reason)
			}
			if err := checkValue(field+"."+truncate(k), e, depth+1, maxDepth); err != nil {
				return err
			}
		}
	case []any:
		if depth > maxDepth {
			return invalid(field, "is nested more than %d levels deep", maxDepth)
		}
		for i, e := range x {
			if err := checkValue(fmt.Sprintf("%s[%d]", field, i), e, depth+1, maxDepth); err != nil {
				return err
			}
		}
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return invalid(field, "is not a finite number")
		}
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return invalid(field, "is not a finite number")
		}
	case string:
		if !utf8.ValidString(x) {
			return invalid(field, "is not valid UTF-8")
		}
	}
	return nil
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
	b, err := json.Marshal(traits)
	if err != nil {
		return invalid("traits", "cannot be encoded as JSON: %v", err)
	}
	if len(b) > MaxTraitsBytes {
		return invalid("traits", "the profile's traits would be %d bytes as JSON, at most %d allowed", len(b), MaxTraitsBytes)
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
