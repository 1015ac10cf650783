package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// TestBrowser runs the site in headless Chromium with the real bundle of
// Ninetailed's SDK: the SDK must see the server's profile and variants,
// keep them across reloads and a restart, follow the visitor into a
// behavioural audience and through a login, send no location feature
// without consent, and no request of any page may fail. Screenshots of
// the pages go to a temporary directory whose path the test logs.
//
// It needs Chromium (/usr/bin/chromium, or $TAILOR_CHROMIUM) and npm (to
// build the bundle). It skips without them, and fails instead when
// TAILOR_REQUIRE_BROWSER or TAILOR_REQUIRE_NODE is set, as in CI.
func TestBrowser(t *testing.T) {
	chrome := findChromium(t)
	if _, err := exec.LookPath("npm"); err != nil {
		if os.Getenv("TAILOR_REQUIRE_NODE") != "" {
			t.Fatal("TAILOR_REQUIRE_NODE is set but npm is not installed")
		}
		t.Skip("npm is not installed; the browser test bundles Ninetailed's SDK with it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := ensureBundle(ctx, "web", t.Logf); err != nil {
		t.Fatal(err)
	}
	shots, err := os.MkdirTemp("", "tailor-webapp-screenshots-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots: %s", shots)

	site := startSite(t)
	b := startBrowser(t, ctx, chrome)

	// The visitor of the first subtests, and what they saw.
	v := b.visitor(t, site, "visitor")
	var first pageState

	t.Run("first visit renders a variant the SDK agrees with", func(t *testing.T) {
		first = v.open(t, "/")
		first.wantHero(t)
		first.wantSDKAgrees(t)
		if !first.Banner {
			t.Error("no consent banner on the first visit")
		}
		v.screenshot(t, shots, "1-first-visit.png")

		// Consent: the page reloads on the same profile and variant, and
		// now the SDK asks for the location features.
		calls := site.loc.Calls()
		ps := v.click(t, "#consent-accept")
		ps.wantSameVisitor(t, first)
		ps.wantSDKAgrees(t)
		if ps.Banner || !ps.State.Consent {
			t.Errorf("after consent: banner %v, consent %v", ps.Banner, ps.State.Consent)
		}
		if site.loc.Calls() == calls {
			t.Error("with consent the location was not looked up")
		}
		sdk := site.sdkCalls(ps.State.ProfileID)
		if len(sdk) == 0 || !sdk[len(sdk)-1].hasLocationFeature() {
			t.Errorf("with consent the SDK's last request did not ask for the location features: %v", sdk)
		} else if ua, _ := sdk[len(sdk)-1].context(); ua == "" {
			t.Errorf("with consent the SDK's events carry no user agent: %v", sdk[len(sdk)-1])
		}
	})

	t.Run("reload and restart keep the variant", func(t *testing.T) {
		ps := v.reload(t)
		ps.wantSameVisitor(t, first)
		ps.wantSDKAgrees(t)
		site.restart(t)
		ps = v.reload(t)
		ps.wantSameVisitor(t, first)
		ps.wantSDKAgrees(t)
	})

	t.Run("add to cart moves the visitor into a behavioural audience", func(t *testing.T) {
		ps := v.open(t, "/pricing")
		if ps.Promo || slices.Contains(ps.Audiences, "shoppers") {
			t.Fatalf("before add-to-cart: promo %v, audiences %v", ps.Promo, ps.Audiences)
		}
		ps = v.click(t, "#add-pro")
		if ps.Path != "/cart" || !ps.Promo || !slices.Contains(ps.Audiences, "shoppers") || !ps.has("exp-cart-promo") {
			t.Errorf("the page after add-to-cart (%s): promo %v, audiences %v, experiences %v",
				ps.Path, ps.Promo, ps.Audiences, ps.State.Experiences)
		}
		// The SDK sees the audience's experience too.
		ps = v.open(t, "/")
		ps.wantSameVisitor(t, first)
		ps.wantSDKAgrees(t)
		if !ps.sdkHas("exp-cart-promo") {
			t.Errorf("the SDK does not report exp-cart-promo: %+v", ps.SDK.Experiences)
		}
	})

	t.Run("login merges the anonymous visitor", func(t *testing.T) {
		// Ada logged in before on another browser: her profile exists.
		ada := b.visitor(t, site, "ada")
		ada.open(t, "/")
		ada.click(t, "#consent-accept")
		adaHome := ada.login(t, "ada@example.com")
		adaID := adaHome.State.ProfileID
		if !adaHome.Welcome {
			t.Error("Ada's first login does not show the Pro welcome")
		}
		ada.checkProblems(t)

		anonID := first.State.ProfileID
		ps := v.login(t, "ada@example.com")
		if ps.State.ProfileID != adaID || ps.SDK.ProfileID != adaID {
			t.Fatalf("after login: page profile %s, SDK profile %s; want Ada's %s", ps.State.ProfileID, ps.SDK.ProfileID, adaID)
		}
		ps.wantSDKAgrees(t)
		if !ps.Welcome || ps.hero() != adaHome.hero() {
			t.Errorf("after login: welcome %v, hero %+v; want the known user's (welcome, %+v)", ps.Welcome, ps.hero(), adaHome.hero())
		}
		v.screenshot(t, shots, "2-after-login.png")

		eng := site.app().Engine()
		merged, err := eng.Get(context.Background(), adaID)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range []string{"shoppers", "pricing-viewers"} {
			if !slices.Contains(merged.Profile.Audiences, a) {
				t.Errorf("Ada's profile is not in %s after the merge (audiences %v): the anonymous visitor's events are missing",
					a, merged.Profile.Audiences)
			}
		}
		if old, err := eng.Get(context.Background(), anonID); err != nil || old.Profile.ID != adaID {
			t.Errorf("the anonymous id %s resolves to %+v, %v; want Ada's profile", anonID, old, err)
		}
	})

	t.Run("without consent no location feature is sent", func(t *testing.T) {
		n := b.visitor(t, site, "no-consent")
		calls := site.loc.Calls()
		ps := n.open(t, "/")
		ps.wantHero(t)
		ps.wantSDKAgrees(t)
		if !ps.Banner {
			t.Error("no consent banner")
		}
		n.screenshot(t, shots, "3-without-consent.png")
		declined := n.click(t, "#consent-decline")
		declined.wantSameVisitor(t, ps)
		declined.wantSDKAgrees(t)
		if declined.Banner || declined.State.Consent {
			t.Errorf("after declining: banner %v, consent %v", declined.Banner, declined.State.Consent)
		}
		n.open(t, "/pricing")
		n.click(t, "#add-starter")

		sdk := site.sdkCalls(ps.State.ProfileID)
		if len(sdk) < 2 {
			t.Fatalf("the SDK sent %d requests, want one per home page", len(sdk))
		}
		for _, c := range sdk {
			if c.hasLocationFeature() {
				t.Errorf("without consent the SDK sent %s %s with body %s", c.Method, c.Path, c.Body)
			}
			if c.Status != http.StatusOK {
				t.Errorf("SDK request %s %s: %d", c.Method, c.Path, c.Status)
			}
			if ua, lang := c.context(); ua != "" || lang != "" {
				t.Errorf("without consent the SDK sent user agent %q, locale %q", ua, lang)
			}
		}
		if got := site.loc.Calls(); got != calls {
			t.Errorf("without consent the location was looked up %d times", got-calls)
		}
		stored, err := site.app().Engine().Get(context.Background(), ps.State.ProfileID)
		if err != nil {
			t.Fatal(err)
		}
		if p := stored.Profile; !p.Location.IsZero() || len(p.Traits) != 0 || len(p.Audiences) != 0 {
			t.Errorf("without consent the profile holds location %+v, traits %v, audiences %v", p.Location, p.Traits, p.Audiences)
		}
		// Nothing in the browser but the site's own HttpOnly cookies.
		final := n.open(t, "/")
		if len(final.LocalStorage) != 0 || len(final.SessionStorage) != 0 || final.Cookie != "" {
			t.Errorf("without consent the browser holds localStorage %v, sessionStorage %v, script-readable cookies %q",
				final.LocalStorage, final.SessionStorage, final.Cookie)
		}
		for _, c := range n.cookies(t) {
			if !c.HTTPOnly || c.SameSite != network.CookieSameSiteLax || !strings.HasPrefix(c.Name, "tailor_") {
				t.Errorf("cookie %s: HttpOnly %v SameSite %q", c.Name, c.HTTPOnly, c.SameSite)
			}
		}
	})

	t.Run("no request from the page fails", func(t *testing.T) {
		for _, tb := range b.tabs() {
			tb.checkProblems(t)
		}
		if f := site.failures(); len(f) > 0 {
			t.Errorf("the server answered with errors: %v", f)
		}
		if c := site.creates(); c > 0 {
			t.Errorf("the SDK created %d profiles of its own instead of using the server's", c)
		}
	})
}

// findChromium returns the browser to run, skipping (or failing, with
// TAILOR_REQUIRE_BROWSER) when there is none.
func findChromium(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("TAILOR_CHROMIUM"), "/usr/bin/chromium", "chromium", "chromium-browser"}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	if os.Getenv("TAILOR_REQUIRE_BROWSER") != "" {
		t.Fatal("TAILOR_REQUIRE_BROWSER is set but Chromium is not installed (apt-get install -y chromium)")
	}
	t.Skip("Chromium is not installed (apt-get install -y chromium); the browser test needs it")
	return ""
}

// apiCall is one request to the Experience API, as the server saw it.
type apiCall struct {
	Method, Path string
	Body         []byte
	Status       int
}

func (c apiCall) String() string {
	return fmt.Sprintf("%s %s %d %s", c.Method, c.Path, c.Status, c.Body)
}

// hasLocationFeature reports whether the request body asks for a location
// feature.
func (c apiCall) hasLocationFeature() bool {
	var body struct {
		Options struct {
			Features []string `json:"features"`
		} `json:"options"`
	}
	json.Unmarshal(c.Body, &body)
	return slices.Contains(body.Options.Features, "location") || slices.Contains(body.Options.Features, "ip-enrichment")
}

// context returns the user agent and locale the request's events carry
// (the first non-empty of each).
func (c apiCall) context() (userAgent, locale string) {
	var body struct {
		Events []struct {
			Context struct {
				UserAgent string `json:"userAgent"`
				Locale    string `json:"locale"`
			} `json:"context"`
		} `json:"events"`
	}
	json.Unmarshal(c.Body, &body)
	for _, e := range body.Events {
		userAgent = cmp.Or(userAgent, e.Context.UserAgent)
		locale = cmp.Or(locale, e.Context.Locale)
	}
	return userAgent, locale
}

// testSite is the site behind one listener, restartable, recording the
// Experience API requests and every error answer.
type testSite struct {
	*httptest.Server
	owner    *testing.T // the test the Apps belong to, not a subtest
	dir, web string
	loc      *countingLocator
	current  atomicHandler

	mu     sync.Mutex
	calls  []apiCall
	errors []string
}

func startSite(t *testing.T) *testSite {
	s := &testSite{owner: t, dir: t.TempDir(), web: "web", loc: &countingLocator{}}
	s.current.set(openApp(t, s.dir, s.web, s.loc))
	s.Server = httptest.NewServer(s)
	t.Cleanup(s.Close)
	return s
}

func (s *testSite) app() *App {
	s.current.mu.RLock()
	defer s.current.mu.RUnlock()
	return s.current.app
}

// restart closes the App (engine and store) and opens a new one on the
// same data directory, as a new process would.
func (s *testSite) restart(t *testing.T) {
	t.Helper()
	if err := s.app().Close(); err != nil {
		t.Fatal(err)
	}
	s.current.set(openApp(s.owner, s.dir, s.web, s.loc))
}

func (s *testSite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body []byte
	api := strings.HasPrefix(r.URL.Path, apiPath+"/")
	if api {
		body, _ = io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	s.current.ServeHTTP(sw, r)
	s.mu.Lock()
	defer s.mu.Unlock()
	if api {
		s.calls = append(s.calls, apiCall{r.Method, strings.TrimPrefix(r.URL.Path, apiPath), body, sw.status})
	}
	if sw.status >= 400 {
		s.errors = append(s.errors, fmt.Sprintf("%s %s: %d", r.Method, r.URL.Path, sw.status))
	}
}

// sdkCalls returns the API requests on profile id.
func (s *testSite) sdkCalls(id string) []apiCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []apiCall
	for _, c := range s.calls {
		if strings.HasSuffix(c.Path, "/profiles/"+id) {
			out = append(out, c)
		}
	}
	return out
}

// creates counts requests that created a profile through the API.
func (s *testSite) creates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c.Method == http.MethodPost && strings.HasSuffix(c.Path, "/profiles") {
			n++
		}
	}
	return n
}

func (s *testSite) failures() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.errors)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// browser is one headless Chromium; each visitor is a browser context of
// its own (own cookies and storage).
type browser struct {
	ctx     context.Context
	mu      sync.Mutex
	visited []*tab
}

func startBrowser(t *testing.T, ctx context.Context, path string) *browser {
	t.Helper()
	var out bytes.Buffer
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		// The network is closed: no QUIC, updates, sync or other
		// background requests that would only be refused.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.CombinedOutput(&out),
	)
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start %s: %v\n%s", path, err, out.String())
	}
	return &browser{ctx: bctx}
}

func (b *browser) tabs() []*tab {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.visited)
}

// tab is one visitor's page, collecting every failed request, error
// answer, console error and uncaught exception.
type tab struct {
	name string
	site *testSite
	ctx  context.Context

	mu       sync.Mutex
	urls     map[network.RequestID]string
	problems []string
}

func (b *browser) visitor(t *testing.T, site *testSite, name string) *tab {
	tb := &tab{name: name, site: site, urls: map[network.RequestID]string{}}
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext(), chromedp.WithListener(tb.listen))
	t.Cleanup(cancel)
	tb.ctx = ctx
	b.mu.Lock()
	b.visited = append(b.visited, tb)
	b.mu.Unlock()
	return tb
}

// listen runs in the tab's event loop: it only records.
func (tb *tab) listen(ev any) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		tb.urls[ev.RequestID] = ev.Request.URL
	case *network.EventResponseReceived:
		if ev.Response.Status >= 400 {
			tb.problems = append(tb.problems, fmt.Sprintf("%s: HTTP %d", ev.Response.URL, ev.Response.Status))
		}
	case *network.EventLoadingFailed:
		tb.problems = append(tb.problems, fmt.Sprintf("%s: %s (canceled %v)", tb.urls[ev.RequestID], ev.ErrorText, ev.Canceled))
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
		tb.problems = append(tb.problems, "exception: "+msg)
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning {
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			tb.problems = append(tb.problems, fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " ")))
		}
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError || ev.Entry.Level == log.EntryLevelWarning {
			tb.problems = append(tb.problems, fmt.Sprintf("log %s: %s %s", ev.Entry.Level, ev.Entry.Text, ev.Entry.URL))
		}
	}
}

func (tb *tab) checkProblems(t *testing.T) {
	t.Helper()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, p := range tb.problems {
		t.Errorf("%s: %s", tb.name, p)
	}
}

// pageState is what a page shows and what the SDK reported on it.
type pageState struct {
	Path  string   `json:"path"`
	State sdkState `json:"state"`
	SDK   struct {
		Status      string      `json:"status"`
		ProfileID   string      `json:"profileId"`
		Experiences []selection `json:"experiences"`
		Agrees      bool        `json:"agrees"`
		Error       string      `json:"error"`
	} `json:"sdk"`
	Hero *struct {
		Experience string `json:"experience"`
		Variant    int    `json:"variant"`
		Entry      string `json:"entry"`
		Headline   string `json:"headline"`
		CTA        string `json:"cta"`
	} `json:"hero"`
	Audiences      []string `json:"audiences"`
	Banner         bool     `json:"banner"`
	Promo          bool     `json:"promo"`
	Welcome        bool     `json:"welcome"`
	LocalStorage   []string `json:"localStorage"`
	SessionStorage []string `json:"sessionStorage"`
	Cookie         string   `json:"cookie"`
	Panel          string   `json:"panel"`
}

// readPage is evaluated in the page once the SDK has settled.
const readPage = `(() => {
  const h = document.getElementById('hero');
  const audiences = document.getElementById('panel-audiences');
  return {
    path: location.pathname,
    state: JSON.parse(document.getElementById('tailor-state').textContent),
    sdk: window.tailorSDK,
    hero: h && {
      experience: h.dataset.tailorExperience || '',
      variant: Number(h.dataset.tailorVariant),
      entry: h.dataset.tailorEntry || '',
      headline: h.querySelector('h1').textContent,
      cta: document.getElementById('cta').textContent,
    },
    audiences: audiences && audiences.textContent !== 'none' ? audiences.textContent.split(', ') : [],
    banner: !!document.getElementById('consent-banner') && document.getElementById('consent-banner').offsetHeight > 0,
    promo: !!document.getElementById('promo'),
    welcome: !!document.getElementById('welcome'),
    localStorage: Object.keys(localStorage),
    sessionStorage: Object.keys(sessionStorage),
    cookie: document.cookie,
    panel: (document.getElementById('sdk-status') || {}).textContent || '',
  };
})()`

// settle waits until the SDK has reported (or failed), then reads the page.
func (tb *tab) settle(t *testing.T) pageState {
	t.Helper()
	if _, err := chromedp.Run(tb.ctx, chromedp.Poll[bool](
		`window.tailorSDK !== undefined && window.tailorSDK.status !== 'starting'`,
		chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		status, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[[]byte](`JSON.stringify(window.tailorSDK || null)`))
		t.Fatalf("%s: the SDK did not report: %v (tailorSDK = %s)", tb.name, err, status)
	}
	ps, err := chromedp.Run(tb.ctx, chromedp.Evaluate[pageState](readPage))
	if err != nil {
		t.Fatalf("%s: read the page: %v", tb.name, err)
	}
	if ps.SDK.Status == "error" {
		t.Errorf("%s %s: the SDK failed: %s", tb.name, ps.Path, ps.SDK.Error)
	}
	return ps
}

func (tb *tab) open(t *testing.T, path string) pageState {
	t.Helper()
	if err := chromedp.Do(tb.ctx, chromedp.Navigate(tb.site.URL+path)); err != nil {
		t.Fatalf("%s: open %s: %v", tb.name, path, err)
	}
	return tb.settle(t)
}

func (tb *tab) reload(t *testing.T) pageState {
	t.Helper()
	if _, err := chromedp.Run(tb.ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Reload())); err != nil {
		t.Fatalf("%s: reload: %v", tb.name, err)
	}
	return tb.settle(t)
}

// click clicks the element (a form button) and waits for the page it
// leads to.
func (tb *tab) click(t *testing.T, sel string) pageState {
	t.Helper()
	if _, err := chromedp.Run(tb.ctx, chromedp.WaitEvent(page.LoadEventFired, nil,
		chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))); err != nil {
		t.Fatalf("%s: click %s: %v", tb.name, sel, err)
	}
	return tb.settle(t)
}

// login logs in through the login form and returns the page it leads to.
func (tb *tab) login(t *testing.T, email string) pageState {
	t.Helper()
	tb.open(t, "/login")
	if err := chromedp.Do(tb.ctx,
		chromedp.SendKeys(chromedp.CSS("#email"), email),
		chromedp.SendKeys(chromedp.CSS("#password"), "tailor"),
	); err != nil {
		t.Fatalf("%s: fill the login form: %v", tb.name, err)
	}
	return tb.click(t, "#login-submit")
}

func (tb *tab) cookies(t *testing.T) []*network.Cookie {
	t.Helper()
	res, err := chromedp.Call(tb.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{tb.site.URL}})
	if err != nil {
		t.Fatal(err)
	}
	return res.Cookies
}

func (tb *tab) screenshot(t *testing.T, dir, name string) {
	t.Helper()
	buf, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// hero is the experience and variant the page rendered in its hero.
func (ps pageState) hero() selection {
	if ps.Hero == nil {
		return selection{}
	}
	return selection{ps.Hero.Experience, ps.Hero.Variant}
}

func (ps pageState) has(id string) bool { return hasExperience(ps.State, id) }

func (ps pageState) sdkHas(id string) bool {
	return slices.ContainsFunc(ps.SDK.Experiences, func(s selection) bool { return s.ExperienceID == id })
}

// wantHero checks that the page rendered the baseline or the variant of
// the hero experiment, with that entry's content.
func (ps pageState) wantHero(t *testing.T) {
	t.Helper()
	if ps.Hero == nil || ps.Hero.Experience != "exp-hero" {
		t.Fatalf("%s: no hero experience rendered: %+v", ps.Path, ps.Hero)
	}
	entries := []string{"hero-classic", "hero-inprocess"}
	ctas := []string{"Start your free trial", "See it personalize in 5 minutes"}
	v := ps.Hero.Variant
	if v < 0 || v > 1 || ps.Hero.Entry != entries[v] || ps.Hero.Headline != heroEntries[entries[v]].Headline || ps.Hero.CTA != ctas[v] {
		t.Errorf("%s: hero %+v is neither the baseline nor the variant", ps.Path, *ps.Hero)
	}
}

// wantSDKAgrees checks that the SDK worked on the page's profile and
// reports the experiences and variants the server rendered.
func (ps pageState) wantSDKAgrees(t *testing.T) {
	t.Helper()
	if ps.SDK.Status != "ready" {
		t.Fatalf("%s: SDK status %q (%s), want ready", ps.Path, ps.SDK.Status, ps.SDK.Error)
	}
	if ps.SDK.ProfileID != ps.State.ProfileID {
		t.Errorf("%s: the SDK's profile %s is not the server's %s", ps.Path, ps.SDK.ProfileID, ps.State.ProfileID)
	}
	var server []selection
	for _, x := range ps.State.Experiences {
		server = append(server, selection{x.ExperienceID, x.VariantIndex})
	}
	key := func(a, b selection) int { return strings.Compare(a.ExperienceID, b.ExperienceID) }
	slices.SortFunc(server, key)
	sdk := slices.SortedFunc(slices.Values(ps.SDK.Experiences), key)
	if !slices.Equal(server, sdk) || !ps.SDK.Agrees {
		t.Errorf("%s: the SDK reports %v, the server rendered %v (agrees %v)", ps.Path, sdk, server, ps.SDK.Agrees)
	}
	if !strings.HasPrefix(ps.Panel, "Same as the server") {
		t.Errorf("%s: the panel says %q", ps.Path, ps.Panel)
	}
}

// wantSameVisitor checks that the page shows the profile and hero of want.
func (ps pageState) wantSameVisitor(t *testing.T, want pageState) {
	t.Helper()
	if ps.State.ProfileID != want.State.ProfileID || ps.hero() != want.hero() {
		t.Errorf("%s: profile %s hero %+v; want %s %+v", ps.Path, ps.State.ProfileID, ps.hero(), want.State.ProfileID, want.hero())
	}
	if ps.Hero != nil {
		ps.wantHero(t)
	}
}
