package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/tailorhq/tailor/engine"
)

// FuzzIdentifyRequest decodes arbitrary bytes as a request body and runs
// Identify on it: it must never panic, and a request it refuses must be
// refused as invalid input, never as an internal error.
func FuzzIdentifyRequest(f *testing.F) {
	for _, seed := range []string{
		`{"events":[{"type":"page","context":{"page":{"url":"https://e.com/?a=b","path":"/"}}}]}`,
		`{"events":[{"type":"identify","userId":"u1","traits":{"plan":"pro","n":1,"o":{"x":[1,2]}}}]}`,
		`{"events":[{"type":"track","event":"purchase","timestamp":"2026-06-13T10:00:00Z"}]}`,
		`{"events":[{"type":"screen","name":"Home"},{"type":"alias"},{"type":"group"}]}`,
		`{"events":[{"type":"component","componentId":"c","experienceId":"exp","variantIndex":1}]}`,
		`{"events":[{"type":"page","context":{"location":{"countryCode":"US","regionCode":"CA"}}}],"options":{"features":["location"]}}`,
		`{"events":[]}`,
		`{"events":[{"type":"identify","traits":{"a":null}}]}`,
	} {
		f.Add([]byte(seed), "p1")
	}
	e := open(f, `
audiences:
  - id: pro
    when: traits.plan == "pro"
experiences:
  - id: exp
    sticky: true
    distribution: [0.5, 0.5]
    components: [{type: InlineVariable, key: k, baseline: a, variants: [b]}]
`, nil)
	f.Fuzz(func(t *testing.T, body []byte, id string) {
		var req engine.Request
		if err := json.Unmarshal(body, &req); err != nil {
			return // the HTTP layer answers 400 for malformed JSON
		}
		resp, err := e.Identify(context.Background(), id, req)
		if err != nil {
			if !errors.Is(err, engine.ErrInvalidInput) {
				t.Fatalf("Identify refused %q with %v, not invalid input", body, err)
			}
			return
		}
		if resp.Profile == nil || resp.Experiences == nil || resp.Changes == nil {
			t.Fatalf("incomplete response %+v", resp)
		}
		if _, err := json.Marshal(resp); err != nil {
			t.Fatalf("response does not encode: %v", err)
		}
	})
}
