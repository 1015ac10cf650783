package engine

import (
	"net/url"
	"strings"

	"github.com/tailorhq/tailor/rules"
)

// MaxHistories bounds how many distinct event names (and, separately, page
// paths and screen names) a profile remembers. When a new name arrives at
// the bound, the name seen least recently is forgotten.
const MaxHistories = 256

// MaxHistoryBytes bounds the bytes of all names an event history (and,
// separately, the page and screen view history) remembers: when a new name
// would take it over, the names seen least recently are forgotten.
const MaxHistoryBytes = 64 << 10

// applyEvents updates rec from events sorted by time (step 4 of "What
// Identify does" in the package documentation) and reports whether any
// event carried a location. Component events do not lock what ov forces.
func (e *Engine) applyEvents(rec *record, evs []event, rs *rules.Set, ov *Overrides) (located bool) {
	for _, ev := range evs {
		t := ev.at
		e.touchSession(rec, t)
		c := &ev.Context
		switch ev.Type {
		case EventPage:
			p := pageOf(ev.Event)
			if p.Path != "" {
				rec.Views = addHistory(rec.Views, p.Path, t)
			}
			rec.Page = p
			if !rec.Session.Landed {
				rec.Session.LandingPage = p
				rec.Session.Landed = true
			}
			if cp := campaignOf(ev.Event, &p); cp != (Campaign{}) {
				rec.Campaign = cp
			}
		case EventScreen:
			rec.Views = addHistory(rec.Views, ev.Name, t)
		case EventTrack:
			rec.Events = addHistory(rec.Events, ev.Event.Event, t)
		case EventIdentify:
			for k, v := range ev.Traits {
				if v == nil {
					delete(rec.Traits, k)
					continue
				}
				if rec.Traits == nil {
					rec.Traits = make(map[string]any, len(ev.Traits))
				}
				rec.Traits[k] = v
			}
		case EventComponent:
			if ev.ExperienceID != "" && ev.VariantIndex != nil {
				lockAssignment(rec, rs, ev.ExperienceID, *ev.VariantIndex, t, ov)
			}
		}
		if c.Locale != "" {
			rec.Locale = c.Locale
		}
		if c.UserAgent != "" && c.UserAgent != rec.UserAgent {
			rec.UserAgent = c.UserAgent
			if e.devices != nil {
				rec.Device = e.devices.Detect(c.UserAgent)
			}
		}
		if c.Location != nil && !c.Location.IsZero() {
			rec.Location = normalizeLocation(*c.Location)
			located = true
		}
	}
	return located
}

// touchSession starts a new session when t comes more than the session
// timeout after the last event, and moves last-seen forward.
func (e *Engine) touchSession(rec *record, t int64) {
	s := &rec.Session
	if s.Count == 0 || t-s.LastSeen > e.sessionTimeout.Milliseconds() {
		if s.Count > 0 {
			s.PastLength += max(0, (s.LastSeen-s.Start)/1000)
		}
		s.Count++
		s.ID = newSessionID()
		s.Start = t
		s.LastSeen = t
		s.LandingPage = Page{}
		s.Landed = false
		return
	}
	if t > s.LastSeen {
		s.LastSeen = t
	}
}

// lockAssignment stores variant v of a sticky experience as the profile's
// assignment, made at t (a component event reporting what the visitor
// saw), unless the variant is forced (see lockable).
func lockAssignment(rec *record, rs *rules.Set, expID string, v int, t int64, ov *Overrides) {
	x := experience(rs, expID)
	if x == nil || !x.Sticky || v >= x.Variants() || !lockable(x, rec, ov) {
		return
	}
	if rec.Sticky == nil {
		rec.Sticky = make(map[string]Assignment)
	}
	rec.Sticky[expID] = Assignment{Variant: v, Bucket: x.BucketVersion, At: t}
}

// addHistory records one occurrence of name at t, forgetting the names seen
// least recently when the map is at MaxHistories names or the new name
// would take it over MaxHistoryBytes.
func addHistory(m map[string]*rules.History, name string, t int64) map[string]*rules.History {
	if m == nil {
		m = make(map[string]*rules.History)
	}
	h, ok := m[name]
	if !ok {
		if n := historyBytes(m) + len(name); len(m) >= MaxHistories || n > MaxHistoryBytes {
			for len(m) > 0 && (len(m) >= MaxHistories || n > MaxHistoryBytes) {
				n -= evictOldest(m)
			}
		}
		h = new(rules.History)
		m[name] = h
	}
	h.Add(t)
	return m
}

// boundHistories forgets the names of m seen least recently until it is
// within MaxHistories and MaxHistoryBytes (after a merge added up two).
func boundHistories(m map[string]*rules.History) {
	if len(m) == 0 {
		return
	}
	n := historyBytes(m)
	for len(m) > MaxHistories || n > MaxHistoryBytes {
		n -= evictOldest(m)
	}
}

// historyBytes returns the bytes of m's names.
func historyBytes(m map[string]*rules.History) int {
	n := 0
	for k := range m {
		n += len(k)
	}
	return n
}

// evictOldest forgets the name of m seen least recently and returns its
// length.
func evictOldest(m map[string]*rules.History) int {
	oldest, at := "", int64(0)
	first := true
	for k, h := range m {
		if first || h.Last < at || (h.Last == at && k < oldest) {
			oldest, at, first = k, h.Last, false
		}
	}
	delete(m, oldest)
	return len(oldest)
}

// pageOf returns the page an event describes: context.page, completed from
// the url when path or search are missing, and from properties as a last
// resort (the analytics.js convention).
func pageOf(ev *Event) Page {
	var p Page
	if ev.Context.Page != nil {
		p = *ev.Context.Page
	}
	if p.URL == "" {
		p.URL, _ = ev.Properties["url"].(string)
	}
	if p.Path == "" {
		p.Path, _ = ev.Properties["path"].(string)
	}
	if p.Referrer == "" {
		p.Referrer, _ = ev.Properties["referrer"].(string)
	}
	if p.Title == "" {
		p.Title, _ = ev.Properties["title"].(string)
	}
	if (p.Path == "" || p.Search == "" || p.Query == nil) && p.URL != "" {
		if u, err := url.Parse(p.URL); err == nil {
			if p.Path == "" {
				p.Path = u.Path
			}
			if p.Search == "" && u.RawQuery != "" {
				p.Search = "?" + u.RawQuery
			}
			if p.Query == nil && u.RawQuery != "" {
				p.Query = queryMap(u.Query())
			}
		}
	}
	if p.Query == nil && p.Search != "" {
		if q, err := url.ParseQuery(strings.TrimPrefix(p.Search, "?")); err == nil {
			p.Query = queryMap(q)
		}
	}
	// p.Query may be the caller's map: the record only reads it, and
	// lives no longer than the call (its encoding is what is kept).
	return p
}

func queryMap(q url.Values) map[string]string {
	if len(q) == 0 {
		return nil
	}
	m := make(map[string]string, len(q))
	for k, v := range q {
		if len(v) > 0 {
			m[k] = v[0]
		}
	}
	return m
}

// campaignOf returns the campaign of a page event: context.campaign, else
// the utm_* parameters of the page's query.
func campaignOf(ev *Event, p *Page) Campaign {
	if ev.Context.Campaign != nil {
		return *ev.Context.Campaign
	}
	return Campaign{
		Name:    p.Query["utm_campaign"],
		Source:  p.Query["utm_source"],
		Medium:  p.Query["utm_medium"],
		Term:    p.Query["utm_term"],
		Content: p.Query["utm_content"],
	}
}
