package workload

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/tailorhq/tailor/engine"
	"github.com/tailorhq/tailor/rules"
)

// Stamp is one past occurrence of a named thing (a track event name or a
// viewed page path) at a Unix millisecond time.
type Stamp struct {
	Name string `json:"name"`
	Time int64  `json:"time"`
}

// Profile is one visitor of a workload: what Identify would have built from
// the visitor's past events, in a form that can become both a rules.Env
// (for pure evaluation) and a batch of events (to populate a store).
// A Profile is a plain value; nothing in it is shared with the generator.
type Profile struct {
	ID        string         `json:"id"`
	UserID    string         `json:"userId,omitempty"`
	Traits    map[string]any `json:"traits,omitempty"`
	Location  rules.Location `json:"location"`
	Page      rules.Page     `json:"page"`
	Campaign  rules.Campaign `json:"campaign"`
	UserAgent string         `json:"userAgent,omitempty"`
	Device    rules.Device   `json:"device"`
	Locale    string         `json:"locale,omitempty"`
	Random    float64        `json:"random"`
	// Sessions is the number of sessions the visitor had.
	Sessions int64 `json:"sessions"`
	// Events are past track events and Views past page views, oldest first.
	Events []Stamp `json:"trackEvents,omitempty"`
	Views  []Stamp `json:"pageViews,omitempty"`
}

// Env returns the rule environment of p at time now: traits, location,
// page, campaign, device, session and the bounded histories, as the engine
// builds them for a stored profile. The Env shares p's Traits map.
func (p *Profile) Env(now time.Time) rules.Env {
	env := rules.Env{
		Traits:   p.Traits,
		Location: p.Location,
		Session: rules.Session{
			ID:                 p.ID + "-s",
			IsReturningVisitor: p.Sessions > 1,
			LandingPage:        p.Page,
			Count:              p.Sessions,
		},
		Page:         p.Page,
		Campaign:     p.Campaign,
		Device:       p.Device,
		UserID:       p.UserID,
		Locale:       p.Locale,
		Jurisdiction: engine.Jurisdiction(p.Location.CountryCode, p.Location.RegionCode),
		Random:       p.Random,
		Now:          now,
		Events:       histories(p.Events),
		Views:        histories(p.Views),
	}
	if env.Page.Query == nil {
		env.Page.Query = map[string]string{}
	}
	return env
}

func histories(st []Stamp) map[string]*rules.History {
	m := make(map[string]*rules.History, len(st))
	for _, s := range st {
		h := m[s.Name]
		if h == nil {
			h = &rules.History{}
			m[s.Name] = h
		}
		h.Add(s.Time)
	}
	return m
}

// PopulateRequest returns the events that build p in a store: its page
// views and track events at their times, then one identify event carrying
// its user id, traits, location, locale and user agent. At most
// MaxHistory+1 events: the engine accepts 200 per request.
func (p *Profile) PopulateRequest(now time.Time) engine.Request {
	evs := make([]engine.Event, 0, len(p.Views)+len(p.Events)+1)
	ctx := engine.EventContext{Locale: p.Locale, UserAgent: p.UserAgent}
	for _, v := range p.Views {
		pg := rules.Page{URL: "https://shop.example.com" + v.Name, Path: v.Name, Query: map[string]string{}}
		c := ctx
		c.Page = &pg
		evs = append(evs, engine.Event{Type: engine.EventPage, Timestamp: stamp(v.Time), Context: c})
	}
	for _, e := range p.Events {
		evs = append(evs, engine.Event{Type: engine.EventTrack, Event: e.Name, Timestamp: stamp(e.Time), Context: ctx})
	}
	last := now.UnixMilli() - 60_000
	c := ctx
	loc := p.Location
	c.Location = &loc
	page := p.Page
	c.Page = &page
	if p.Campaign != (rules.Campaign{}) {
		cp := p.Campaign
		c.Campaign = &cp
	}
	evs = append(evs, engine.Event{
		Type:      engine.EventPage,
		Timestamp: stamp(last),
		Context:   c,
	}, engine.Event{
		Type:      engine.EventIdentify,
		UserID:    p.UserID,
		Traits:    maps.Clone(p.Traits),
		Timestamp: stamp(last),
		Context:   c,
	})
	return engine.Request{Events: evs}
}

func stamp(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano) }

// MaxHistory bounds the past events and views of a generated profile.
const MaxHistory = 60

type weighted[T any] struct {
	v T
	w float64
}

func pick[T any](r *rand.Rand, xs []weighted[T]) T { return xs[pickIndex(r, xs)].v }

// pickIndex draws an index of xs with probability proportional to weight.
func pickIndex[T any](r *rand.Rand, xs []weighted[T]) int {
	var total float64
	for _, x := range xs {
		total += x.w
	}
	f := r.Float64() * total
	for i, x := range xs {
		if f < x.w {
			return i
		}
		f -= x.w
	}
	return len(xs) - 1
}

type country struct {
	code, name, continent, tz, locale string
	regions                           []weighted[[2]string] // code, name
	cities                            []string              // the city of each region
}

var countries = []weighted[country]{
	{country{"US", "United States", "NA", "America/New_York", "en-US",
		[]weighted[[2]string]{{[2]string{"CA", "California"}, 12}, {[2]string{"NY", "New York"}, 7}, {[2]string{"TX", "Texas"}, 8}, {[2]string{"WA", "Washington"}, 3}, {[2]string{"FL", "Florida"}, 6}, {[2]string{"IL", "Illinois"}, 4}},
		[]string{"San Francisco", "New York", "Austin", "Seattle", "Miami", "Chicago"}}, 30},
	{country{"GB", "United Kingdom", "EU", "Europe/London", "en-GB", []weighted[[2]string]{{[2]string{"ENG", "England"}, 8}, {[2]string{"SCT", "Scotland"}, 1}}, []string{"London", "Edinburgh"}}, 8},
	{country{"DE", "Germany", "EU", "Europe/Berlin", "de-DE", []weighted[[2]string]{{[2]string{"BE", "Berlin"}, 3}, {[2]string{"BY", "Bavaria"}, 4}, {[2]string{"HH", "Hamburg"}, 2}}, []string{"Berlin", "Munich", "Hamburg"}}, 8},
	{country{"FR", "France", "EU", "Europe/Paris", "fr-FR", []weighted[[2]string]{{[2]string{"IDF", "Île-de-France"}, 5}, {[2]string{"ARA", "Auvergne-Rhône-Alpes"}, 2}}, []string{"Paris", "Lyon"}}, 6},
	{country{"CA", "Canada", "NA", "America/Toronto", "en-CA", []weighted[[2]string]{{[2]string{"ON", "Ontario"}, 5}, {[2]string{"QC", "Quebec"}, 3}, {[2]string{"BC", "British Columbia"}, 2}}, []string{"Toronto", "Montreal", "Vancouver"}}, 6},
	{country{"BR", "Brazil", "SA", "America/Sao_Paulo", "pt-BR", []weighted[[2]string]{{[2]string{"SP", "São Paulo"}, 5}, {[2]string{"RJ", "Rio de Janeiro"}, 3}}, []string{"São Paulo", "Rio de Janeiro"}}, 5},
	{country{"IN", "India", "AS", "Asia/Kolkata", "en-IN", []weighted[[2]string]{{[2]string{"KA", "Karnataka"}, 3}, {[2]string{"MH", "Maharashtra"}, 3}}, []string{"Bengaluru", "Mumbai"}}, 6},
	{country{"JP", "Japan", "AS", "Asia/Tokyo", "ja-JP", []weighted[[2]string]{{[2]string{"13", "Tokyo"}, 5}, {[2]string{"27", "Osaka"}, 2}}, []string{"Tokyo", "Osaka"}}, 4},
	{country{"AU", "Australia", "OC", "Australia/Sydney", "en-AU", []weighted[[2]string]{{[2]string{"NSW", "New South Wales"}, 3}, {[2]string{"VIC", "Victoria"}, 2}}, []string{"Sydney", "Melbourne"}}, 3},
	{country{"NL", "Netherlands", "EU", "Europe/Amsterdam", "nl-NL", []weighted[[2]string]{{[2]string{"NH", "North Holland"}, 1}}, []string{"Amsterdam"}}, 3},
	{country{"ES", "Spain", "EU", "Europe/Madrid", "es-ES", []weighted[[2]string]{{[2]string{"MD", "Madrid"}, 1}, {[2]string{"CT", "Catalonia"}, 1}}, []string{"Madrid", "Barcelona"}}, 3},
	{country{"IT", "Italy", "EU", "Europe/Rome", "it-IT", []weighted[[2]string]{{[2]string{"LOM", "Lombardy"}, 1}, {[2]string{"LAZ", "Lazio"}, 1}}, []string{"Milan", "Rome"}}, 3},
	{country{"SE", "Sweden", "EU", "Europe/Stockholm", "sv-SE", []weighted[[2]string]{{[2]string{"AB", "Stockholm"}, 1}}, []string{"Stockholm"}}, 2},
	{country{"MX", "Mexico", "NA", "America/Mexico_City", "es-MX", []weighted[[2]string]{{[2]string{"CMX", "Mexico City"}, 1}}, []string{"Mexico City"}}, 2},
	{country{"PL", "Poland", "EU", "Europe/Warsaw", "pl-PL", []weighted[[2]string]{{[2]string{"MZ", "Masovia"}, 1}}, []string{"Warsaw"}}, 2},
	{country{"SG", "Singapore", "AS", "Asia/Singapore", "en-SG", []weighted[[2]string]{{[2]string{"01", "Central Singapore"}, 1}}, []string{"Singapore"}}, 1},
	{country{"ZA", "South Africa", "AF", "Africa/Johannesburg", "en-ZA", []weighted[[2]string]{{[2]string{"GP", "Gauteng"}, 1}}, []string{"Johannesburg"}}, 1},
}

var plans = []weighted[string]{{"free", 55}, {"starter", 20}, {"pro", 18}, {"enterprise", 7}}

var domains = []weighted[string]{
	{"gmail.com", 30}, {"yahoo.com", 6}, {"outlook.com", 8}, {"icloud.com", 4},
	{"acme.io", 3}, {"globex.com", 3}, {"initech.com", 2}, {"example.org", 2}, {"umbrella.co", 2}, {"hooli.com", 2},
}

var industries = []weighted[string]{{"saas", 4}, {"retail", 3}, {"finance", 2}, {"media", 2}, {"health", 1}, {"education", 1}, {"", 4}}

var pages = []weighted[string]{
	{"/", 20}, {"/pricing", 8}, {"/docs/getting-started", 5}, {"/docs/api", 4}, {"/blog/launch", 3},
	{"/blog/tips", 3}, {"/product/shoes", 6}, {"/product/hats", 4}, {"/sale", 3}, {"/checkout", 2},
	{"/account", 3}, {"/signup", 2},
}

var trackEvents = []weighted[string]{
	{"login", 20}, {"search", 15}, {"add_to_cart", 10}, {"purchase", 4}, {"signup", 2},
	{"download", 4}, {"invite_sent", 2}, {"feature_used", 12},
}

var campaigns = []weighted[rules.Campaign]{
	{rules.Campaign{}, 60},
	{rules.Campaign{Name: "spring-sale", Source: "newsletter", Medium: "email"}, 10},
	{rules.Campaign{Name: "brand", Source: "google", Medium: "cpc", Term: "tailor"}, 12},
	{rules.Campaign{Name: "retargeting", Source: "facebook", Medium: "social"}, 8},
	{rules.Campaign{Name: "launch", Source: "newsroom", Medium: "referral"}, 4},
	{rules.Campaign{Name: "partners", Source: "partner-blog", Medium: "referral", Content: "banner"}, 6},
}

type agent struct {
	ua  string
	dev rules.Device
}

var agents = []weighted[agent]{
	{agent{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", rules.Device{Type: "desktop", OS: "Windows", Browser: "Chrome"}}, 30},
	{agent{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15", rules.Device{Type: "desktop", OS: "macOS", Browser: "Safari"}}, 12},
	{agent{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1", rules.Device{Type: "mobile", OS: "iOS", Browser: "Safari"}}, 25},
	{agent{"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36", rules.Device{Type: "mobile", OS: "Android", Browser: "Chrome"}}, 22},
	{agent{"Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1", rules.Device{Type: "tablet", OS: "iOS", Browser: "Safari"}}, 6},
	{agent{"Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", rules.Device{Type: "desktop", OS: "Linux", Browser: "Firefox"}}, 4},
	{agent{"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", rules.Device{Type: "bot"}}, 1},
}

// Visitor is what a request of one visitor carries besides the profile
// id: its user id (known visitors), locale and user agent. It is cheap to
// compute (Generator.Visitor) so a benchmark driver need not hold a
// million profiles in memory.
type Visitor struct {
	ID        string
	UserID    string
	Locale    string
	UserAgent string
}

// VisitRequest returns the request of one visit: one page view and one
// identify event updating a trait (the request of issue 6, target 4).
// seq varies the page and the trait value between visits.
func (v Visitor) VisitRequest(seq uint64) engine.Request {
	path := pages[seq%uint64(len(pages))].v
	pg := rules.Page{URL: "https://shop.example.com" + path, Path: path, Query: map[string]string{}}
	ctx := engine.EventContext{Locale: v.Locale, UserAgent: v.UserAgent, Page: &pg}
	return engine.Request{Events: []engine.Event{
		{Type: engine.EventPage, Context: ctx},
		{Type: engine.EventIdentify, UserID: v.UserID, Traits: map[string]any{"lastPath": path, "visits": float64(seq % 1000)}, Context: ctx},
	}}
}

// Visitor returns the profile p as a Visitor.
func (p *Profile) Visitor() Visitor {
	return Visitor{ID: p.ID, UserID: p.UserID, Locale: p.Locale, UserAgent: p.UserAgent}
}

// Visitor returns visitor i's request identity; it agrees with Profile(i)
// at a fraction of the cost.
func (g *Generator) Visitor(i int) Visitor {
	r := g.rng(i)
	c, _, ag, uid := g.visitor(r, i)
	return Visitor{ID: g.ID(i), UserID: uid, Locale: c.locale, UserAgent: ag.ua}
}

func (g *Generator) rng(i int) *rand.Rand {
	return rand.New(rand.NewPCG(g.cfg.Seed, uint64(i)^0x9e3779b97f4a7c15))
}

// visitor makes the first draws of visitor i: country, region, user agent
// and user id (40% of visitors are known users).
func (g *Generator) visitor(r *rand.Rand, i int) (c country, reg [3]string, ag agent, userID string) {
	c = pick(r, countries)
	if g.cfg.Kind == KindPeer {
		// The peer scenario: every visitor matches its one audience.
		c = countries[0].v
		if r.IntN(2) == 0 {
			c = countries[4].v
		}
	}
	k := pickIndex(r, c.regions)
	reg = [3]string{c.regions[k].v[0], c.regions[k].v[1], c.cities[k]}
	ag = pick(r, agents)
	if r.Float64() < 0.4 {
		userID = fmt.Sprintf("user-%d-%d", g.cfg.Seed, i)
	}
	return c, reg, ag, userID
}

// profile generates visitor i. It depends only on the seed and i.
func (g *Generator) profile(i int) Profile {
	r := g.rng(i)
	now := g.cfg.Now.UnixMilli()
	c, reg, ag, uid := g.visitor(r, i)
	known := uid != ""
	plan := pick(r, plans)
	if g.cfg.Kind == KindPeer {
		plan = "pro"
	}
	p := Profile{
		ID:        g.ID(i),
		UserAgent: ag.ua,
		Device:    ag.dev,
		Locale:    c.locale,
		Random:    r.Float64(),
		Campaign:  pick(r, campaigns),
		Location: rules.Location{
			Coordinates: &rules.Coordinates{Latitude: math.Round((r.Float64()*140-70)*1e4) / 1e4, Longitude: math.Round((r.Float64()*360-180)*1e4) / 1e4},
			City:        reg[2],
			Region:      reg[1],
			RegionCode:  reg[0],
			Country:     c.name,
			CountryCode: c.code,
			Continent:   c.continent,
			Timezone:    c.tz,
		},
	}
	p.UserID = uid
	size := math.Round(math.Exp(r.NormFloat64()*1.6 + 3.5))
	p.Traits = map[string]any{
		"plan":        plan,
		"companySize": max(1, min(size, 100000)),
		"age":         float64(18 + r.IntN(58)),
		"email":       fmt.Sprintf("visitor%d@%s", i, pick(r, domains)),
		"newsletter":  r.Float64() < 0.35,
		"beta":        r.Float64() < 0.1,
		"trial":       plan == "free" && r.Float64() < 0.3,
		"seats":       float64(1 + r.IntN(50)),
		"ltv":         math.Round(r.ExpFloat64()*250*100) / 100,
		"signupDays":  float64(r.IntN(900)),
		"known":       known,
	}
	if ind := pick(r, industries); ind != "" {
		p.Traits["industry"] = ind
	}
	// Histories within the last 90 days, a few sessions' worth.
	nv := 1 + r.IntN(15)
	ne := r.IntN(26)
	if ne+nv > MaxHistory {
		ne = MaxHistory - nv
	}
	sessions := map[int64]bool{}
	for k := 0; k < nv; k++ {
		t := now - 3_600_000 - r.Int64N(89*86_400_000)
		p.Views = append(p.Views, Stamp{Name: pick(r, pages), Time: t})
		sessions[t/1_800_000] = true
	}
	for k := 0; k < ne; k++ {
		t := now - 3_600_000 - r.Int64N(89*86_400_000)
		p.Events = append(p.Events, Stamp{Name: pick(r, trackEvents), Time: t})
		sessions[t/1_800_000] = true
	}
	slices.SortFunc(p.Views, func(a, b Stamp) int { return int(a.Time - b.Time) })
	slices.SortFunc(p.Events, func(a, b Stamp) int { return int(a.Time - b.Time) })
	p.Sessions = int64(len(sessions)) + 1
	path := pick(r, pages)
	p.Page = rules.Page{URL: "https://shop.example.com" + path, Path: path, Query: map[string]string{}}
	return p
}
