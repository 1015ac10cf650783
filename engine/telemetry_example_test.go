package engine_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/tailorhq/tailor/engine"
)

// ExampleOptions_meterProvider reports the engine's metrics to an
// OpenTelemetry SDK MeterProvider, here read by hand; a server would
// export them (examples/server serves them to Prometheus).
func ExampleOptions_meterProvider() {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())

	eng, err := engine.Open("", &engine.Options{InMemory: true, MeterProvider: mp})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	ctx := context.Background()
	eng.Identify(ctx, "visitor-1", engine.Request{Events: []engine.Event{{Type: engine.EventTrack, Event: "signup"}}})
	eng.Identify(ctx, "visitor-1", engine.Request{Events: []engine.Event{{Type: "no-such-type"}}})

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		log.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "tailor.identify.calls" {
				continue
			}
			for _, p := range m.Data.(metricdata.Sum[int64]).DataPoints {
				outcome, _ := p.Attributes.Value("tailor.outcome")
				fmt.Println(m.Name, outcome.AsString(), p.Value)
			}
		}
	}
	// Unordered output:
	// tailor.identify.calls ok 1
	// tailor.identify.calls invalid 1
}

// ExampleEngine_LoadRules reloads a rules file; an invalid file leaves the
// rules in force.
func ExampleEngine_LoadRules() {
	eng, err := engine.Open("", &engine.Options{InMemory: true})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	dir, err := os.MkdirTemp("", "rules")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "rules.yaml")

	os.WriteFile(path, []byte("audiences:\n  - id: everyone\n    when: \"true\"\n"), 0o644)
	set, err := eng.LoadRules(path)
	fmt.Println(len(set.Audiences), err)

	os.WriteFile(path, []byte("audiences:\n  - id: broken\n    when: \"traits.(\"\n"), 0o644)
	_, err = eng.LoadRules(path)
	fmt.Println(err != nil, len(eng.Rules().Audiences))
	// Output:
	// 1 <nil>
	// true 1
}
