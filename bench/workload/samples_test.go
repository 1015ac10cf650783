package workload

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestReadSamples(t *testing.T) {
	in := `# a comment
{"id": "p1", "userId": "u1", "traits": {"plan": "pro"}, "location": {"countryCode": "US"}, "session": {"count": 4}, "stableId": "s", "audiences": [], "jurisdiction": "none", "stickyVariants": {}, "trackEvents": [{"name": "purchase", "time": 1764000000000}]}

{"profileId": "p2", "events": [{"type": "page", "timestamp": "2026-11-28T10:00:00Z", "context": {"page": {"path": "/pricing", "url": "u", "referrer": "", "search": "", "query": {}}, "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"}}, {"type": "identify", "userId": "u2", "traits": {"plan": "free", "x": 1}, "timestamp": "2026-11-28T11:00:00Z"}, {"type": "identify", "traits": {"x": null}, "timestamp": "2026-11-28T11:00:01Z"}, {"type": "track", "event": "signup", "timestamp": "2026-11-28T11:00:02Z"}]}
{"traits": {"plan": "free"}}
`
	got, err := ReadSamples(strings.NewReader(in), fixedNow, func(i int) string { return fmt.Sprint("gen-", i) })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d samples, want 3", len(got))
	}
	p1, p2, p3 := got[0].Profile, got[1].Profile, got[2].Profile
	if p1.ID != "p1" || p1.Sessions != 4 || p1.Traits["plan"] != "pro" || len(p1.Events) != 1 || got[0].Events != nil {
		t.Errorf("profile line decoded as %+v", p1)
	}
	if p2.ID != "p2" || p2.UserID != "u2" || p2.Traits["plan"] != "free" || p2.Traits["x"] != nil ||
		p2.Page.Path != "/pricing" || len(p2.Views) != 1 || len(p2.Events) != 1 || p2.Sessions != 2 ||
		p2.Device.Type != "mobile" || len(got[1].Events) != 4 {
		t.Errorf("event batch folded into %+v", p2)
	}
	if p3.ID != "gen-2" || p3.Sessions != 1 {
		t.Errorf("line without id: %+v", p3)
	}
	if req := got[1].PopulateRequest(fixedNow); len(req.Events) != 4 {
		t.Errorf("batch populate request has %d events, want the 4 given", len(req.Events))
	}
}

func TestReadSamplesErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"bad json", "{\n", "line 1"},
		{"unknown field", `{"id": "a", "nope": 1}`, `unknown field "nope"`},
		{"empty batch", `{"events": []}`, "empty batch"},
		{"bad timestamp", `{"events": [{"type": "page", "timestamp": "yesterday"}]}`, "events[0].timestamp"},
		{"track without name", "\n" + `{"events": [{"type": "track"}]}`, "line 2: events[0].event"},
		{"nothing", "# only a comment\n", "no profiles"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadSamples(strings.NewReader(tc.in), fixedNow, func(int) string { return "x" })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestNDJSONRoundTrip(t *testing.T) {
	g := newGen(t, Config{Profiles: 30, Seed: 5})
	var buf bytes.Buffer
	if err := g.WriteNDJSON(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSamples(&buf, fixedNow, func(int) string { t.Fatal("a written profile has no id"); return "" })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 30 {
		t.Fatalf("%d samples read back, want 30", len(got))
	}
	for i, s := range got {
		want := g.Profile(i)
		// JSON numbers come back as float64 already; compare the envs
		// rules see.
		if !reflect.DeepEqual(s.Profile.Env(fixedNow), want.Env(fixedNow)) {
			t.Fatalf("profile %d changed through NDJSON:\n got %+v\nwant %+v", i, s.Profile, want)
		}
	}
}
