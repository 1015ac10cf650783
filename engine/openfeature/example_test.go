package openfeature_test

import (
	"context"
	"fmt"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/tailorhq/tailor/engine"
	tailorof "github.com/tailorhq/tailor/engine/openfeature"
	"github.com/tailorhq/tailor/rules"
)

// Example serves tailor's decisions to code written against OpenFeature:
// register the provider, get a client, evaluate a flag for a profile. The
// flag is the key of an InlineVariable; the attribute "plan" is a trait
// for this evaluation only.
func Example() {
	set, err := rules.Parse("rules.yaml", []byte(`
audiences:
  - id: pro
    when: traits.plan == "pro"
experiences:
  - id: exp-cta
    type: personalization
    audience: pro
    distribution: [0, 1]
    components:
      - {type: InlineVariable, key: cta-color, baseline: blue, variants: [green]}
`))
	if err != nil {
		panic(err)
	}
	eng, err := engine.Open("", &engine.Options{InMemory: true, Rules: set})
	if err != nil {
		panic(err)
	}
	defer eng.Close()
	ctx := context.Background()
	defer openfeature.Shutdown()

	openfeature.SetProviderAndWait(tailorof.NewProvider(eng))
	client := openfeature.NewDefaultClient()
	color := client.String(ctx, "cta-color", "blue", openfeature.NewEvaluationContext("profile-42", map[string]any{"plan": "pro"}))

	fmt.Println(color)
	details, _ := client.StringValueDetails(ctx, "cta-color", "blue", openfeature.NewEvaluationContext("profile-43", nil))
	fmt.Println(details.Value, details.Reason, details.Variant)
	// Output:
	// green
	// blue DEFAULT 0
}
