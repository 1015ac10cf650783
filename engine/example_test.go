package engine_test

import (
	"context"
	"fmt"
	"log"

	"github.com/tailorhq/tailor/engine"
	"github.com/tailorhq/tailor/rules"
)

func ExampleEngine_Identify() {
	set, err := rules.Parse("rules.yaml", []byte(`
audiences:
  - id: pro
    when: traits.plan == "pro"
experiences:
  - id: upsell
    audience: pro
    distribution: [0, 1]
    components:
      - type: InlineVariable
        key: cta
        baseline: Buy now
        variants: [Upgrade to Enterprise]
`))
	if err != nil {
		log.Fatal(err)
	}
	eng, err := engine.Open("", &engine.Options{InMemory: true, Rules: set})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()

	resp, err := eng.Identify(context.Background(), "visitor-1", engine.Request{
		Events: []engine.Event{{
			Type:   engine.EventIdentify,
			UserID: "user-42",
			Traits: map[string]any{"plan": "pro"},
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("profile:", resp.Profile.ID)
	fmt.Println("audiences:", resp.Profile.Audiences)
	for _, c := range resp.Changes {
		fmt.Printf("change: %s = %v (%s, variant %d)\n", c.Key, c.Value, c.Meta.ExperienceID, c.Meta.VariantIndex)
	}
	// Output:
	// profile: visitor-1
	// audiences: [pro]
	// change: cta = Upgrade to Enterprise (upsell, variant 1)
}

func ExampleOpen() {
	// Nil options: Badger on disk in the directory, no rules yet.
	eng, err := engine.Open("", &engine.Options{InMemory: true})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	resp, err := eng.Identify(context.Background(), "", engine.Request{
		Events: []engine.Event{{Type: engine.EventPage, Context: engine.EventContext{
			Page: &engine.Page{URL: "https://example.com/pricing", Path: "/pricing"},
		}}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(resp.Profile.ID), resp.Profile.Session.Count, resp.Profile.Session.LandingPage.Path)
	// Output: 64 1 /pricing
}
