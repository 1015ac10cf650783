package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/engine"
	"github.com/tailorhq/tailor/rules"
)

// openTestEngine opens a real engine in a temporary directory with the
// rules file at rulesPath (none when empty) and opts (at most one), closed
// at cleanup.
func openTestEngine(t testing.TB, rulesPath string, opts ...engine.Options) *engine.Engine {
	t.Helper()
	var o engine.Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if rulesPath != "" {
		var err error
		if o.Rules, err = rules.Load(rulesPath); err != nil {
			t.Fatal(err)
		}
	}
	eng, err := engine.Open(t.TempDir(), &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng
}

func trackBody(anon, event string, n int) string {
	var evs []string
	for i := range n {
		evs = append(evs, fmt.Sprintf(`{"type":"track","event":%q,"anonymousId":%q,"timestamp":"2026-06-13T10:%02d:00Z"}`, event, anon, i%60))
	}
	return `{"events":[` + strings.Join(evs, ",") + `]}`
}

func profileOf(t *testing.T, a answer) engine.Profile {
	t.Helper()
	var d engine.Response
	if err := json.Unmarshal(a.Data, &d); err != nil || d.Profile == nil {
		t.Fatalf("data is not a Response: %s", a.Data)
	}
	return *d.Profile
}

// TestWithEngine runs every endpoint against the real engine.
func TestWithEngine(t *testing.T) {
	eng := openTestEngine(t, "testdata/rules.yaml")
	h := New(eng, Options{})

	// create
	a := do(t, h, "POST", base+"/profiles?locale=fr", strings.Replace(pageBody, `"context":{`, `"context":{"locale":"de-DE",`, 1), nil)
	if a.status != 200 {
		t.Fatalf("create: %s", a.raw)
	}
	created := profileOf(t, a)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(created.ID) {
		t.Errorf("created id %q", created.ID)
	}
	if !slices.Contains(created.Audiences, "audience-german") {
		t.Errorf("context.locale did not reach the rules: %v", created.Audiences)
	}

	// get, upsert, delete
	if a := do(t, h, "GET", base+"/profiles/"+created.ID, "", nil); a.status != 200 || profileOf(t, a).ID != created.ID {
		t.Fatalf("get: %s", a.raw)
	}
	a = do(t, h, "POST", base+"/profiles/known-1", `{"events":[{"type":"identify","userId":"u-1","traits":{"plan":"pro"}}]}`, nil)
	if a.status != 200 || profileOf(t, a).ID != "known-1" || !slices.Contains(profileOf(t, a).Audiences, "audience-pro-plan") {
		t.Fatalf("upsert: %s", a.raw)
	}
	if a := do(t, h, "DELETE", base+"/profiles/known-1", "", nil); a.status != 200 {
		t.Fatalf("delete: %s", a.raw)
	}
	if a := do(t, h, "GET", base+"/profiles/known-1", "", nil); a.status != 404 || a.Error.Code != "ERR_PROFILE_NOT_FOUND" {
		t.Fatalf("get after delete: %s", a.raw)
	}

	// preflight persists nothing
	a = do(t, h, "POST", base+"/profiles/pre-1?type=preflight", trackBody("pre-1", "purchase", 2), nil)
	if a.status != 200 || !slices.Contains(profileOf(t, a).Audiences, "audience-buyers") {
		t.Fatalf("preflight: %s", a.raw)
	}
	if a := do(t, h, "GET", base+"/profiles/pre-1", "", nil); a.status != 404 {
		t.Fatalf("preflight wrote the profile: %s", a.raw)
	}

	// synchronous batch
	body := `{"events":[
		{"type":"track","event":"purchase","anonymousId":"b-2","timestamp":"2026-06-13T10:00:00Z"},
		{"type":"page","anonymousId":"b-1","timestamp":"2026-06-13T10:00:00Z"},
		{"type":"track","event":"purchase","anonymousId":"b-2","timestamp":"2026-06-13T10:01:00Z"}]}`
	a = do(t, h, "POST", base+"/events", body, nil)
	var batch struct {
		Profiles []engine.Profile `json:"profiles"`
	}
	if a.status != 200 || json.Unmarshal(a.Data, &batch) != nil || len(batch.Profiles) != 2 ||
		batch.Profiles[0].ID != "b-2" || batch.Profiles[1].ID != "b-1" || !slices.Contains(batch.Profiles[0].Audiences, "audience-buyers") {
		t.Fatalf("events: %s", a.raw)
	}

	// asynchronous import: answered at once, applied in the background
	if a := do(t, h, "POST", base+"/import/events", trackBody("imp-1", "purchase", 3), nil); a.status != 200 || string(a.Data) != "{}" {
		t.Fatalf("import: %s", a.raw)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		a := do(t, h, "GET", base+"/profiles/imp-1", "", nil)
		if a.status == 200 && slices.Contains(profileOf(t, a).Audiences, "audience-buyers") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("import never applied: %s", a.raw)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEngineValidationErrors checks that the engine's semantic validation
// reaches the client as 400 naming the field, and that nothing is written.
func TestEngineValidationErrors(t *testing.T) {
	eng := openTestEngine(t, "")
	h := New(eng, Options{})
	many := func(n int, f func(i int) string) string {
		var evs []string
		for i := range n {
			evs = append(evs, f(i))
		}
		return `{"events":[` + strings.Join(evs, ",") + `]}`
	}
	tests := []struct {
		name, method, path, body, field string
	}{
		{"no events", "POST", base + "/profiles", `{"events":[]}`, "events"},
		{"unknown type", "POST", base + "/profiles/v-1", `{"events":[{"type":"page"},{"type":"teleport"}]}`, "events[1].type"},
		{"bad timestamp", "POST", base + "/profiles/v-1", `{"events":[{"type":"page","timestamp":"yesterday"}]}`, "events[0].timestamp"},
		{"track without event", "POST", base + "/profiles/v-1", `{"events":[{"type":"track"}]}`, "events[0].event"},
		{"too many events", "POST", base + "/profiles/v-1", many(201, func(int) string { return `{"type":"page"}` }), "events"},
		{"batch event without anonymousId", "POST", base + "/events", `{"events":[{"type":"page","anonymousId":"a"},{"type":"page"}]}`, "events[1].anonymousId"},
		{"batch over 50 profiles", "POST", base + "/events", many(51, func(i int) string { return fmt.Sprintf(`{"type":"page","anonymousId":"v-%d"}`, i) }), "events[50].anonymousId"},
		{"batch over 50 identify", "POST", base + "/events", many(51, func(int) string { return `{"type":"identify","anonymousId":"v-1"}` }), "events"},
		{"import without anonymousId", "POST", base + "/import/events", `{"events":[{"type":"page"}]}`, "events[0].anonymousId"},
		{"import preflight", "POST", base + "/import/events?type=preflight", `{"events":[{"type":"page","anonymousId":"v-1"}]}`, "type"},
		{"id too long", "POST", base + "/profiles/" + strings.Repeat("x", 300), `{"events":[{"type":"page"}]}`, ""},
		{"page with 120 query keys of 8 KB", "POST", base + "/profiles/v-1", `{"events":[{"type":"page","context":{"page":{"path":"/","query":{` +
			strings.Join(func() []string {
				var q []string
				for i := range 120 {
					q = append(q, fmt.Sprintf(`"k%d":%q`, i, strings.Repeat("v", 8000)))
				}
				return q
			}(), ",") + `}}}}]}`, "events[0].context.page.query"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := do(t, h, tc.method, tc.path, tc.body, nil)
			if a.status != 400 || a.Error.Code != "ERR_INVALID_DATA" || !strings.HasPrefix(a.Message, tc.field) {
				t.Fatalf("got %d %s, want 400 naming %q", a.status, a.raw, tc.field)
			}
			if a := do(t, h, "GET", base+"/profiles/v-1", "", nil); a.status != 404 {
				t.Fatalf("an invalid request wrote a profile: %s", a.raw)
			}
		})
	}
	if n := eng.ImportQueueLen(); n != 0 {
		t.Errorf("invalid imports queued %d batches", n)
	}
}

func TestClosedEngine(t *testing.T) {
	eng := openTestEngine(t, "")
	h := New(eng, Options{})
	eng.Close()
	for _, c := range []struct{ method, path, body string }{
		{"POST", base + "/profiles", pageBody},
		{"GET", base + "/profiles/x", ""},
		{"POST", base + "/import/events", trackBody("a", "x", 1)},
	} {
		if a := do(t, h, c.method, c.path, c.body, nil); a.status != http.StatusServiceUnavailable || a.Error.Code != "ERR_SERVICE_UNAVAILABLE" {
			t.Errorf("%s %s after Close: %s", c.method, c.path, a.raw)
		}
	}
}
