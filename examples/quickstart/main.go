// Command quickstart opens a tailor engine on a temporary directory with the
// rules file next to this source (embedded), sends the identify event of
// Ninetailed's "Update Profile Identify" example for a visitor in San
// Francisco, and prints the response in the Experience API's envelope.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/tailorhq/tailor/engine"
	"github.com/tailorhq/tailor/rules"
)

//go:embed rules.yaml
var rulesYAML []byte

// profileID is the profile of the reference payload's request path.
const profileID = "prof-7a4b2c1e-8d3f-4e5a-9b1c-3d4e5f6a7b8c"

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(w io.Writer) error {
	dir, err := os.MkdirTemp("", "tailor-quickstart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	set, err := rules.Parse("rules.yaml", rulesYAML)
	if err != nil {
		return err
	}
	eng, err := engine.Open(dir, &engine.Options{Rules: set})
	if err != nil {
		return err
	}
	defer eng.Close()

	sf := &engine.Location{
		City:        "San Francisco",
		Region:      "California",
		RegionCode:  "CA",
		Country:     "United States",
		CountryCode: "US",
		Timezone:    "America/Los_Angeles",
	}
	req := engine.Request{
		Locale: "en",
		Events: []engine.Event{
			{
				// The visit starts on the home page five minutes before
				// the visitor signs in.
				Type:        engine.EventPage,
				AnonymousID: "anon-9f8a2c1e-4b3d-4f5a-8e1b-2d3c4f5a6b7c",
				Timestamp:   "2026-06-13T10:00:00.000Z",
				Context: engine.EventContext{
					Page:     &engine.Page{URL: "https://example.com/", Path: "/"},
					Location: sf,
				},
			},
			{
				// The identify event of the reference payload.
				Type:        engine.EventIdentify,
				UserID:      "user-12345",
				AnonymousID: "anon-9f8a2c1e-4b3d-4f5a-8e1b-2d3c4f5a6b7c",
				Traits: map[string]any{
					"email":   "jane@example.com",
					"name":    "Jane Doe",
					"plan":    "pro",
					"company": "Acme Corp",
				},
				Timestamp: "2026-06-13T10:05:00.000Z",
				Context:   engine.EventContext{Location: sf},
			},
		},
	}
	resp, err := eng.Identify(context.Background(), profileID, req)
	if err != nil {
		return err
	}
	out := struct {
		Data    *engine.Response `json:"data"`
		Error   any              `json:"error"`
		Message string           `json:"message"`
	}{resp, nil, "ok"}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
