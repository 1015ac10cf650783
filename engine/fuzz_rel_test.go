package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/tailorhq/tailor/engine"
	"github.com/tailorhq/tailor/storage"
	"github.com/tailorhq/tailor/storage/badger"
)

// FuzzIdentifyUntrusted fuzzes the request path as the HTTP layer drives
// it, with what FuzzIdentifyRequest does not cover: requests trusted or
// not, identity verification on, and a store that counts writes.
// Whatever the input: no panic; an error is invalid input or an
// unverified identity and wrote nothing; a success encodes as JSON, never
// returns userHash as a trait, and its profile reads back. Run with
//
//	go test ./engine -run '^$' -fuzz FuzzIdentifyUntrusted -fuzztime 5m
func FuzzIdentifyUntrusted(f *testing.F) {
	seeds := []string{
		`{"events":[{"type":"page","context":{"page":{"url":"https://example.com/","path":"/"}}}]}`,
		`{"events":[{"type":"identify","userId":"user-12345","anonymousId":"anon-9f8a","traits":{"email":"jane@example.com","name":"Jane Doe","plan":"pro","company":"Acme Corp"},"timestamp":"2026-06-13T10:05:00.000Z"}]}`,
		`{"events":[{"type":"track","event":"purchase","properties":{"value":12.5,"items":[1,2,{"a":null}]}}],"options":{"features":["location","ip-enrichment"]}}`,
		`{"events":[{"type":"component","componentId":"c","experienceId":"exp-a","variantIndex":1,"viewDurationMs":120}]}`,
		`{"events":[{"type":"screen","name":"Home","context":{"location":{"countryCode":"de","regionCode":"BE","coordinates":{"latitude":52.5,"longitude":13.4}}}}]}`,
		`{"events":[{"type":"identify","userId":"u","traits":{"userHash":"00","a":{"b":{"c":[1,2,3]}}}},{"type":"alias"},{"type":"group"}]}`,
		`{"events":[{"type":"page","timestamp":"2026-01-01T00:00:00+02:00","sentAt":"2026-01-01T00:00:01Z","context":{"campaign":{"name":"x","source":"y"},"page":{"query":{"utm_source":"y"}}}}]}`,
		`{"events":[]}`,
		`{}`,
	}
	for i, s := range seeds {
		f.Add("fuzz-profile", []byte(s), i%2 == 0)
		f.Add("", []byte(s), i%2 == 1)
	}

	var applies atomic.Int64
	st, err := badger.Open(badger.Options{InMemory: true})
	if err != nil {
		f.Fatal(err)
	}
	counting := &faultStore{Store: st}
	counting.setBeforeWrite(func(storage.Op) error { applies.Add(1); return nil })
	e, err := engine.Open("", &engine.Options{Store: counting, IdentitySecret: secret,
		Rules: mustRules(f, planRules)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { e.Close() })
	ctx := context.Background()

	f.Fuzz(func(t *testing.T, id string, body []byte, untrusted bool) {
		var req engine.Request
		if err := json.Unmarshal(body, &req); err != nil {
			return // the HTTP layer answers 400 before the engine
		}
		req.Untrusted = untrusted
		before := applies.Load()
		resp, err := e.Identify(ctx, id, req)
		if err != nil {
			if !errors.Is(err, engine.ErrInvalidInput) && !errors.Is(err, engine.ErrIdentityUnverified) {
				t.Fatalf("Identify(%q, %s): unexpected error %v", id, body, err)
			}
			if applies.Load() != before {
				t.Fatalf("Identify(%q, %s) failed with %v but wrote", id, body, err)
			}
			return
		}
		if _, err := json.Marshal(resp); err != nil {
			t.Fatalf("response does not encode: %v", err)
		}
		if _, ok := resp.Profile.Traits[engine.UserHashTrait]; ok {
			t.Fatalf("userHash returned as a trait")
		}
		if _, err := e.Get(ctx, resp.Profile.ID); err != nil {
			t.Fatalf("Get(%q) after Identify: %v", resp.Profile.ID, err)
		}
	})
}
