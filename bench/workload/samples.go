package workload

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"time"

	"github.com/tailorhq/tailor/engine"
	"github.com/tailorhq/tailor/engine/device"
	"github.com/tailorhq/tailor/rules"
)

// Sample is one line of a user's profile sample: a Profile, and, when the
// line was an event batch, the events themselves (then Profile is what
// FoldEvents made of them).
type Sample struct {
	Profile Profile
	// Events is the batch of an event-batch line, nil for a profile line.
	Events []engine.Event
}

// PopulateRequest returns the request that builds the sample in a store:
// the batch itself, or the generated events of a profile line.
func (s *Sample) PopulateRequest(now time.Time) engine.Request {
	if s.Events != nil {
		return engine.Request{Events: s.Events}
	}
	return s.Profile.PopulateRequest(now)
}

// batchLine is an event-batch line: the body of an Identify request plus
// the profile id it applies to.
type batchLine struct {
	ProfileID string         `json:"profileId"`
	Events    []engine.Event `json:"events"`
}

// ReadSamples reads an NDJSON profile sample: one JSON object per line
// (blank lines and lines starting with # are skipped). A line is either
//
//   - an event batch, {"profileId": "…", "events": [Event, …]}: the events
//     are what Identify receives (profileId optional), or
//   - a profile, shaped like engine.Profile ({"id", "userId", "traits",
//     "location", …}) plus optional "page", "campaign", "userAgent",
//     "device", "locale", "sessions", and the histories "trackEvents" and
//     "pageViews" ([{"name": "purchase", "time": unixMillis}, …]).
//
// A line without an id gets one from idFor(line index). Errors name the
// line. now is the time for events without a timestamp.
func ReadSamples(r io.Reader, now time.Time, idFor func(i int) string) ([]Sample, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	det := device.New()
	var out []Sample
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 || b[0] == '#' {
			continue
		}
		var probe map[string]json.RawMessage
		if err := json.Unmarshal(b, &probe); err != nil {
			return nil, fmt.Errorf("workload: samples line %d: %w", line, err)
		}
		i := len(out)
		if _, ok := probe["events"]; ok {
			var bl batchLine
			if err := json.Unmarshal(b, &bl); err != nil {
				return nil, fmt.Errorf("workload: samples line %d: events: %w", line, err)
			}
			if len(bl.Events) == 0 {
				return nil, fmt.Errorf("workload: samples line %d: events: empty batch", line)
			}
			id := bl.ProfileID
			if id == "" {
				id = idFor(i)
			}
			p, err := FoldEvents(id, bl.Events, now, det)
			if err != nil {
				return nil, fmt.Errorf("workload: samples line %d: %w", line, err)
			}
			out = append(out, Sample{Profile: p, Events: bl.Events})
			continue
		}
		var p Profile
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&profileLine{&p}); err != nil {
			return nil, fmt.Errorf("workload: samples line %d: profile: %w", line, err)
		}
		if p.ID == "" {
			p.ID = idFor(i)
		}
		if p.Device == (rules.Device{}) && p.UserAgent != "" {
			p.Device = det.Detect(p.UserAgent)
		}
		if p.Sessions == 0 {
			p.Sessions = 1
		}
		out = append(out, Sample{Profile: p})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("workload: samples line %d: %w", line+1, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("workload: samples: no profiles")
	}
	return out, nil
}

// profileLine decodes a profile line, accepting engine.Profile's wire
// fields that a bench Profile does not use (stableId, audiences,
// jurisdiction, stickyVariants, and session as an object).
type profileLine struct{ p *Profile }

func (l *profileLine) UnmarshalJSON(b []byte) error {
	type plain Profile
	var aux struct {
		*plain
		StableID       string         `json:"stableId"`
		Audiences      []string       `json:"audiences"`
		Jurisdiction   string         `json:"jurisdiction"`
		StickyVariants map[string]int `json:"stickyVariants"`
		Session        *rules.Session `json:"session"`
	}
	aux.plain = (*plain)(l.p)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&aux); err != nil {
		return err
	}
	if aux.Session != nil && l.p.Sessions == 0 {
		l.p.Sessions = aux.Session.Count
	}
	return nil
}

// FoldEvents builds the Profile that a batch of events describes: traits
// merged from identify events (null deletes), the last location, page,
// campaign, locale and user agent seen, track events and page views as
// histories, and sessions counted by 30-minute inactivity. It approximates
// what Identify stores (for pure evaluation of a user's sample); the
// identify modes send the events themselves.
func FoldEvents(id string, evs []engine.Event, now time.Time, det engine.DeviceDetector) (Profile, error) {
	p := Profile{ID: id, Traits: map[string]any{}, Page: rules.Page{Query: map[string]string{}}}
	var last int64 = -1
	for k, ev := range evs {
		t := now.UnixMilli()
		for _, s := range []string{ev.Timestamp, ev.OriginalTimestamp, ev.SentAt} {
			if s == "" {
				continue
			}
			ts, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return Profile{}, fmt.Errorf("events[%d].timestamp: %w", k, err)
			}
			t = ts.UnixMilli()
			break
		}
		if last < 0 || t-last > 30*60_000 {
			p.Sessions++
		}
		last = max(last, t)
		c := ev.Context
		if c.Location != nil && !c.Location.IsZero() {
			p.Location = *c.Location
		}
		if c.Campaign != nil {
			p.Campaign = *c.Campaign
		}
		if c.Locale != "" {
			p.Locale = c.Locale
		}
		if c.UserAgent != "" {
			p.UserAgent = c.UserAgent
		}
		switch ev.Type {
		case engine.EventIdentify:
			if ev.UserID != "" {
				p.UserID = ev.UserID
			}
			for key, v := range ev.Traits {
				if v == nil {
					delete(p.Traits, key)
				} else {
					p.Traits[key] = v
				}
			}
		case engine.EventPage, engine.EventScreen:
			name := ev.Name
			if c.Page != nil {
				p.Page = *c.Page
				if p.Page.Query == nil {
					p.Page.Query = map[string]string{}
				}
				if ev.Type == engine.EventPage {
					name = c.Page.Path
				}
			}
			if name != "" {
				p.Views = append(p.Views, Stamp{Name: name, Time: t})
			}
		case engine.EventTrack:
			if ev.Event == "" {
				return Profile{}, fmt.Errorf("events[%d].event: missing", k)
			}
			p.Events = append(p.Events, Stamp{Name: ev.Event, Time: t})
		}
	}
	if p.UserAgent != "" && det != nil {
		p.Device = det.Detect(p.UserAgent)
	}
	p.Traits = maps.Clone(p.Traits)
	return p, nil
}

// WriteNDJSON writes every generated profile as one line of the profile
// format ReadSamples reads, so users see the format and can edit a sample.
func (g *Generator) WriteNDJSON(w io.Writer) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for i := 0; i < g.Len(); i++ {
		p := g.Profile(i)
		if err := enc.Encode(&p); err != nil {
			return fmt.Errorf("workload: profile %d: %w", i, err)
		}
	}
	return bw.Flush()
}
