package rules_test

import (
	"fmt"
	"log"

	"github.com/tailorhq/tailor/rules"
)

func ExampleSet_Explain() {
	set, err := rules.Parse("rules.yaml", []byte(`
audiences:
  - id: recent-buyers
    when: eventCount("purchase", "30d") >= 2 && location.countryCode in ["US", "CA"]
`))
	if err != nil {
		log.Fatal(err)
	}
	env := &rules.Env{Location: rules.Location{CountryCode: "DE"}}
	matched := make([]bool, len(set.Audiences))
	exps, err := set.Explain(env, matched, nil)
	if err != nil {
		log.Fatal(err)
	}
	c := exps[0].Clause
	fmt.Println(exps[0].Matched, c.Expr)
	for _, r := range c.Reads {
		fmt.Printf("%s = %#v\n", r.Expr, r.Value)
	}
	// Output:
	// false eventCount("purchase", "30d") >= 2
	// eventCount("purchase", "30d") = 0
}
