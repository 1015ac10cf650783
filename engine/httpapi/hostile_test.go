package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/engine"
	"github.com/tailorhq/tailor/rules"
)

func eventsBody(evs ...string) string { return `{"events":[` + strings.Join(evs, ",") + `]}` }

func nestedJSON(depth int) string {
	return strings.Repeat(`{"k":`, depth) + "1" + strings.Repeat("}", depth)
}

// TestHostileRequests sends what an attacker or a broken client would
// through the handler over a real engine: each request gets a 4xx with
// the error envelope, nothing is written, and the server keeps serving.
func TestHostileRequests(t *testing.T) {
	eng := openTestEngine(t, "")
	h := New(eng, Options{})
	seed := do(t, h, "POST", base+"/profiles/seed", `{"events":[{"type":"identify","userId":"u-1","traits":{"plan":"pro"}}]}`, nil)
	if seed.status != 200 {
		t.Fatalf("seed: %s", seed.raw)
	}
	export := func() string {
		var b bytes.Buffer
		if err := eng.Export(context.Background(), &b); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	before := export()

	many := make([]string, 10_000)
	for i := range many {
		many[i] = `{"type":"page"}`
	}
	future := time.Now().AddDate(10, 0, 0).UTC().Format(time.RFC3339)
	tests := []struct {
		name, method, path, body string
		status                   int
	}{
		{"oversized body", "POST", "/profiles/p", `{"events":[{"type":"page","name":"` + strings.Repeat("x", 2<<20) + `"}]}`, 413},
		{"traits nested 10,000 deep", "POST", "/profiles/p", eventsBody(`{"type":"identify","traits":` + nestedJSON(10_000) + `}`), 400},
		{"traits nested 100,000 deep", "POST", "/profiles/p", eventsBody(`{"type":"identify","traits":` + nestedJSON(100_000) + `}`), 400},
		{"traits nested 9 deep", "POST", "/profiles/p", eventsBody(`{"type":"identify","traits":` + nestedJSON(9) + `}`), 400},
		{"huge trait key", "POST", "/profiles/p", eventsBody(`{"type":"identify","traits":{"` + strings.Repeat("k", 100_000) + `":1}}`), 400},
		{"10,000 events", "POST", "/profiles/p", eventsBody(many...), 400},
		{"10,000 events in a batch", "POST", "/events", strings.ReplaceAll(eventsBody(many...), `"page"}`, `"page","anonymousId":"a"}`), 400},
		{"invalid UTF-8 in a trait", "POST", "/profiles/p", eventsBody(`{"type":"identify","traits":{"k":"a` + "\xff\xfe" + `"}}`), 400},
		{"invalid UTF-8 in a trait key", "POST", "/profiles/p", eventsBody(`{"type":"identify","traits":{"` + "\xc3\x28" + `":1}}`), 400},
		{"NaN literal", "POST", "/profiles/p", eventsBody(`{"type":"identify","traits":{"k":NaN}}`), 400},
		{"Infinity literal", "POST", "/profiles/p", eventsBody(`{"type":"component","componentId":"c","viewDurationMs":Infinity}`), 400},
		{"number overflowing float64", "POST", "/profiles/p", eventsBody(`{"type":"identify","traits":{"k":1e999}}`), 400},
		{"latitude overflowing", "POST", "/profiles/p", eventsBody(`{"type":"page","context":{"location":{"coordinates":{"latitude":1e400,"longitude":0}}}}`), 400},
		{"timestamp in 1970", "POST", "/profiles/p", eventsBody(`{"type":"page","timestamp":"1970-01-01T00:00:00Z"}`), 400},
		{"timestamp in year 0", "POST", "/profiles/p", eventsBody(`{"type":"page","timestamp":"0000-01-01T00:00:00Z"}`), 400},
		{"timestamp in ten years", "POST", "/profiles/p", eventsBody(`{"type":"page","timestamp":"` + future + `"}`), 400},
		{"timestamp with a year 99999", "POST", "/profiles/p", eventsBody(`{"type":"page","timestamp":"99999-01-01T00:00:00Z"}`), 400},
		{"id with an escaped slash", "POST", "/profiles/a%2Fb", eventsBody(`{"type":"page"}`), 400},
		{"id with an escaped dot-dot path", "POST", "/profiles/..%2F..%2Fetc%2Fpasswd", eventsBody(`{"type":"page"}`), 404},
		{"id that is a dot-dot path", "POST", "/profiles/../../x", eventsBody(`{"type":"page"}`), 404},
		{"id with a backslash", "POST", "/profiles/a%5Cb", eventsBody(`{"type":"page"}`), 400},
		{"id with NUL", "POST", "/profiles/a%00b", eventsBody(`{"type":"page"}`), 400},
		{"id with a newline", "POST", "/profiles/a%0Ab", eventsBody(`{"type":"page"}`), 400},
		{"id of invalid UTF-8", "POST", "/profiles/a%FFb", eventsBody(`{"type":"page"}`), 400},
		{"get id with NUL", "GET", "/profiles/a%00b", "", 400},
		{"delete id with a slash", "DELETE", "/profiles/a%2Fb", "", 400},
		{"batch anonymousId with a slash", "POST", "/events", eventsBody(`{"type":"page","anonymousId":"../x"}`), 400},
		{"import anonymousId with control characters", "POST", "/import/events", eventsBody(`{"type":"page","anonymousId":"a\u0007"}`), 400},
		{"events not an array", "POST", "/profiles/p", `{"events":{"type":"page"}}`, 400},
		{"trailing garbage", "POST", "/profiles/p", eventsBody(`{"type":"page"}`) + `{}`, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := do(t, h, tt.method, base+tt.path, tt.body, nil)
			if a.status != tt.status {
				t.Errorf("status %d, want %d: %.300s", a.status, tt.status, a.raw)
			}
			if a.Error == nil || !strings.HasPrefix(a.Error.Code, "ERR_") || a.Message == "" || string(a.Data) != "{}" {
				t.Errorf("not the error envelope: %.300s", a.raw)
			}
			if len(a.raw) > 2048 {
				t.Errorf("answer of %d bytes echoes the input", len(a.raw))
			}
		})
	}
	if after := export(); after != before {
		t.Errorf("hostile requests changed the store:\n%s\nwas\n%s", after, before)
	}
	if eng.ImportQueueLen() != 0 {
		t.Errorf("%d hostile batches queued", eng.ImportQueueLen())
	}
	a := do(t, h, "POST", base+"/profiles/seed", eventsBody(`{"type":"page"}`), nil)
	if a.status != 200 || profileOf(t, a).Traits["plan"] != "pro" {
		t.Errorf("serving after the hostile requests: %s", a.raw)
	}
}

// TestHostileRulesServe serves with rules that fail at run time: every
// request still gets 200 with the failing audiences not matched.
func TestHostileRulesServe(t *testing.T) {
	set, err := rules.Parse("hostile.yaml", []byte(`audiences:
  - id: div
    when: 'int(traits.n) % int(traits.zero) == 0'
  - id: window
    when: 'hasEvent("x", traits.plan)'
  - id: compare
    when: 'traits.plan > 3'
  - id: fine
    when: 'true'
`))
	if err != nil {
		t.Fatal(err)
	}
	eng := openTestEngine(t, "", engine.Options{Rules: set})
	h := New(eng, Options{})
	for i := range 5 {
		a := do(t, h, "POST", base+fmt.Sprintf("/profiles/p%d", i), eventsBody(`{"type":"identify","traits":{"n":1,"zero":0,"plan":"pro"}}`), nil)
		if a.status != 200 {
			t.Fatalf("request %d: %s", i, a.raw)
		}
		var d struct {
			Profile struct{ Audiences []string } `json:"profile"`
		}
		if err := json.Unmarshal(a.Data, &d); err != nil || strings.Join(d.Profile.Audiences, ",") != "fine" {
			t.Errorf("audiences %v (%v), want only fine", d.Profile.Audiences, err)
		}
	}
}
