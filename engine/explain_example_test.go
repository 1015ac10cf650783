package engine_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/tailorhq/tailor/engine"
	"github.com/tailorhq/tailor/rules"
)

func ExampleEngine_Explain() {
	set, err := rules.Parse("rules.yaml", []byte(`
audiences:
  - id: pro
    when: traits.plan == "pro" && location.countryCode in ["US", "CA"]
experiences:
  - id: upsell
    audience: pro
    distribution: [0, 1]
  - id: checkout-test
    traffic: 0.5
    distribution: [0.5, 0.5]
    sticky: true
  - id: new-nav
    status: paused
    distribution: [0.5, 0.5]
    qaUsers: [{userId: qa-ann, variant: 1}]
`))
	if err != nil {
		log.Fatal(err)
	}
	now := func() time.Time { return time.Date(2026, 6, 13, 10, 0, 0, 0, time.UTC) }
	eng, err := engine.Open("", &engine.Options{InMemory: true, Rules: set, Now: now})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	ctx := context.Background()
	if _, err := eng.Identify(ctx, "visitor-1", engine.Request{Events: []engine.Event{{
		Type: engine.EventIdentify, Traits: map[string]any{"plan": "free"},
	}}}); err != nil {
		log.Fatal(err)
	}

	x, err := eng.Explain(ctx, "visitor-1", nil)
	if err != nil {
		log.Fatal(err)
	}
	for _, a := range x.Audiences {
		fmt.Printf("audience %s: matched %v; failed: %s\n", a.ID, a.Matched, a.FailedClause.Expr)
		for _, r := range a.FailedClause.Reads {
			fmt.Printf("  read %s = %#v\n", r.Expr, r.Value)
		}
	}
	for _, xe := range x.Experiences {
		fmt.Printf("experience %s: in %v (%s): %s\n", xe.ID, xe.In, xe.Reason, xe.Why)
	}

	// A QA override for one request: explained as forced, never stored.
	x, err = eng.Explain(ctx, "visitor-1", &engine.Overrides{Variants: map[string]int{"new-nav": 1}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(x.Experiences[2].Why)
	// Output:
	// audience pro: matched false; failed: traits.plan == "pro"
	//   read traits.plan = "free"
	// experience upsell: in false (audience not matched): audience "pro" not matched
	// experience checkout-test: in true (sticky assignment): kept from the sticky assignment of variant 0 under bucket version 0, made at 2026-06-13T10:00:00Z
	// experience new-nav: in false (not running): status is "paused", not "running"
	// forced to variant 1 by the request's overrides
}
