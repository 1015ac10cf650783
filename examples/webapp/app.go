package main

import (
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tailorhq/tailor/engine"
	"github.com/tailorhq/tailor/engine/httpapi"
	"github.com/tailorhq/tailor/rules"
)

// Where the Experience API is mounted, and the organization and environment
// it serves (the SDK's clientId and environment).
const (
	apiPath     = "/experience"
	clientID    = "tailor-webapp"
	environment = "main"
)

//go:embed rules.yaml
var rulesYAML []byte

//go:embed templates static
var assets embed.FS

// Config configures an App. DataDir is required.
type Config struct {
	// DataDir holds everything the site keeps: the profile store
	// (DataDir/profiles) and the key that signs session cookies
	// (DataDir/site.key). Reopening the same directory after a restart
	// keeps every visitor's profile, variants and login.
	DataDir string
	// WebDir holds the npm project whose bundle (WebDir/dist/sdk.js) the
	// pages load; see ensureBundle. Empty means the web directory next to
	// this source.
	WebDir string
	// Rules replaces the embedded rules.yaml when not nil.
	Rules *rules.Set
	// Locator resolves IPs to locations for visitors who consented; nil
	// means no IP lookups.
	Locator engine.Locator
	// Logger receives the site's and the engine's logs; nil discards them.
	Logger *slog.Logger
}

// App is the site: its pages, the Experience API under apiPath and the
// engine they share. It is safe for concurrent use.
type App struct {
	eng     *engine.Engine
	handler http.Handler
	log     *slog.Logger
	session signer
	pages   map[string]*template.Template
	bundle  string
}

// New opens the site's engine on cfg.DataDir and returns the App. The
// caller must Close it.
func New(cfg Config) (*App, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("webapp: Config.DataDir is empty")
	}
	if cfg.WebDir == "" {
		cfg.WebDir = defaultWebDir()
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bundle := filepath.Join(cfg.WebDir, Bundle)
	if _, err := os.Stat(bundle); err != nil {
		return nil, fmt.Errorf("webapp: the browser bundle is missing (ensureBundle builds it): %w", err)
	}
	set := cfg.Rules
	if set == nil {
		var err error
		if set, err = rules.Parse("rules.yaml", rulesYAML); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	key, err := loadKey(filepath.Join(cfg.DataDir, "site.key"))
	if err != nil {
		return nil, err
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	eng, err := engine.Open(filepath.Join(cfg.DataDir, "profiles"), &engine.Options{
		Rules:      set,
		SyncWrites: true,
		Locator:    cfg.Locator,
		Logger:     log,
		// The browser may send identify events through the Experience
		// API, but without a userHash, which only this server could
		// compute and never hands out, they cannot claim a user id:
		// logins go through the server.
		IdentitySecret: keyFor(key, "identity"),
		OnExposure: func(x engine.Exposure) {
			log.Info("exposure", "profile", x.ProfileID, "experience", x.ExperienceID, "variant", x.VariantIndex)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("webapp: open engine: %w", err)
	}
	a := &App{eng: eng, log: log, session: signer{keyFor(key, "session")}, pages: pages, bundle: bundle}

	mux := http.NewServeMux()
	api := httpapi.New(eng, httpapi.Options{
		Org: clientID, Env: environment,
		Logger: log,
		// Whoever holds a profile id can read the profile; the email the
		// login adds stays stored (rules can use it) but is not returned.
		RedactTraits: []string{"email"},
	})
	mux.Handle(apiPath+"/", http.StripPrefix(apiPath, api))
	mux.HandleFunc("GET /{$}", a.page("home", "Home", nil))
	mux.HandleFunc("GET /pricing", a.page("pricing", "Pricing", func(r *http.Request, v *view) { v.Products = catalogue }))
	mux.HandleFunc("GET /cart", a.page("cart", "Your cart", func(r *http.Request, v *view) {}))
	mux.HandleFunc("GET /login", a.page("login", "Log in", func(r *http.Request, v *view) {
		v.Users = users
		v.LoginError = r.URL.Query().Get("error") != ""
	}))
	mux.HandleFunc("POST /login", a.login)
	mux.HandleFunc("POST /logout", a.logout)
	mux.HandleFunc("POST /cart/add", a.addToCart)
	mux.HandleFunc("POST /cart/clear", a.clearCart)
	mux.HandleFunc("POST /consent", a.consent)
	mux.HandleFunc("GET /static/sdk.js", a.serveBundle)
	static, _ := fs.Sub(assets, "static")
	mux.Handle("GET /static/site.css", http.StripPrefix("/static/", http.FileServerFS(static)))
	a.handler = mux
	return a, nil
}

// ServeHTTP implements http.Handler.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.handler.ServeHTTP(w, r) }

// Engine returns the engine the site personalizes with. It stays owned by
// the App: Close closes it.
func (a *App) Engine() *engine.Engine { return a.eng }

// Close closes the engine, waiting for calls in flight.
func (a *App) Close() error { return a.eng.Close() }

// loadKey reads the site key from path, creating it (32 random bytes,
// readable by the owner only) on first start.
func loadKey(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if err == nil && len(key) == 32 {
		return key, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err == nil {
		return nil, fmt.Errorf("webapp: %s holds %d bytes, not 32", path, len(key))
	}
	key = make([]byte, 32)
	rand.Read(key)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, key, 0o600); err != nil {
		return nil, err
	}
	return key, os.Rename(tmp, path)
}

// keyFor derives a key for one purpose from the site key.
func keyFor(key []byte, purpose string) []byte {
	return signer{key}.mac(purpose)
}

// serveBundle serves the esbuild bundle of Ninetailed's SDK.
func (a *App) serveBundle(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeFile(w, r, a.bundle)
}

// A product the pricing page sells.
type product struct {
	SKU, Name, Blurb string
	Cents            int
}

// Price is the monthly price as text.
func (p product) Price() string { return fmt.Sprintf("$%d.%02d", p.Cents/100, p.Cents%100) }

var catalogue = []product{
	{"starter", "Starter", "One site, personalization by page and location.", 900},
	{"pro", "Pro", "Behavioural audiences, experiments and priority support.", 2900},
	{"team", "Team", "Everything in Pro for five people, with audit logs.", 9900},
}

func productBySKU(sku string) (product, bool) {
	i := slices.IndexFunc(catalogue, func(p product) bool { return p.SKU == sku })
	if i < 0 {
		return product{}, false
	}
	return catalogue[i], true
}

// A demo account. A real site has its own user store; all the engine needs
// is a stable user id and the traits to remember.
type user struct {
	ID, Email, Name, Plan, Password string
}

var users = []user{
	{"user-ada", "ada@example.com", "Ada", "pro", "tailor"},
	{"user-grace", "grace@example.com", "Grace", "starter", "tailor"},
}

func userByID(id string) *user {
	for i := range users {
		if users[i].ID == id {
			return &users[i]
		}
	}
	return nil
}

// cart returns the products in the visitor's cart cookie.
func cartOf(r *http.Request) []product {
	var out []product
	for _, sku := range strings.Split(cookieValue(r, cookieCart), ".") {
		if p, ok := productBySKU(sku); ok {
			out = append(out, p)
		}
	}
	return out
}

// userOf returns the logged-in user, or nil.
func (a *App) userOf(r *http.Request) *user {
	if v := cookieValue(r, cookieSession); v != "" {
		return userByID(a.session.verify(v))
	}
	return nil
}

// identify calls Identify on the visitor's profile (from the profile
// cookie; a new profile when there is none) and moves the cookie to the
// profile the engine answers with: a new profile's id, or after a login
// the known user's profile. On failure it logs and returns nil, and the
// page renders its baseline: personalization never takes a page down.
func (a *App) identify(w http.ResponseWriter, r *http.Request, req engine.Request) *engine.Response {
	pid := cookieValue(r, cookieProfile)
	resp, err := a.eng.Identify(r.Context(), pid, req)
	if errors.Is(err, engine.ErrInvalidInput) && pid != "" {
		// The cookie holds an id the engine refuses: start afresh.
		a.log.Warn("profile cookie refused; new profile", "err", err)
		pid = ""
		resp, err = a.eng.Identify(r.Context(), "", req)
	}
	if err != nil {
		a.log.Error("identify", "path", r.URL.Path, "err", err)
		return nil
	}
	if resp.Profile.ID != pid {
		setCookie(w, r, cookieProfile, resp.Profile.ID, cookieMaxAge)
	}
	return resp
}

// request builds the engine request for events sent on behalf of r. The
// location features, and the IP they would look up, go only with consent.
func request(r *http.Request, consent bool, evs ...engine.Event) engine.Request {
	req := engine.Request{Events: evs, Locale: locale(r)}
	if consent {
		req.Options.Features = []string{engine.FeatureLocation, engine.FeatureIPEnrichment}
		req.IP = clientIP(r)
	}
	return req
}

// page returns the handler of a page: one page event per request, then the
// template rendered with the engine's answer. fill adds page data.
func (a *App) page(name, title string, fill func(*http.Request, *view)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		consent := consentOf(r)
		resp := a.identify(w, r, request(r, consent == consentGranted, pageEvent(r, name, title, consent == consentGranted)))
		v := newView(r, title, consent, a.userOf(r), resp)
		if fill != nil {
			fill(r, v)
		}
		a.render(w, name, v)
	}
}

// pageEvent is the page event of request r. Without consent it is bare
// (the engine evaluates on an event): no page, referrer, campaign, user
// agent or locale, so the profile keeps only its id, session counters and
// the variants it was shown.
func pageEvent(r *http.Request, name, title string, consent bool) engine.Event {
	if !consent {
		return newEvent(engine.EventPage, engine.EventContext{GDPR: &engine.GDPR{IsConsentGiven: false}}, time.Now())
	}
	ev := newEvent(engine.EventPage, eventContext(r, title), time.Now())
	ev.Name = name
	ev.Properties = map[string]any{"title": title, "path": r.URL.Path}
	return ev
}

func (a *App) render(w http.ResponseWriter, name string, v *view) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store") // personalized
	if err := a.pages[name].ExecuteTemplate(w, "layout", v); err != nil {
		a.log.Error("render", "page", name, "err", err)
	}
}

// addToCart puts a product in the cart cookie and, with consent, records
// the add_to_cart track event that the "shoppers" audience reads.
func (a *App) addToCart(w http.ResponseWriter, r *http.Request) {
	p, ok := productBySKU(r.PostFormValue("sku"))
	if !ok {
		http.Error(w, "sku: no such product", http.StatusBadRequest)
		return
	}
	skus := []string{}
	for _, q := range cartOf(r) {
		skus = append(skus, q.SKU)
	}
	setCookie(w, r, cookieCart, strings.Join(append(skus, p.SKU), "."), 0)
	if consentOf(r) == consentGranted {
		ev := newEvent(engine.EventTrack, eventContext(r, "Pricing"), time.Now())
		ev.Event = "add_to_cart"
		ev.Properties = map[string]any{"sku": p.SKU, "price": float64(p.Cents) / 100, "currency": "USD"}
		a.identify(w, r, request(r, true, ev))
	}
	http.Redirect(w, r, "/cart", http.StatusSeeOther)
}

func (a *App) clearCart(w http.ResponseWriter, r *http.Request) {
	setCookie(w, r, cookieCart, "", -1)
	http.Redirect(w, r, "/cart", http.StatusSeeOther)
}

// login checks the demo credentials, sets the session cookie and, with
// consent, sends the identify event: the engine merges the anonymous
// profile into the user's (or names it the user's, the first time), and
// the profile cookie follows to the survivor.
func (a *App) login(w http.ResponseWriter, r *http.Request) {
	email, password := r.PostFormValue("email"), r.PostFormValue("password")
	var u *user
	for i := range users {
		if users[i].Email == email && subtle.ConstantTimeCompare([]byte(users[i].Password), []byte(password)) == 1 {
			u = &users[i]
		}
	}
	if u == nil {
		http.Redirect(w, r, "/login?error=1", http.StatusSeeOther)
		return
	}
	setCookie(w, r, cookieSession, a.session.sign(u.ID), 0)
	if consentOf(r) == consentGranted {
		ev := newEvent(engine.EventIdentify, eventContext(r, "Log in"), time.Now())
		ev.UserID = u.ID
		ev.Traits = map[string]any{"name": u.Name, "email": u.Email, "plan": u.Plan}
		a.identify(w, r, request(r, true, ev))
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// logout ends the session and forgets the profile cookie, so the next
// visitor on this browser starts a new anonymous profile (as the SDK's
// reset does).
func (a *App) logout(w http.ResponseWriter, r *http.Request) {
	setCookie(w, r, cookieSession, "", -1)
	setCookie(w, r, cookieProfile, "", -1)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// consent records the visitor's choice. Withdrawing a consent given before
// deletes the profile built with it (Engine.Delete) and the cookie; the
// next page starts a profile that holds only what the site needs.
func (a *App) consent(w http.ResponseWriter, r *http.Request) {
	choice := r.PostFormValue("choice")
	if choice != consentGranted && choice != consentDenied {
		http.Error(w, `choice: must be "granted" or "denied"`, http.StatusBadRequest)
		return
	}
	if choice == consentDenied && consentOf(r) == consentGranted {
		if pid := cookieValue(r, cookieProfile); pid != "" {
			if err := a.eng.Delete(r.Context(), pid); err != nil && !errors.Is(err, engine.ErrNotFound) {
				a.log.Error("delete profile on withdrawn consent", "err", err)
				http.Error(w, "could not delete your profile; try again", http.StatusServiceUnavailable)
				return
			}
		}
		setCookie(w, r, cookieProfile, "", -1)
	}
	setCookie(w, r, cookieConsent, choice, cookieMaxAge)
	http.Redirect(w, r, localPath(r.PostFormValue("return")), http.StatusSeeOther)
}

// localPath returns p when it is a path on this site, else "/".
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n") {
		return "/"
	}
	return p
}
