package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tailorhq/tailor/engine"
)

// countingLocator "resolves" every address to Zurich and counts its calls,
// so tests see whether a request asked for location features.
type countingLocator struct {
	mu    sync.Mutex
	calls int
}

func (l *countingLocator) Locate(context.Context, netip.Addr, string) (engine.Location, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	return engine.Location{City: "Zurich", Country: "Switzerland", CountryCode: "CH", Continent: "EU"}, nil
}

func (l *countingLocator) Calls() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls
}

// stubWebDir is a web directory whose bundle is a stand-in, for tests that
// do not run the page's script (the browser test builds the real one).
func stubWebDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "dist"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, Bundle), []byte("/* stand-in */\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// openApp opens the site on dataDir, closed when the test ends.
func openApp(t *testing.T, dataDir, webDir string, loc engine.Locator) *App {
	t.Helper()
	cfg := Config{DataDir: dataDir, WebDir: webDir}
	if loc != nil {
		cfg.Locator = loc
	}
	app, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	return app
}

// client is a visitor without a browser: a cookie jar and no JavaScript.
type client struct {
	t    *testing.T
	base string
	http *http.Client
}

func newClient(t *testing.T, base string, tr http.RoundTripper) *client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &client{t: t, base: base, http: &http.Client{Jar: jar, Transport: tr}}
}

var stateRE = regexp.MustCompile(`(?s)<script id="tailor-state" type="application/json">(.*?)</script>`)

// page fetches path and returns the HTML and the state handed to the SDK.
func (c *client) page(path string) (string, sdkState) {
	c.t.Helper()
	resp, err := c.http.Get(c.base + path)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.read(resp)
}

func (c *client) post(path string, form url.Values) (string, sdkState) {
	c.t.Helper()
	resp, err := c.http.PostForm(c.base+path, form)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.read(resp)
}

func (c *client) read(resp *http.Response) (string, sdkState) {
	c.t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("%s %s: %s\n%s", resp.Request.Method, resp.Request.URL.Path, resp.Status, b)
	}
	m := stateRE.FindSubmatch(b)
	if m == nil {
		c.t.Fatalf("%s: no tailor-state script", resp.Request.URL.Path)
	}
	var st sdkState
	if err := json.Unmarshal(m[1], &st); err != nil {
		c.t.Fatalf("tailor-state: %v\n%s", err, m[1])
	}
	return string(b), st
}

func (c *client) cookie(name string) *http.Cookie {
	u, _ := url.Parse(c.base)
	for _, k := range c.http.Jar.Cookies(u) {
		if k.Name == name {
			return k
		}
	}
	return nil
}

func has(list []string, s string) bool { return slices.Contains(list, s) }

func TestCookiesAreFirstPartyHttpOnlyLax(t *testing.T) {
	for _, tls := range []bool{false, true} {
		name := "http"
		if tls {
			name = "https"
		}
		t.Run(name, func(t *testing.T) {
			app := openApp(t, t.TempDir(), stubWebDir(t), nil)
			var srv *httptest.Server
			if tls {
				srv = httptest.NewTLSServer(app)
			} else {
				srv = httptest.NewServer(app)
			}
			defer srv.Close()
			c := srv.Client()
			c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			check := func(resp *http.Response, want ...string) {
				t.Helper()
				resp.Body.Close()
				got := map[string]*http.Cookie{}
				for _, k := range resp.Cookies() {
					got[k.Name] = k
				}
				for _, n := range want {
					k := got[n]
					if k == nil {
						t.Fatalf("%s: no %s cookie (got %v)", resp.Request.URL.Path, n, resp.Header.Values("Set-Cookie"))
					}
					if !k.HttpOnly || k.SameSite != http.SameSiteLaxMode || k.Secure != tls || k.Path != "/" || k.Domain != "" {
						t.Errorf("%s cookie %s: HttpOnly=%v SameSite=%v Secure=%v Path=%q Domain=%q; want HttpOnly, Lax, Secure=%v, /, host-only",
							resp.Request.URL.Path, n, k.HttpOnly, k.SameSite, k.Secure, k.Path, k.Domain, tls)
					}
				}
			}
			resp, err := c.Get(srv.URL + "/")
			if err != nil {
				t.Fatal(err)
			}
			check(resp, cookieProfile)
			resp, err = c.PostForm(srv.URL+"/consent", url.Values{"choice": {consentGranted}, "return": {"/pricing"}})
			if err != nil {
				t.Fatal(err)
			}
			if loc := resp.Header.Get("Location"); loc != "/pricing" {
				t.Errorf("consent redirects to %q, want /pricing", loc)
			}
			check(resp, cookieConsent)
			// With consent and no profile cookie, add-to-cart records its
			// track event on a new profile.
			req, _ := http.NewRequest("POST", srv.URL+"/cart/add", strings.NewReader("sku=pro"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.AddCookie(&http.Cookie{Name: cookieConsent, Value: consentGranted})
			resp, err = c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			check(resp, cookieCart, cookieProfile)
			resp, err = c.PostForm(srv.URL+"/login", url.Values{"email": {"ada@example.com"}, "password": {"tailor"}})
			if err != nil {
				t.Fatal(err)
			}
			check(resp, cookieSession)
		})
	}
}

// TestConsentedVisitor drives the whole journey without a browser: page
// views, add to cart (behavioural audience), login (merge into the known
// user), a restart, and withdrawing consent.
func TestConsentedVisitor(t *testing.T) {
	dir, web := t.TempDir(), stubWebDir(t)
	loc := &countingLocator{}
	app := openApp(t, dir, web, loc)
	var current atomicHandler
	current.set(app)
	srv := httptest.NewServer(&current)
	defer srv.Close()
	ctx := context.Background()

	// Ada's own profile, from an earlier visit on another device.
	ada := newClient(t, srv.URL, nil)
	ada.post("/consent", url.Values{"choice": {consentGranted}})
	_, adaState := ada.post("/login", url.Values{"email": {"ada@example.com"}, "password": {"tailor"}})
	adaID := adaState.ProfileID

	// A new anonymous visitor consents, looks at pricing, adds to cart.
	v := newClient(t, srv.URL, nil)
	_, first := v.page("/")
	anonID := first.ProfileID
	if anonID == "" || anonID == adaID {
		t.Fatalf("anonymous profile %q (Ada's is %q)", anonID, adaID)
	}
	hero := heroOf(t, first)
	v.post("/consent", url.Values{"choice": {consentGranted}, "return": {"/"}})
	v.page("/pricing")
	html, st := v.post("/cart/add", url.Values{"sku": {"team"}})
	if !strings.Contains(html, `id="promo"`) {
		t.Error("the cart page after add-to-cart shows no shoppers promo")
	}
	if !hasExperience(st, "exp-cart-promo") {
		t.Errorf("after add-to-cart the visitor is not in exp-cart-promo: %+v", st.Experiences)
	}
	if heroOf(t, st) != hero {
		t.Errorf("hero changed from %+v to %+v", hero, heroOf(t, st))
	}
	resp, err := app.Engine().Get(ctx, anonID)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Profile.Location.CountryCode != "CH" {
		t.Errorf("consented visitor's location %+v: the location features were not requested", resp.Profile.Location)
	}

	// Login as Ada: the anonymous profile merges into hers.
	html, st = v.post("/login", url.Values{"email": {"ada@example.com"}, "password": {"tailor"}})
	if st.ProfileID != adaID {
		t.Fatalf("after login the page renders profile %s, want Ada's %s", st.ProfileID, adaID)
	}
	if !strings.Contains(html, `id="welcome"`) || !hasExperience(st, "exp-pro-welcome") {
		t.Error("after login the page does not show the Pro customer's welcome")
	}
	if c := v.cookie(cookieProfile); c == nil || c.Value != adaID {
		t.Errorf("profile cookie %v after login, want Ada's id", c)
	}
	merged, err := app.Engine().Get(ctx, adaID)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"shoppers", "pricing-viewers", "pro-customers"} {
		if !has(merged.Profile.Audiences, a) {
			t.Errorf("Ada's profile after the merge is not in %s (audiences %v): the anonymous events are lost", a, merged.Profile.Audiences)
		}
	}
	if old, err := app.Engine().Get(ctx, anonID); err != nil || old.Profile.ID != adaID {
		t.Errorf("the anonymous id resolves to %v, %v; want Ada's profile", old, err)
	}

	// Restart: a new App on the same directory keeps variants and login.
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}
	app = openApp(t, dir, web, loc)
	current.set(app)
	html, st = v.page("/")
	if st.ProfileID != adaID || heroOf(t, st) != heroOf(t, adaState) || !strings.Contains(html, `id="nav-user">Ada<`) {
		t.Errorf("after a restart: profile %s hero %+v (want %s, %+v), logged in: %v",
			st.ProfileID, heroOf(t, st), adaID, heroOf(t, adaState), strings.Contains(html, `id="nav-user"`))
	}

	// Withdrawing consent deletes the profile built with it.
	v.post("/consent", url.Values{"choice": {consentDenied}})
	if _, err := app.Engine().Get(ctx, adaID); err == nil {
		t.Error("Ada's profile survived the withdrawal of consent")
	}
}

// TestWithoutConsent: no location features, no track, no identify, no
// merge, and a bare page event: only what the site needs is stored.
func TestWithoutConsent(t *testing.T) {
	loc := &countingLocator{}
	app := openApp(t, t.TempDir(), stubWebDir(t), loc)
	srv := httptest.NewServer(app)
	defer srv.Close()
	ctx := context.Background()

	for _, choice := range []string{"", consentDenied} {
		name := "not asked"
		if choice != "" {
			name = "declined"
		}
		t.Run(name, func(t *testing.T) {
			v := newClient(t, srv.URL, nil)
			html, st := v.page("/")
			if choice == "" && !strings.Contains(html, `id="consent-banner"`) {
				t.Error("no consent banner for a visitor who has not chosen")
			}
			if choice != "" {
				html, st = v.post("/consent", url.Values{"choice": {choice}})
				if strings.Contains(html, `id="consent-banner"`) {
					t.Error("the banner stays after the choice")
				}
			}
			if !strings.Contains(html, `id="consent-control"`) {
				t.Error("no consent control in the footer")
			}
			if st.Consent {
				t.Error("the SDK is told there is consent")
			}
			hero := heroOf(t, st)
			v.page("/pricing")
			_, st = v.post("/cart/add", url.Values{"sku": {"pro"}})
			v.post("/login", url.Values{"email": {"grace@example.com"}, "password": {"tailor"}})
			_, st = v.page("/")
			if heroOf(t, st) != hero {
				t.Errorf("hero changed without consent: %+v, then %+v", hero, heroOf(t, st))
			}
			if v.cookie(cookieCart) == nil || v.cookie(cookieSession) == nil {
				t.Error("the cart or the login did not work without consent")
			}
			resp, err := app.Engine().Get(ctx, st.ProfileID)
			if err != nil {
				t.Fatal(err)
			}
			p := resp.Profile
			if !p.Location.IsZero() || len(p.Traits) != 0 || len(p.Audiences) != 0 {
				t.Errorf("profile without consent holds location %+v, traits %v, audiences %v", p.Location, p.Traits, p.Audiences)
			}
			if p.Session.LandingPage.Path != "" {
				t.Errorf("profile without consent records the landing page %+v", p.Session.LandingPage)
			}
			if len(p.StickyVariants) != 1 {
				t.Errorf("sticky variants %v: the profile should keep the hero it was shown", p.StickyVariants)
			}
		})
	}
	if n := loc.Calls(); n != 0 {
		t.Errorf("the locator was called %d times without consent", n)
	}
}

func TestBadInput(t *testing.T) {
	app := openApp(t, t.TempDir(), stubWebDir(t), nil)
	srv := httptest.NewServer(app)
	defer srv.Close()
	for _, tc := range []struct {
		path string
		form url.Values
		want string
	}{
		{"/cart/add", url.Values{"sku": {"nope"}}, "sku"},
		{"/consent", url.Values{"choice": {"maybe"}}, "choice"},
	} {
		resp, err := http.PostForm(srv.URL+tc.path, tc.form)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), tc.want) {
			t.Errorf("POST %s %v: %s %q, want 400 naming %s", tc.path, tc.form, resp.Status, b, tc.want)
		}
		if len(resp.Cookies()) != 0 {
			t.Errorf("POST %s %v set cookies %v", tc.path, tc.form, resp.Header.Values("Set-Cookie"))
		}
	}
	// A wrong password logs nobody in.
	c := newClient(t, srv.URL, nil)
	html, _ := c.post("/login", url.Values{"email": {"ada@example.com"}, "password": {"wrong"}})
	if !strings.Contains(html, `id="login-error"`) || c.cookie(cookieSession) != nil {
		t.Error("a wrong password logged in, or said nothing")
	}
	// A forged session cookie is ignored.
	req, _ := http.NewRequest("GET", srv.URL+"/", nil)
	req.AddCookie(&http.Cookie{Name: cookieSession, Value: "user-ada.AAAA"})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(b), `id="nav-user"`) {
		t.Error("a forged session cookie logged in")
	}
	for in, want := range map[string]string{"/cart": "/cart", "//evil.example/": "/", "https://evil.example/": "/", "": "/", "/\\evil": "/"} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// selection is an experience and its variant.
type selection struct {
	ExperienceID string
	VariantIndex int
}

func heroOf(t *testing.T, st sdkState) selection {
	t.Helper()
	for _, x := range st.Experiences {
		if x.ExperienceID == "exp-hero" {
			return selection{x.ExperienceID, x.VariantIndex}
		}
	}
	t.Fatalf("no exp-hero in %+v", st.Experiences)
	return selection{}
}

func hasExperience(st sdkState, id string) bool {
	return slices.ContainsFunc(st.Experiences, func(x engine.SelectedExperience) bool { return x.ExperienceID == id })
}

// atomicHandler serves through whichever App is current, so a test can
// restart the site behind one listener (the browser keeps its cookies).
type atomicHandler struct {
	mu  sync.RWMutex
	app *App
}

func (h *atomicHandler) set(a *App) {
	h.mu.Lock()
	h.app = a
	h.mu.Unlock()
}

func (h *atomicHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.RLock()
	a := h.app
	h.mu.RUnlock()
	a.ServeHTTP(w, r)
}

// TestExperienceAPI: the API is mounted under apiPath on the site's
// profiles; a browser cannot claim a user id, and the email the login
// stored is not returned.
func TestExperienceAPI(t *testing.T) {
	app := openApp(t, t.TempDir(), stubWebDir(t), nil)
	srv := httptest.NewServer(app)
	defer srv.Close()
	v := newClient(t, srv.URL, nil)
	v.post("/consent", url.Values{"choice": {consentGranted}})
	_, st := v.post("/login", url.Values{"email": {"ada@example.com"}, "password": {"tailor"}})

	base := srv.URL + apiPath + "/v2/organizations/" + clientID + "/environments/" + environment + "/profiles/"
	resp, err := http.Get(base + st.ProfileID)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"plan":"pro"`) || strings.Contains(string(b), "ada@example.com") {
		t.Errorf("GET the profile through the API: %s %s; want 200 with the plan and without the email", resp.Status, b)
	}

	// An anonymous browser profile claims to be Ada.
	_, anon := newClient(t, srv.URL, nil).page("/")
	body := `{"events":[{"type":"identify","userId":"user-ada","traits":{},"timestamp":"2026-01-01T00:00:00Z","context":{}}]}`
	resp, err = http.Post(base+anon.ProfileID, "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "ERR_IDENTITY_UNVERIFIED") {
		t.Errorf("identify as another user through the API: %s %s; want 403", resp.Status, b)
	}
	if p, err := app.Engine().Get(context.Background(), anon.ProfileID); err != nil || p.Profile.ID != anon.ProfileID {
		t.Errorf("after the refused identify the anonymous profile is %+v, %v", p, err)
	}
}
