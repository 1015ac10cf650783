package rules_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/tailorhq/tailor/rules"
)

func ExampleParse() {
	src := []byte(`
audiences:
  - id: audience-pro-plan
    when: traits.plan == "pro"
experiences:
  - id: exp-cta
    audience: audience-pro-plan
    distribution: [0.5, 0.5]
    components:
      - type: InlineVariable
        key: cta-color
        baseline: blue
        variants: [green]
`)
	set, err := rules.Parse("rules.yaml", src)
	if err != nil {
		fmt.Println(err)
		return
	}
	e := set.Experiences[0]
	fmt.Println(e.ID, e.Type, e.Audience, e.AudienceIndex, e.Distribution, e.Components[0].Variants[0].Value)

	_, err = rules.Parse("rules.yaml", []byte(`
audiences:
  - id: audience-x
    when: traits.plan == "pro" && eventCount("buy", "30 days") > 1
`))
	var rerr *rules.Error
	fmt.Println(errors.Is(err, rules.ErrInvalid), errors.As(err, &rerr), rerr.Rule, rerr.Pos.Line)
	fmt.Println(err)
	// Output:
	// exp-cta experiment audience-pro-plan 0 [0.5 0.5] green
	// true true audience-x 4
	// rules.yaml:4:53: audience "audience-x": when: invalid window "30 days": want a positive count and a unit m, h, d or w, like "30d"
}

func ExampleSet_Match() {
	set, err := rules.Parse("rules.yaml", []byte(`
audiences:
  - id: recent-buyers
    when: eventCount("purchase", "30d") >= 2 && location.countryCode in ["US", "CA"]
  - id: pro-plan
    when: traits.plan == "pro"
  - id: pro-buyers
    when: inAudience("pro-plan") && inAudience("recent-buyers")
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	purchases := &rules.History{}
	purchases.Add(now.Add(-48 * time.Hour).UnixMilli())
	purchases.Add(now.Add(-10 * 24 * time.Hour).UnixMilli())
	env := &rules.Env{
		Traits:   map[string]any{"plan": "pro"},
		Location: rules.Location{CountryCode: "CA"},
		Now:      now,
		Events:   map[string]*rules.History{"purchase": purchases},
	}
	matched := make([]bool, len(set.Audiences))
	if err := set.Match(env, matched); err != nil {
		fmt.Println(err)
	}
	for i, a := range set.Audiences {
		fmt.Println(a.ID, matched[i])
	}
	// Output:
	// recent-buyers true
	// pro-plan true
	// pro-buyers true
}

func ExampleSet_Compiled() {
	set, err := rules.Parse("rules.yaml", []byte(`
audiences:
  - id: pro
    when: traits.plan in ["pro", "enterprise"] && traits.seats >= 10
  - id: office-hours
    when: now.Hour() >= 8 && now.Hour() < 18
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	env := &rules.Env{
		Traits: map[string]any{"plan": "pro", "seats": 12.0},
		Now:    time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC),
	}
	matched := make([]bool, len(set.Audiences))
	// MatchOne evaluates a single audience, in dependency order, e.g. to
	// time each one.
	for _, i := range set.Order() {
		ok, err := set.MatchOne(env, i, matched)
		fmt.Println(set.Audiences[i].ID, ok, err, "compiled:", set.Compiled(i))
	}
	// Output:
	// pro true <nil> compiled: true
	// office-hours true <nil> compiled: false
}
