package main

import (
	"html/template"
	"net/http"

	"github.com/tailorhq/tailor/engine"
)

// The entries the hero experiment switches between (EntryReplacement
// components name entries by id; a CMS would hold them).
var heroEntries = map[string]struct{ Headline, Body string }{
	"hero-classic": {
		"Personalization for Go web apps",
		"Audiences, experiments and sticky variants, decided before your page is written.",
	},
	"hero-inprocess": {
		"Your pages, personalized in-process",
		"No extra service and no flicker: the engine runs inside your Go server, and the browser SDK sees the same profile.",
	},
}

// Defaults of the variables, for a page rendered without the engine's
// answer (the baselines of rules.yaml).
const (
	heroBaseline = "hero-classic"
	ctaBaseline  = "Start your free trial"
)

// hero is the hero entry a page shows, with the experience that chose it
// (empty when the page fell back to the baseline).
type hero struct {
	ExperienceID string
	VariantIndex int
	Sticky       bool
	EntryID      string
	Headline     string
	Body         string
}

// sdkState is what the page hands the browser SDK (web/src/main.js) in
// <script id="tailor-state">.
type sdkState struct {
	ClientID    string                      `json:"clientId"`
	Environment string                      `json:"environment"`
	APIPath     string                      `json:"apiPath"`
	ProfileID   string                      `json:"profileId"`
	Consent     bool                        `json:"consent"`
	Experiences []engine.SelectedExperience `json:"experiences"`
}

// view is the data of every template.
type view struct {
	Title    string
	Path     string
	User     *user
	Consent  string // "", consentGranted or consentDenied
	Cart     []product
	Total    string
	Products []product
	Users    []user

	LoginError bool

	// What the engine decided (zero values when it did not answer).
	Profile     *engine.Profile
	Experiences []engine.SelectedExperience
	Hero        hero
	CTA         string
	Promo       string
	Welcome     string

	State sdkState
}

func newView(r *http.Request, title, consent string, u *user, resp *engine.Response) *view {
	v := &view{
		Title:   title,
		Path:    r.URL.Path,
		User:    u,
		Consent: consent,
		Cart:    cartOf(r),
		Hero:    hero{EntryID: heroBaseline},
		CTA:     ctaBaseline,
		State: sdkState{
			ClientID: clientID, Environment: environment, APIPath: apiPath,
			Consent:     consent == consentGranted,
			Experiences: []engine.SelectedExperience{},
		},
	}
	cents := 0
	for _, p := range v.Cart {
		cents += p.Cents
	}
	v.Total = product{Cents: cents}.Price()
	if resp != nil {
		v.Profile = resp.Profile
		v.Experiences = resp.Experiences
		v.State.ProfileID = resp.Profile.ID
		v.State.Experiences = resp.Experiences
		for _, x := range resp.Experiences {
			if id, ok := x.Variants.Get("hero"); ok {
				v.Hero = hero{ExperienceID: x.ExperienceID, VariantIndex: x.VariantIndex, Sticky: x.Sticky, EntryID: id}
			}
		}
		for _, c := range resp.Changes {
			s, _ := c.Value.(string)
			switch c.Key {
			case "cta":
				if s != "" {
					v.CTA = s
				}
			case "promo":
				v.Promo = s
			case "welcome":
				v.Welcome = s
			}
		}
	}
	if e, ok := heroEntries[v.Hero.EntryID]; ok {
		v.Hero.Headline, v.Hero.Body = e.Headline, e.Body
	} else {
		v.Hero = hero{EntryID: heroBaseline, Headline: heroEntries[heroBaseline].Headline, Body: heroEntries[heroBaseline].Body}
	}
	return v
}

// parsePages parses each page template with the shared layout.
func parsePages() (map[string]*template.Template, error) {
	pages := map[string]*template.Template{}
	for _, name := range []string{"home", "pricing", "cart", "login"} {
		t, err := template.ParseFS(assets, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, err
		}
		pages[name] = t
	}
	return pages, nil
}
