package engine

import (
	"context"
	"log/slog"
	"testing"

	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/storage"
)

// TestTelemetryHooksOffAllocs is the allocation budget of the
// hooks without providers: none.
func TestTelemetryHooksOffAllocs(t *testing.T) {
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

// nopStore answers every call at once, so that a benchmark of the metered
// store measures the metering.
type nopStore struct{ storage.Store }

func (nopStore) Get(context.Context, []byte, []byte) ([]byte, storage.Version, error) {
	return nil, 1, nil
}

func (nopStore) Write(context.Context, storage.Op) (storage.Version, error) { return 2, nil }

// BenchmarkTelemetryHooks is what telemetry adds to one Identify, alone:
// every hook one call passes through (start and end, three step spans, a
// cache lookup, one exposure) and the metering of two store reads and one
// write, with no providers (off), an SDK MeterProvider (metrics), an SDK
// TracerProvider sampling every call with its spans batched to a dropping
// exporter (traces), or both.
func BenchmarkTelemetryHooks(b *testing.B) {
	for _, mode := range BenchTelemetryModes {
		b.Run(mode, func(b *testing.B) {
			o := &Options{Logger: slog.New(slog.DiscardHandler), Rules: &rules.Set{}}
			BenchProviders(b, mode)(o)
			t := newTelemetry(o)
			st := t.meterStore(nopStore{})
			ctx := context.Background()
			resp := &Response{Profile: &Profile{Audiences: []string{"a"}}}
			xs := []Exposure{{ExperienceID: "x", VariantIndex: 1}}
			key := []byte("p/profile")
			b.ReportAllocs()
			for b.Loop() {
				ctx, call := t.startIdentify(ctx, 2, false)
				lctx, load := t.span(ctx, SpanLoad)
				t.cacheLookup(false)
				st.Get(lctx, key, nil)
				st.Get(lctx, key, nil)
				load.end(nil)
				_, eval := t.span(ctx, SpanEvaluate)
				eval.end(nil)
				cctx, commit := t.span(ctx, SpanCommit)
				st.Write(cctx, storage.Op{Key: key})
				commit.end(nil)
				t.exposed(ctx, xs)
				t.endIdentify(ctx, call, resp, nil)
			}
		})
	}
}
