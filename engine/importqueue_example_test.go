package engine_test

import (
	"context"
	"fmt"
	"time"

	"github.com/tailorhq/tailor/engine"
)

// ExampleEngine_Import queues a batch for the background worker, which
// applies it one Identify per anonymousId.
func ExampleEngine_Import() {
	eng, err := engine.Open("", &engine.Options{InMemory: true})
	if err != nil {
		panic(err)
	}
	defer eng.Close()
	ctx := context.Background()

	err = eng.Import(ctx, engine.Request{Events: []engine.Event{
		{Type: engine.EventIdentify, AnonymousID: "visitor-1", Traits: map[string]any{"plan": "pro"}},
		{Type: engine.EventPage, AnonymousID: "visitor-2"},
	}})
	if err != nil {
		panic(err)
	}
	for eng.ImportQueueLen() > 0 { // applied in the background
		time.Sleep(time.Millisecond)
	}
	resp, err := eng.Get(ctx, "visitor-1")
	if err != nil {
		panic(err)
	}
	fmt.Println(resp.Profile.Traits["plan"])
	// Output: pro
}

// ExampleEngine_IdentifyBatch applies a batch of several visitors' events
// at once and returns one Response per visitor, in order of first
// appearance.
func ExampleEngine_IdentifyBatch() {
	eng, err := engine.Open("", &engine.Options{InMemory: true})
	if err != nil {
		panic(err)
	}
	defer eng.Close()

	resps, err := eng.IdentifyBatch(context.Background(), engine.Request{Events: []engine.Event{
		{Type: engine.EventTrack, Event: "purchase", AnonymousID: "visitor-2"},
		{Type: engine.EventPage, AnonymousID: "visitor-1"},
		{Type: engine.EventTrack, Event: "purchase", AnonymousID: "visitor-2"},
	}})
	if err != nil {
		panic(err)
	}
	for _, r := range resps {
		fmt.Println(r.Profile.ID)
	}
	// Output:
	// visitor-2
	// visitor-1
}
