package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/engine"
	"github.com/tailorhq/tailor/rules"
)

var testSecret = []byte("backend-secret")

// identifyBody is a request body with one identify event; hash, when
// set, is sent as traits.userHash next to the traits given as JSON.
func identifyBody(anon, userID, hash string, traits string) string {
	var t map[string]any
	if err := json.Unmarshal([]byte(traits), &t); err != nil {
		panic(err)
	}
	if hash != "" {
		t[engine.UserHashTrait] = hash
	}
	b, err := json.Marshal(map[string]any{"events": []any{map[string]any{
		"type": "identify", "anonymousId": anon, "userId": userID, "traits": t}}})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestIdentityVerification is the takeover attack through the API: with
// an IdentitySecret, identifying as a known user without the user's hash
// gets 403 ERR_IDENTITY_UNVERIFIED and changes nothing; with the hash the
// visitor is merged and the hash is not returned. The batch endpoint
// refuses the same way; the import endpoint queues the batch and the
// worker drops the unverified group.
func TestIdentityVerification(t *testing.T) {
	eng := openTestEngine(t, "", engine.Options{IdentitySecret: testSecret})
	h := New(eng, Options{})
	ctx := context.Background()
	victim := do(t, h, "POST", base+"/profiles/victim-profile", identifyBody("victim-profile", "victim", engine.UserHash(testSecret, "victim"), `{"email":"v@example.com"}`), nil)
	if victim.status != 200 {
		t.Fatalf("victim: %s", victim.raw)
	}
	do(t, h, "POST", base+"/profiles/attacker", `{"events":[{"type":"page"}]}`, nil)
	snapshot := func() string {
		var b strings.Builder
		for _, id := range []string{"victim-profile", "attacker"} {
			r, err := eng.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s %v %v\n", r.Profile.ID, r.Profile.Traits, r.Profile.Session.Count)
		}
		return b.String()
	}
	before := snapshot()

	for _, tt := range []struct{ name, path, body string }{
		{"upsert without hash", "/profiles/attacker", identifyBody("attacker", "victim", "", "{}")},
		{"upsert with a wrong hash", "/profiles/attacker", identifyBody("attacker", "victim", engine.UserHash([]byte("guess"), "victim"), "{}")},
		{"create without hash", "/profiles", identifyBody("x", "victim", "", "{}")},
		{"batch without hash", "/events", identifyBody("attacker", "victim", "", "{}")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := do(t, h, "POST", base+tt.path, tt.body, nil)
			if a.status != 403 || a.Error == nil || a.Error.Code != "ERR_IDENTITY_UNVERIFIED" || string(a.Data) != "{}" {
				t.Fatalf("answer %d %s, want 403 ERR_IDENTITY_UNVERIFIED in the error envelope", a.status, a.raw)
			}
			if after := snapshot(); after != before {
				t.Errorf("a refused takeover changed profiles:\n%s\nwas\n%s", after, before)
			}
		})
	}

	t.Run("import without hash is dropped by the worker", func(t *testing.T) {
		a := do(t, h, "POST", base+"/import/events", identifyBody("attacker", "victim", "", "{}"), nil)
		if a.status != 200 {
			t.Fatalf("import: %s", a.raw)
		}
		waitQueue(t, eng)
		if after := snapshot(); after != before {
			t.Errorf("an unverified import changed profiles:\n%s\nwas\n%s", after, before)
		}
	})

	t.Run("with the hash", func(t *testing.T) {
		a := do(t, h, "POST", base+"/profiles/attacker", identifyBody("attacker", "victim", engine.UserHash(testSecret, "victim"), `{"k":"v"}`), nil)
		if a.status != 200 {
			t.Fatalf("verified identify: %s", a.raw)
		}
		p := profileOf(t, a)
		if p.ID != "victim-profile" || p.Traits["k"] != "v" {
			t.Errorf("verified identify landed on %q with %v", p.ID, p.Traits)
		}
		if strings.Contains(a.raw, "userHash") {
			t.Errorf("userHash echoed: %s", a.raw)
		}
	})
}

func waitQueue(t *testing.T, eng *engine.Engine) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for eng.ImportQueueLen() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("import queue did not drain")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRedactTraits checks that redacted traits are stored and drive rules
// but never leave the handler, on every endpoint that returns profiles.
func TestRedactTraits(t *testing.T) {
	set, err := rules.Parse("r.yaml", []byte("audiences:\n  - id: vip\n    when: traits.score > 90\n"))
	if err != nil {
		t.Fatal(err)
	}
	eng := openTestEngine(t, "", engine.Options{Rules: set})
	h := New(eng, Options{RedactTraits: []string{"score", "internalId"}})
	body := `{"events":[{"type":"identify","anonymousId":"p1","traits":{"score":95,"internalId":"c-9","name":"Ann"}}]}`
	answers := map[string]answer{
		"upsert": do(t, h, "POST", base+"/profiles/p1", body, nil),
		"create": do(t, h, "POST", base+"/profiles", body, nil),
		"get":    do(t, h, "GET", base+"/profiles/p1", "", nil),
		"batch":  do(t, h, "POST", base+"/events", body, nil),
	}
	for name, a := range answers {
		if a.status != 200 {
			t.Fatalf("%s: %s", name, a.raw)
		}
		if strings.Contains(a.raw, "score") || strings.Contains(a.raw, "internalId") || !strings.Contains(a.raw, `"name":"Ann"`) {
			t.Errorf("%s: redacted traits returned or others lost: %s", name, a.raw)
		}
		if !strings.Contains(a.raw, `"vip"`) {
			t.Errorf("%s: the redacted trait no longer drives rules: %s", name, a.raw)
		}
	}
	r, err := eng.Get(context.Background(), "p1")
	if err != nil || r.Profile.Traits["score"] != 95.0 || !slices.Contains(r.Profile.Audiences, "vip") {
		t.Errorf("the Go API lost the redacted trait: %+v, %v", r, err)
	}
}
