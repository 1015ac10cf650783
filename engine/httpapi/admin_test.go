package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/tailorhq/tailor/engine"
)

func (f *fakeEngine) Explain(ctx context.Context, id string, ov *engine.Overrides) (*engine.Explanation, error) {
	if err := f.record(ctx, "explain", id, engine.Request{Overrides: ov}); err != nil {
		return nil, err
	}
	return &engine.Explanation{ProfileID: id, Audiences: []engine.AudienceExplanation{}, Experiences: []engine.ExperienceExplanation{}}, nil
}

const adminToken = "s3cret-admin-token-for-tests"

var bearer = map[string]string{"Authorization": "Bearer " + adminToken}

// TestAdminOff: without an AdminToken the API is the Experience API: no
// explain endpoint, override parameters ignored.
func TestAdminOff(t *testing.T) {
	f := &fakeEngine{}
	h := newHandler(f, Options{})
	if a := do(t, h, "GET", base+"/profiles/p1/explain", "", bearer); a.status != http.StatusNotFound || a.Error.Code != "ERR_NOT_FOUND" {
		t.Errorf("explain: %d %s", a.status, a.raw)
	}
	a := do(t, h, "POST", base+"/profiles/p1?force-variant=exp:1", pageBody, map[string]string{HeaderForceAudience: "a:in"})
	if a.status != http.StatusOK || f.req.Overrides != nil {
		t.Errorf("overrides without admin features: %d %+v", a.status, f.req.Overrides)
	}
	if a := do(t, h, "OPTIONS", base+"/profiles", "", map[string]string{"Origin": "https://x.test"}); strings.Contains(a.header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight allows Authorization: %v", a.header)
	}
}

// TestAdminToken: with an AdminToken, explain and overrides need it; a
// missing or wrong token gets 401 and nothing runs.
func TestAdminToken(t *testing.T) {
	f := &fakeEngine{}
	h := newHandler(f, Options{AdminToken: adminToken})
	for _, tc := range []struct {
		name, method, target, body string
		hdr                        map[string]string
	}{
		{"explain, no token", "GET", base + "/profiles/p1/explain", "", nil},
		{"explain, wrong token", "GET", base + "/profiles/p1/explain", "", map[string]string{"Authorization": "Bearer nope"}},
		{"explain, token prefix", "GET", base + "/profiles/p1/explain", "", map[string]string{"Authorization": "Bearer " + adminToken[:10]}},
		{"explain, basic auth", "GET", base + "/profiles/p1/explain", "", map[string]string{"Authorization": "Basic " + adminToken}},
		{"override query, no token", "POST", base + "/profiles/p1?force-variant=exp:1", pageBody, nil},
		{"override header, no token", "POST", base + "/profiles", pageBody, map[string]string{HeaderForceAudience: "a:out"}},
		{"override, bad body, no token", "POST", base + "/events?force-audience=a:in", "{", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.calls
			a := do(t, h, tc.method, tc.target, tc.body, tc.hdr)
			if a.status != http.StatusUnauthorized || a.Error.Code != "ERR_UNAUTHORIZED" || !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("got %d %v %s", a.status, a.header, a.raw)
			}
			if f.calls != before {
				t.Error("the engine was called")
			}
		})
	}
	// Requests without overrides need no token.
	if a := do(t, h, "POST", base+"/profiles/p1", pageBody, nil); a.status != http.StatusOK || f.req.Overrides != nil {
		t.Errorf("plain request: %d %s", a.status, a.raw)
	}
	a := do(t, h, "GET", base+"/profiles/p1/explain?force-variant=exp-a:2&force-audience=aud:out", "", bearer)
	if a.status != http.StatusOK || f.op != "explain" || f.id != "p1" {
		t.Fatalf("explain: %d %s", a.status, a.raw)
	}
	if want := (&engine.Overrides{Variants: map[string]int{"exp-a": 2}, Audiences: map[string]bool{"aud": false}}); !reflect.DeepEqual(f.req.Overrides, want) {
		t.Errorf("explain overrides %+v", f.req.Overrides)
	}
	hdr := map[string]string{"Authorization": "Bearer " + adminToken, HeaderForceVariant: "exp:b:1, exp-c:0", HeaderForceAudience: "pro:in"}
	a = do(t, h, "POST", base+"/profiles/p1?force-variant=exp-a:1&force-variant=exp-d:3&force-audience=x:true,y:false", pageBody, hdr)
	want := &engine.Overrides{
		Variants:  map[string]int{"exp-a": 1, "exp-d": 3, "exp:b": 1, "exp-c": 0},
		Audiences: map[string]bool{"x": true, "y": false, "pro": true},
	}
	if a.status != http.StatusOK || !reflect.DeepEqual(f.req.Overrides, want) {
		t.Errorf("upsert overrides: %d %+v", a.status, f.req.Overrides)
	}
	if a := do(t, h, "POST", base+"/events?force-audience=pro:in", `{"events":[{"type":"page","anonymousId":"a1"}]}`, bearer); a.status != http.StatusOK || f.op != "batch" || !f.req.Overrides.Audiences["pro"] {
		t.Errorf("batch overrides: %d %+v", a.status, f.req.Overrides)
	}

	// Bad overrides and endpoints that take none: 400, nothing runs.
	for _, tc := range []struct{ method, target, body, words string }{
		{"POST", base + "/profiles/p1?force-variant=exp", pageBody, "force-variant"},
		{"POST", base + "/profiles/p1?force-variant=exp:one", pageBody, "force-variant"},
		{"POST", base + "/profiles/p1?force-audience=aud:maybe", pageBody, "force-audience"},
		{"POST", base + "/profiles/p1?force-audience=:in", pageBody, "force-audience"},
		{"GET", base + "/profiles/p1?force-variant=exp:1", "", "not accepted"},
		{"POST", base + "/import/events?force-variant=exp:1", `{"events":[{"type":"page","anonymousId":"a1"}]}`, "not accepted"},
		{"DELETE", base + "/profiles/p1?force-variant=exp:1", "", "not accepted"},
	} {
		before := f.calls
		a := do(t, h, tc.method, tc.target, tc.body, bearer)
		if a.status != http.StatusBadRequest || a.Error.Code != "ERR_INVALID_DATA" || !strings.Contains(a.Message, tc.words) || f.calls != before {
			t.Errorf("%s %s: %d %s", tc.method, tc.target, a.status, a.raw)
		}
	}
	pre := do(t, h, "OPTIONS", base+"/profiles", "", map[string]string{"Origin": "https://x.test"})
	if allow := pre.header.Get("Access-Control-Allow-Headers"); !strings.Contains(allow, "Authorization") || !strings.Contains(allow, HeaderForceVariant) {
		t.Errorf("preflight: %q", allow)
	}
}

// TestAdminWithEngine explains a real profile and forces a paused
// experience over HTTP.
func TestAdminWithEngine(t *testing.T) {
	eng := openTestEngine(t, "testdata/rules.yaml")
	h := New(eng, Options{AdminToken: adminToken, RedactTraits: []string{"plan"}})
	body := `{"events":[{"type":"identify","traits":{"plan":"free","email":"a@b.c"}}]}`
	if a := do(t, h, "POST", base+"/profiles/p1", body, nil); a.status != http.StatusOK {
		t.Fatalf("identify: %s", a.raw)
	}
	a := do(t, h, "GET", base+"/profiles/p1/explain", "", bearer)
	if a.status != http.StatusOK {
		t.Fatalf("explain: %s", a.raw)
	}
	var x struct {
		ProfileID string `json:"profileId"`
		Audiences []struct {
			ID           string `json:"id"`
			Matched      bool   `json:"matched"`
			FailedClause *struct {
				Expr  string `json:"expr"`
				Reads []struct {
					Expr  string `json:"expr"`
					Value any    `json:"value"`
					Error string `json:"error"`
				} `json:"reads"`
			} `json:"failedClause"`
		} `json:"audiences"`
		Experiences []struct {
			ID     string `json:"id"`
			In     bool   `json:"in"`
			Reason string `json:"reason"`
			Why    string `json:"why"`
		} `json:"experiences"`
	}
	if err := json.Unmarshal(a.Data, &x); err != nil {
		t.Fatal(err)
	}
	if x.ProfileID != "p1" || len(x.Audiences) != 5 || len(x.Experiences) != 4 {
		t.Fatalf("explanation %s", a.Data)
	}
	pro := x.Audiences[0]
	if pro.ID != "audience-pro-plan" || pro.Matched || pro.FailedClause == nil || pro.FailedClause.Expr != `traits.plan == "pro"` ||
		len(pro.FailedClause.Reads) != 1 || pro.FailedClause.Reads[0].Value != nil || pro.FailedClause.Reads[0].Error != "redacted" {
		t.Errorf("audience-pro-plan (plan redacted): %s", a.Data)
	}
	if strings.Contains(a.raw, `"free"`) {
		t.Errorf("a redacted trait leaked: %s", a.raw)
	}
	reasons := map[string]string{}
	for _, e := range x.Experiences {
		reasons[e.ID] = e.Reason
	}
	if want := map[string]string{"exp-hero-banner-test": "sticky", "exp-pro-plan-upsell": "audience", "exp-buyers": "audience", "exp-paused": "not-running"}; !reflect.DeepEqual(reasons, want) {
		t.Errorf("reasons %v, want %v", reasons, want)
	}
	if a := do(t, h, "GET", base+"/profiles/nobody/explain", "", bearer); a.status != http.StatusNotFound || a.Error.Code != "ERR_PROFILE_NOT_FOUND" {
		t.Errorf("unknown profile: %s", a.raw)
	}

	// Force the paused experience and the pro audience for one request.
	a = do(t, h, "POST", base+"/profiles/p1?force-variant=exp-paused:1&force-audience=audience-pro-plan:in", `{"events":[{"type":"page"}]}`, bearer)
	if a.status != http.StatusOK {
		t.Fatalf("forced: %s", a.raw)
	}
	var resp engine.Response
	if err := json.Unmarshal(a.Data, &resp); err != nil {
		t.Fatal(err)
	}
	got := map[string]any{}
	for _, c := range resp.Changes {
		got[c.Key] = c.Value
	}
	if got["show-chat"] != true || got["cta-color"] != "green" {
		t.Errorf("forced changes %v", got)
	}
	a = do(t, h, "POST", base+"/profiles/p1?force-variant=exp-nope:1", `{"events":[{"type":"page"}]}`, bearer)
	if a.status != http.StatusBadRequest || !strings.Contains(a.Message, `overrides.variants["exp-nope"]`) {
		t.Errorf("unknown experience: %s", a.raw)
	}
	// Nothing of the override stayed.
	a = do(t, h, "GET", base+"/profiles/p1", "", nil)
	if strings.Contains(a.raw, "show-chat") || strings.Contains(a.raw, "audience-pro-plan") {
		t.Errorf("override stayed: %s", a.raw)
	}
}
