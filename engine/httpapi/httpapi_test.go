package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tailorhq/tailor/engine"
)

// fakeEngine records the last call and answers with err (or panics, or
// blocks until the context ends) so every status of the handler is
// reachable.
type fakeEngine struct {
	mu    sync.Mutex
	op    string
	id    string
	req   engine.Request
	calls int

	err   error
	panic bool
	block bool
	resp  *engine.Response // answer of Identify and Get instead of fakeResponse
}

func (f *fakeEngine) record(ctx context.Context, op, id string, req engine.Request) error {
	f.mu.Lock()
	f.op, f.id, f.req = op, id, req
	f.calls++
	f.mu.Unlock()
	if f.panic {
		panic("fake engine exploded")
	}
	if f.block {
		<-ctx.Done()
		return ctx.Err()
	}
	return f.err
}

func fakeResponse(id string) *engine.Response {
	if id == "" {
		id = "generated"
	}
	return &engine.Response{
		Profile:     &engine.Profile{ID: id, StableID: id, Audiences: []string{}, Traits: map[string]any{}},
		Experiences: []engine.SelectedExperience{},
		Changes:     []engine.Change{},
	}
}

func (f *fakeEngine) Identify(ctx context.Context, id string, req engine.Request) (*engine.Response, error) {
	if err := f.record(ctx, "identify", id, req); err != nil {
		return nil, err
	}
	if f.resp != nil {
		return f.resp, nil
	}
	return fakeResponse(id), nil
}

func (f *fakeEngine) IdentifyBatch(ctx context.Context, req engine.Request) ([]*engine.Response, error) {
	if err := f.record(ctx, "batch", "", req); err != nil {
		return nil, err
	}
	var out []*engine.Response
	seen := map[string]bool{}
	for _, ev := range req.Events {
		if !seen[ev.AnonymousID] {
			seen[ev.AnonymousID] = true
			out = append(out, fakeResponse(ev.AnonymousID))
		}
	}
	return out, nil
}

func (f *fakeEngine) Get(ctx context.Context, id string) (*engine.Response, error) {
	if err := f.record(ctx, "get", id, engine.Request{}); err != nil {
		return nil, err
	}
	return fakeResponse(id), nil
}

func (f *fakeEngine) Delete(ctx context.Context, id string) error {
	return f.record(ctx, "delete", id, engine.Request{})
}

func (f *fakeEngine) Import(ctx context.Context, req engine.Request) error {
	return f.record(ctx, "import", "", req)
}

const base = "/v2/organizations/org1/environments/main"

const pageBody = `{"events":[{"type":"page","anonymousId":"anon-1","messageId":"m1","timestamp":"2026-06-13T10:05:00Z","unknownField":{"x":1},"context":{"page":{"url":"https://example.com/a?x=1","path":"/a","query":{"x":"1"},"referrer":"","search":"?x=1"}}}],"options":{"features":["location"]}}`

// answer is a decoded envelope.
type answer struct {
	status int
	header http.Header
	Data   json.RawMessage `json:"data"`
	Error  *struct {
		Code string `json:"code"`
	} `json:"error"`
	Message string `json:"message"`
	raw     string
}

func do(t *testing.T, h http.Handler, method, target, body string, hdr map[string]string) answer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	r.RemoteAddr = "203.0.113.9:41000"
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	a := answer{status: w.Code, header: w.Header(), raw: w.Body.String()}
	if w.Code == http.StatusNoContent {
		return a
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s %s: Content-Type %q, body %q", method, target, ct, a.raw)
	}
	if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
		t.Fatalf("%s %s: answer is not an envelope: %v: %q", method, target, err, a.raw)
	}
	checkEnvelope(t, a)
	return a
}

// checkEnvelope asserts the envelope invariants of the package
// documentation ("Envelope and errors").
func checkEnvelope(t *testing.T, a answer) {
	t.Helper()
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(a.raw), &top); err != nil {
		t.Fatalf("not a JSON object: %q", a.raw)
	}
	for _, k := range []string{"data", "error", "message"} {
		if _, ok := top[k]; !ok {
			t.Fatalf("envelope lacks %q: %s", k, a.raw)
		}
	}
	if a.status == http.StatusOK {
		if string(top["error"]) != "null" || a.Message != "ok" {
			t.Fatalf("success envelope wrong: %s", a.raw)
		}
		return
	}
	if a.Error == nil || !strings.HasPrefix(a.Error.Code, "ERR_") || string(top["data"]) != "{}" || a.Message == "" {
		t.Fatalf("error envelope wrong: %s", a.raw)
	}
	if strings.Contains(a.raw, "goroutine") || strings.Contains(a.raw, ".go:") {
		t.Fatalf("answer leaks internals: %s", a.raw)
	}
}

func TestEndpoints(t *testing.T) {
	type check func(t *testing.T, f *fakeEngine, a answer)
	tests := []struct {
		name         string
		method, path string
		body         string
		hdr          map[string]string
		wantOp, id   string
		check        check
	}{
		{
			name: "create text/plain", method: "POST", path: base + "/profiles", body: pageBody,
			hdr: map[string]string{"Content-Type": "text/plain"}, wantOp: "identify", id: "",
			check: func(t *testing.T, f *fakeEngine, a answer) {
				if len(f.req.Events) != 1 || f.req.Events[0].Context.Page.Path != "/a" || f.req.Options.Features[0] != "location" {
					t.Errorf("engine got %+v", f.req)
				}
				var d engine.Response
				if err := json.Unmarshal(a.Data, &d); err != nil || d.Profile.ID != "generated" || d.Experiences == nil || d.Changes == nil {
					t.Errorf("data %s (%v)", a.Data, err)
				}
				if f.req.IP != netip.MustParseAddr("203.0.113.9") || f.req.Preflight || f.req.Locale != "" {
					t.Errorf("transport facts %v %v %q", f.req.IP, f.req.Preflight, f.req.Locale)
				}
			},
		},
		{
			name: "create application/json", method: "POST", path: base + "/profiles", body: pageBody,
			hdr: map[string]string{"Content-Type": "application/json"}, wantOp: "identify", id: "",
		},
		{
			name: "upsert with locale, preflight and X-Force-IP", method: "POST",
			path: base + "/profiles/p-1?locale=de-DE&type=preflight", body: pageBody,
			hdr: map[string]string{"X-Force-IP": "2001:db8::7"}, wantOp: "identify", id: "p-1",
			check: func(t *testing.T, f *fakeEngine, a answer) {
				if f.req.IP != netip.MustParseAddr("2001:db8::7") || !f.req.Preflight || f.req.Locale != "de-DE" {
					t.Errorf("transport facts %v %v %q", f.req.IP, f.req.Preflight, f.req.Locale)
				}
				if !strings.Contains(string(a.Data), `"id":"p-1"`) {
					t.Errorf("data %s", a.Data)
				}
			},
		},
		{name: "get", method: "GET", path: base + "/profiles/p-2", wantOp: "get", id: "p-2"},
		{
			name: "delete", method: "DELETE", path: base + "/profiles/p-3", wantOp: "delete", id: "p-3",
			check: func(t *testing.T, f *fakeEngine, a answer) {
				if string(a.Data) != "{}" {
					t.Errorf("data %s", a.Data)
				}
			},
		},
		{
			name: "events batch", method: "POST", path: base + "/events",
			body:   `{"events":[{"type":"track","event":"a","anonymousId":"x"},{"type":"track","event":"b","anonymousId":"y"},{"type":"track","event":"c","anonymousId":"x"}]}`,
			wantOp: "batch",
			check: func(t *testing.T, f *fakeEngine, a answer) {
				var d struct {
					Profiles []engine.Profile `json:"profiles"`
				}
				if err := json.Unmarshal(a.Data, &d); err != nil || len(d.Profiles) != 2 || d.Profiles[0].ID != "x" || d.Profiles[1].ID != "y" {
					t.Errorf("data %s (%v)", a.Data, err)
				}
			},
		},
		{
			name: "import", method: "POST", path: base + "/import/events", body: pageBody, wantOp: "import",
			check: func(t *testing.T, f *fakeEngine, a answer) {
				if string(a.Data) != "{}" || len(f.req.Events) != 1 {
					t.Errorf("data %s, req %+v", a.Data, f.req)
				}
			},
		},
		{
			name: "escaped id", method: "GET", path: base + "/profiles/a%2Fb", wantOp: "get", id: "a/b",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeEngine{}
			a := do(t, newHandler(f, Options{}), tc.method, tc.path, tc.body, tc.hdr)
			if a.status != http.StatusOK {
				t.Fatalf("status %d: %s", a.status, a.raw)
			}
			if f.op != tc.wantOp || f.id != tc.id || f.calls != 1 {
				t.Fatalf("engine call %q(%q) x%d, want %q(%q) x1", f.op, f.id, f.calls, tc.wantOp, tc.id)
			}
			if got := a.header.Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("Access-Control-Allow-Origin %q", got)
			}
			if tc.check != nil {
				tc.check(t, f, a)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	big := `{"events":[{"type":"page","name":"` + strings.Repeat("x", 2000) + `"}]}`
	tests := []struct {
		name         string
		method, path string
		body         string
		hdr          map[string]string
		opts         Options
		fake         *fakeEngine
		status       int
		code         string
		msg          string // substring of the message
		engineCalled bool
	}{
		{name: "malformed JSON", method: "POST", path: base + "/profiles", body: `{"events":[`,
			status: 400, code: "ERR_INVALID_DATA", msg: "malformed JSON"},
		{name: "not JSON at all", method: "POST", path: base + "/profiles/x", body: `hello`,
			status: 400, code: "ERR_INVALID_DATA", msg: "malformed JSON at byte"},
		{name: "empty body", method: "POST", path: base + "/events", body: ``,
			status: 400, code: "ERR_INVALID_DATA", msg: "body: empty"},
		{name: "trailing data", method: "POST", path: base + "/profiles", body: `{"events":[]} {}`,
			status: 400, code: "ERR_INVALID_DATA", msg: "body"},
		{name: "body is an array", method: "POST", path: base + "/profiles", body: `[1,2]`,
			status: 400, code: "ERR_INVALID_DATA", msg: "body: expected object, got JSON array"},
		{name: "events not an array", method: "POST", path: base + "/profiles", body: `{"events":"x"}`,
			status: 400, code: "ERR_INVALID_DATA", msg: "events: expected array, got JSON string"},
		{name: "event type a number", method: "POST", path: base + "/profiles", body: `{"events":[{"type":1}]}`,
			status: 400, code: "ERR_INVALID_DATA", msg: "events.type: expected string, got JSON number"},
		{name: "variantIndex fractional", method: "POST", path: base + "/profiles", body: `{"events":[{"type":"component","variantIndex":1.5}]}`,
			status: 400, code: "ERR_INVALID_DATA", msg: "events.variantIndex: expected integer"},
		{name: "features not strings", method: "POST", path: base + "/import/events", body: `{"events":[],"options":{"features":[true]}}`,
			status: 400, code: "ERR_INVALID_DATA", msg: "options.features: expected string, got JSON bool"},
		{name: "query not strings", method: "POST", path: base + "/profiles", body: `{"events":[{"type":"page","context":{"page":{"query":{"a":1}}}}]}`,
			status: 400, code: "ERR_INVALID_DATA", msg: "events.context.page.query"},
		{name: "bad X-Force-IP", method: "POST", path: base + "/profiles", body: pageBody,
			hdr: map[string]string{"X-Force-IP": "not-an-ip"}, status: 400, code: "ERR_INVALID_DATA", msg: "X-Force-IP"},
		{name: "body over limit", method: "POST", path: base + "/profiles", body: big, opts: Options{MaxBodyBytes: 1024},
			status: 413, code: "ERR_PAYLOAD_TOO_LARGE", msg: "larger than 1024 bytes"},
		{name: "engine input error names the field", method: "POST", path: base + "/profiles", body: pageBody,
			fake:   &fakeEngine{err: fmt.Errorf("wrapped: %w", &engine.InputError{Field: "events[0].timestamp", Reason: "not ISO 8601"})},
			status: 400, code: "ERR_INVALID_DATA", msg: "events[0].timestamp: not ISO 8601", engineCalled: true},
		{name: "profile not found", method: "GET", path: base + "/profiles/nope", fake: &fakeEngine{err: engine.ErrNotFound},
			status: 404, code: "ERR_PROFILE_NOT_FOUND", engineCalled: true},
		{name: "delete not found", method: "DELETE", path: base + "/profiles/nope", fake: &fakeEngine{err: engine.ErrNotFound},
			status: 404, code: "ERR_PROFILE_NOT_FOUND", engineCalled: true},
		{name: "overload", method: "POST", path: base + "/profiles/hot", body: pageBody, fake: &fakeEngine{err: engine.ErrOverload},
			status: 429, code: "ERR_PROFILE_OVERLOAD", engineCalled: true},
		{name: "closed", method: "POST", path: base + "/events", body: pageBody, fake: &fakeEngine{err: engine.ErrClosed},
			status: 503, code: "ERR_SERVICE_UNAVAILABLE", engineCalled: true},
		{name: "queue full", method: "POST", path: base + "/import/events", body: pageBody, fake: &fakeEngine{err: engine.ErrQueueFull},
			status: 503, code: "ERR_QUEUE_FULL", engineCalled: true},
		{name: "timeout", method: "GET", path: base + "/profiles/slow", opts: Options{Timeout: 20 * time.Millisecond},
			fake: &fakeEngine{block: true}, status: 503, code: "ERR_SERVICE_UNAVAILABLE", msg: "timed out", engineCalled: true},
		{name: "internal error is not shown", method: "POST", path: base + "/profiles", body: pageBody,
			fake:   &fakeEngine{err: errors.New("disk on fire at /var/lib/secret")},
			status: 500, code: "ERR_INTERNAL_SERVER_ERROR", msg: "internal server error", engineCalled: true},
		{name: "unencodable answer", method: "POST", path: base + "/profiles", body: pageBody,
			fake:   &fakeEngine{resp: &engine.Response{Profile: &engine.Profile{Random: math.NaN()}}},
			status: 500, code: "ERR_INTERNAL_SERVER_ERROR", msg: "internal server error", engineCalled: true},
		{name: "panic is recovered", method: "POST", path: base + "/profiles", body: pageBody, fake: &fakeEngine{panic: true},
			status: 500, code: "ERR_INTERNAL_SERVER_ERROR", msg: "internal server error", engineCalled: true},
		{name: "org not served", method: "GET", path: "/v2/organizations/other/environments/main/profiles/x",
			opts: Options{Org: "org1", Env: "main"}, status: 404, code: "ERR_NAMESPACE_MISMATCH", msg: `organization "other"`},
		{name: "env not served", method: "POST", path: "/v2/organizations/org1/environments/dev/profiles", body: pageBody,
			opts: Options{Org: "org1", Env: "main"}, status: 404, code: "ERR_NAMESPACE_MISMATCH", msg: `environment "dev"`},
		{name: "unknown endpoint", method: "GET", path: base + "/nothing", status: 404, code: "ERR_NOT_FOUND"},
		{name: "outside the API", method: "GET", path: "/", status: 404, code: "ERR_NOT_FOUND"},
		{name: "create without body on GET", method: "GET", path: base + "/profiles", status: 405, code: "ERR_METHOD_NOT_ALLOWED"},
		{name: "wrong method", method: "PUT", path: base + "/profiles/x", body: pageBody, status: 405, code: "ERR_METHOD_NOT_ALLOWED", msg: "GET, POST, DELETE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.fake
			if f == nil {
				f = &fakeEngine{}
			}
			a := do(t, newHandler(f, tc.opts), tc.method, tc.path, tc.body, tc.hdr)
			if a.status != tc.status || a.Error == nil || a.Error.Code != tc.code {
				t.Fatalf("got %d %s, want %d %s", a.status, a.raw, tc.status, tc.code)
			}
			if !strings.Contains(a.Message, tc.msg) {
				t.Errorf("message %q lacks %q", a.Message, tc.msg)
			}
			if strings.Contains(a.raw, "disk on fire") || strings.Contains(a.raw, "exploded") {
				t.Errorf("internal detail leaked: %s", a.raw)
			}
			if (f.calls > 0) != tc.engineCalled {
				t.Errorf("engine called %d times, want called=%v", f.calls, tc.engineCalled)
			}
			if tc.status == 503 && a.header.Get("Retry-After") == "" {
				t.Errorf("503 without Retry-After")
			}
			if tc.status == 405 && !strings.Contains(a.header.Get("Allow"), "POST") {
				t.Errorf("405 Allow %q", a.header.Get("Allow"))
			}
		})
	}
}

func TestCORS(t *testing.T) {
	tests := []struct {
		name       string
		origins    []string
		method     string
		origin     string
		wantStatus int
		wantACAO   string
	}{
		{"preflight any origin", nil, "OPTIONS", "https://shop.example", 204, "*"},
		{"preflight star in list", []string{"https://a.example", "*"}, "OPTIONS", "https://shop.example", 204, "*"},
		{"preflight allowed", []string{"https://shop.example"}, "OPTIONS", "https://shop.example", 204, "https://shop.example"},
		{"preflight refused", []string{"https://shop.example"}, "OPTIONS", "https://evil.example", 204, ""},
		{"simple request allowed", []string{"https://shop.example"}, "GET", "https://shop.example", 200, "https://shop.example"},
		{"simple request refused", []string{"https://shop.example"}, "GET", "https://evil.example", 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeEngine{}
			a := do(t, newHandler(f, Options{AllowedOrigins: tc.origins}), tc.method, base+"/profiles/x", "",
				map[string]string{"Origin": tc.origin, "Access-Control-Request-Method": "POST"})
			if a.status != tc.wantStatus {
				t.Fatalf("status %d: %s", a.status, a.raw)
			}
			if got := a.header.Get("Access-Control-Allow-Origin"); got != tc.wantACAO {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", got, tc.wantACAO)
			}
			if tc.wantACAO != "*" && !strings.Contains(a.header.Get("Vary"), "Origin") {
				t.Errorf("Vary %q lacks Origin", a.header.Get("Vary"))
			}
			if tc.method == "OPTIONS" {
				if f.calls != 0 {
					t.Errorf("preflight reached the engine")
				}
				if h := a.header.Get("Access-Control-Allow-Headers"); !strings.Contains(h, "Content-Type") || !strings.Contains(h, "X-Force-IP") {
					t.Errorf("Access-Control-Allow-Headers %q", h)
				}
				if m := a.header.Get("Access-Control-Allow-Methods"); !strings.Contains(m, "DELETE") {
					t.Errorf("Access-Control-Allow-Methods %q", m)
				}
			}
		})
	}
}

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	tests := []struct {
		name    string
		remote  string
		xff     []string
		force   string
		trusted []netip.Prefix
		want    string // "" = zero Addr
		wantErr bool
	}{
		{name: "peer v4", remote: "198.51.100.1:5000", want: "198.51.100.1"},
		{name: "peer v6", remote: "[2001:db8::1]:5000", want: "2001:db8::1"},
		{name: "peer v4-mapped is unmapped", remote: "[::ffff:198.51.100.1]:5000", want: "198.51.100.1"},
		{name: "peer with zone", remote: "[fe80::1%eth0]:5000", want: "fe80::1"},
		{name: "unparsable peer", remote: "pipe", want: ""},
		{name: "xff ignored without trusted proxies", remote: "10.0.0.1:1", xff: []string{"1.2.3.4"}, want: "10.0.0.1"},
		{name: "xff ignored from untrusted peer", remote: "198.51.100.1:1", xff: []string{"1.2.3.4"}, trusted: trusted, want: "198.51.100.1"},
		{name: "xff from trusted peer", remote: "10.0.0.1:1", xff: []string{"1.2.3.4"}, trusted: trusted, want: "1.2.3.4"},
		{name: "right-most untrusted wins over spoofed left", remote: "10.0.0.1:1", xff: []string{"6.6.6.6, 1.2.3.4, 10.0.0.2"}, trusted: trusted, want: "1.2.3.4"},
		{name: "several headers read as one list", remote: "10.0.0.1:1", xff: []string{"6.6.6.6", "1.2.3.4, 10.9.9.9"}, trusted: trusted, want: "1.2.3.4"},
		{name: "all trusted takes left-most", remote: "10.0.0.1:1", xff: []string{"10.1.1.1, 10.2.2.2"}, trusted: trusted, want: "10.1.1.1"},
		{name: "garbage stops the walk at the last trusted hop", remote: "10.0.0.1:1", xff: []string{"1.2.3.4, bogus, 10.2.2.2"}, trusted: trusted, want: "10.2.2.2"},
		{name: "xff entries with ports", remote: "[fd00::1]:1", xff: []string{"[2001:db8::5]:443, 1.2.3.4:80"}, trusted: trusted, want: "1.2.3.4"},
		{name: "xff v6 bracketed", remote: "[fd00::1]:1", xff: []string{"[2001:db8::5]"}, trusted: trusted, want: "2001:db8::5"},
		{name: "empty xff uses the peer", remote: "10.0.0.1:1", xff: []string{" , "}, trusted: trusted, want: "10.0.0.1"},
		{name: "X-Force-IP wins", remote: "10.0.0.1:1", xff: []string{"1.2.3.4"}, force: "8.8.8.8", trusted: trusted, want: "8.8.8.8"},
		{name: "X-Force-IP v6", remote: "10.0.0.1:1", force: " 2001:db8::9 ", want: "2001:db8::9"},
		{name: "X-Force-IP invalid", remote: "10.0.0.1:1", force: "999.1.1.1", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if tc.force != "" {
				r.Header.Set("X-Force-IP", tc.force)
			}
			got, err := clientIP(r, tc.trusted)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, wantErr %v", err, tc.wantErr)
			}
			want := netip.Addr{}
			if tc.want != "" {
				want = netip.MustParseAddr(tc.want)
			}
			if got != want {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

// TestOptionsAreCopied checks that New does not keep the caller's slices.
func TestOptionsAreCopied(t *testing.T) {
	origins := []string{"https://a.example"}
	h := newHandler(&fakeEngine{}, Options{AllowedOrigins: origins})
	origins[0] = "https://evil.example"
	a := do(t, h, "GET", base+"/profiles/x", "", map[string]string{"Origin": "https://a.example"})
	if got := a.header.Get("Access-Control-Allow-Origin"); got != "https://a.example" {
		t.Errorf("handler saw the caller's later change: %q", got)
	}
}
