package engine

import (
	"context"
	"testing"
)

// BenchmarkTelemetryHooksOff runs every telemetry hook one Identify call
// passes through (start and end of the call, three step spans, exposures,
// a cache lookup) on an engine without providers: what telemetry costs
// when it is off, without the noise of a whole Identify around it.
func BenchmarkTelemetryHooksOff(b *testing.B) {
	var t *telemetry // no providers
	ctx := context.Background()
	resp := &Response{Profile: &Profile{}}
	xs := []Exposure{{ExperienceID: "x"}}
	b.ReportAllocs()
	for b.Loop() {
		ctx, call := t.startIdentify(ctx, 2, false)
		for _, name := range [...]string{SpanLoad, SpanEvaluate, SpanCommit} {
			_, s := t.span(ctx, name)
			s.end(nil)
		}
		t.cacheLookup(true)
		t.exposed(ctx, xs)
		t.endIdentify(ctx, call, resp, nil)
	}
}

// TestTelemetryHooksOffAllocateNothing is the allocation budget of the
// hooks without providers: none.
func TestTelemetryHooksOffAllocateNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	var tel *telemetry
	ctx := context.Background()
	resp := &Response{Profile: &Profile{}}
	if n := testing.AllocsPerRun(100, func() {
		ctx, call := tel.startIdentify(ctx, 2, false)
		_, s := tel.span(ctx, SpanLoad)
		s.end(nil)
		tel.cacheLookup(false)
		tel.endIdentify(ctx, call, resp, nil)
	}); n != 0 {
		t.Errorf("%v allocations per call without providers, want 0", n)
	}
}
