package rules

import "time"

// Env is the per-request view of a profile that audience rules read. The
// engine fills one Env per request from the stored profile; rules never see
// the profile itself. Field tags give the names used in expressions
// (traits.plan, location.countryCode, session.count, ...).
//
// An Env is not safe for concurrent use: each request fills its own.
type Env struct {
	Traits       map[string]any `expr:"traits"`
	Location     Location       `expr:"location"`
	Session      Session        `expr:"session"`
	Page         Page           `expr:"page"`
	Campaign     Campaign       `expr:"campaign"`
	Device       Device         `expr:"device"`
	UserID       string         `expr:"userId"`
	Locale       string         `expr:"locale"`
	Jurisdiction string         `expr:"jurisdiction"`
	Random       float64        `expr:"random"`
	// Now is the evaluation time helper windows count back from; the zero
	// time means the clock.
	Now time.Time `expr:"now"`

	// Events holds the bounded history of track events by event name;
	// eventCount and hasEvent read it.
	Events map[string]*History `expr:"-"`
	// Views holds the bounded history of page views by path and screen
	// views by screen name; viewedPage reads it.
	Views map[string]*History `expr:"-"`
}

// Location is where a visitor is. Every field is optional; CountryCode is an
// ISO 3166-1 alpha-2 code or empty.
type Location struct {
	Coordinates *Coordinates `json:"coordinates,omitempty" expr:"coordinates"`
	City        string       `json:"city,omitempty" expr:"city"`
	PostalCode  string       `json:"postalCode,omitempty" expr:"postalCode"`
	Region      string       `json:"region,omitempty" expr:"region"`
	RegionCode  string       `json:"regionCode,omitempty" expr:"regionCode"`
	Country     string       `json:"country,omitempty" expr:"country"`
	CountryCode string       `json:"countryCode,omitempty" expr:"countryCode"`
	Continent   string       `json:"continent,omitempty" expr:"continent"`
	Timezone    string       `json:"timezone,omitempty" expr:"timezone"`
}

// IsZero reports whether no field of l is set.
func (l Location) IsZero() bool {
	return l.Coordinates == nil && l == Location{}
}

// Coordinates is a point on Earth in decimal degrees.
type Coordinates struct {
	Latitude  float64 `json:"latitude" expr:"latitude"`
	Longitude float64 `json:"longitude" expr:"longitude"`
}

// Page is a web page as the Ninetailed wire format describes it. Query is
// never nil in a response: the published client requires an object.
type Page struct {
	URL      string            `json:"url" expr:"url"`
	Path     string            `json:"path" expr:"path"`
	Query    map[string]string `json:"query" expr:"query"`
	Referrer string            `json:"referrer" expr:"referrer"`
	Search   string            `json:"search" expr:"search"`
	Title    string            `json:"title,omitempty" expr:"title"`
}

// Campaign holds the UTM parameters of the visit.
type Campaign struct {
	Name    string `json:"name,omitempty" expr:"name"`
	Source  string `json:"source,omitempty" expr:"source"`
	Medium  string `json:"medium,omitempty" expr:"medium"`
	Term    string `json:"term,omitempty" expr:"term"`
	Content string `json:"content,omitempty" expr:"content"`
}

// Session describes the visitor's current session. Lengths are in seconds;
// SessionLength equals ActiveSessionLength.
type Session struct {
	ID                   string `json:"id" expr:"id"`
	IsReturningVisitor   bool   `json:"isReturningVisitor" expr:"isReturningVisitor"`
	LandingPage          Page   `json:"landingPage" expr:"landingPage"`
	Count                int64  `json:"count" expr:"count"`
	SessionLength        int64  `json:"sessionLength" expr:"sessionLength"`
	ActiveSessionLength  int64  `json:"activeSessionLength" expr:"activeSessionLength"`
	AverageSessionLength int64  `json:"averageSessionLength" expr:"averageSessionLength"`
}

// Device is what the visitor's user agent says about the device.
// Type is one of "mobile", "tablet", "desktop", "bot" or empty (unknown).
type Device struct {
	Type    string `json:"type,omitempty" expr:"type"`
	OS      string `json:"os,omitempty" expr:"os"`
	Browser string `json:"browser,omitempty" expr:"browser"`
}

// HistoryDays is how many days of daily counts a History keeps.
const HistoryDays = 90

// History is the bounded record of one named event (or viewed page): the
// total count, first and last time seen (Unix milliseconds) and the counts
// of the last HistoryDays days. Days is sorted by Day ascending.
type History struct {
	Count int64      `json:"n"`
	First int64      `json:"f"`
	Last  int64      `json:"l"`
	Days  []DayCount `json:"d,omitempty"`
}

// DayCount is the number of events seen on one UTC day, numbered as days
// since the Unix epoch.
type DayCount struct {
	Day int32 `json:"d"`
	N   int32 `json:"n"`
}

// Day returns the day number (days since the Unix epoch, UTC) of a Unix
// millisecond time.
func Day(unixMilli int64) int32 {
	if unixMilli < 0 {
		return int32((unixMilli+1)/86_400_000) - 1
	}
	return int32(unixMilli / 86_400_000)
}

// Add records one occurrence at unixMilli and drops daily counts older than
// HistoryDays before the newest day recorded.
func (h *History) Add(unixMilli int64) {
	h.AddN(unixMilli, 1)
}

// AddN records n occurrences on the day of unixMilli (n > 0).
func (h *History) AddN(unixMilli int64, n int64) {
	if h.Count == 0 || unixMilli < h.First {
		h.First = unixMilli
	}
	if h.Count == 0 || unixMilli > h.Last {
		h.Last = unixMilli
	}
	h.Count += n
	d := Day(unixMilli)
	i := len(h.Days)
	for i > 0 && h.Days[i-1].Day > d {
		i--
	}
	if i > 0 && h.Days[i-1].Day == d {
		h.Days[i-1].N += int32(n)
	} else {
		h.Days = append(h.Days, DayCount{})
		copy(h.Days[i+1:], h.Days[i:])
		h.Days[i] = DayCount{Day: d, N: int32(n)}
	}
	h.trim()
}

func (h *History) trim() {
	if len(h.Days) == 0 {
		return
	}
	oldest := h.Days[len(h.Days)-1].Day - HistoryDays + 1
	k := 0
	for k < len(h.Days) && h.Days[k].Day < oldest {
		k++
	}
	if k > 0 {
		h.Days = append(h.Days[:0], h.Days[k:]...)
	}
}

// Merge adds o into h: counts add up, first/last widen, daily counts add.
func (h *History) Merge(o *History) {
	if o == nil || o.Count == 0 {
		return
	}
	if h.Count == 0 || o.First < h.First {
		h.First = o.First
	}
	if h.Count == 0 || o.Last > h.Last {
		h.Last = o.Last
	}
	h.Count += o.Count
	merged := make([]DayCount, 0, len(h.Days)+len(o.Days))
	i, j := 0, 0
	for i < len(h.Days) || j < len(o.Days) {
		switch {
		case j == len(o.Days) || (i < len(h.Days) && h.Days[i].Day < o.Days[j].Day):
			merged = append(merged, h.Days[i])
			i++
		case i == len(h.Days) || o.Days[j].Day < h.Days[i].Day:
			merged = append(merged, o.Days[j])
			j++
		default:
			merged = append(merged, DayCount{Day: h.Days[i].Day, N: h.Days[i].N + o.Days[j].N})
			i++
			j++
		}
	}
	h.Days = merged
	h.trim()
}

// CountSince returns how many occurrences fall on or after the UTC day of
// sinceMilli. Daily granularity: a window is rounded out to whole days,
// except where First and Last give exact bounds: a sinceMilli after Last
// counts nothing, one on or before First counts everything (also what fell
// off Days).
func (h *History) CountSince(sinceMilli int64) int64 {
	if h == nil || h.Count == 0 || h.Last < sinceMilli {
		return 0
	}
	if sinceMilli <= h.First {
		return h.Count
	}
	d := Day(sinceMilli)
	var n int64
	for k := len(h.Days) - 1; k >= 0 && h.Days[k].Day >= d; k-- {
		n += int64(h.Days[k].N)
	}
	return n
}

// nowMilli is Now in Unix milliseconds; a zero Now means the current time.
func (e *Env) nowMilli() int64 {
	if e.Now.IsZero() {
		return time.Now().UnixMilli()
	}
	return e.Now.UnixMilli()
}
