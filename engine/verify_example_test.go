package engine_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/tailorhq/tailor/engine"
)

// The site's backend computes the userHash of the logged-in user with the
// secret it shares with tailor and renders it into the page; the browser
// sends it as traits.userHash with its identify event.
func ExampleUserHash() {
	secret := []byte("site-backend-secret")
	e, err := engine.Open("", &engine.Options{InMemory: true, IdentitySecret: secret})
	if err != nil {
		panic(err)
	}
	defer e.Close()
	ctx := context.Background()
	identify := func(hash string) error {
		_, err := e.Identify(ctx, "visitor-1", engine.Request{Untrusted: true, Events: []engine.Event{{
			Type: engine.EventIdentify, UserID: "user-1",
			Traits: map[string]any{engine.UserHashTrait: hash, "plan": "pro"},
		}}})
		return err
	}
	fmt.Println(errors.Is(identify("forged"), engine.ErrIdentityUnverified))
	fmt.Println(identify(engine.UserHash(secret, "user-1")))
	// Output:
	// true
	// <nil>
}
