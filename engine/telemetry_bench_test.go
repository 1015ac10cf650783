package engine_test

import (
	"context"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/tailorhq/tailor/engine"
)

// BenchmarkIdentifyTelemetry is BenchmarkIdentify/mem/zipf/cache (the
// fastest Identify, where telemetry weighs most) with the OpenTelemetry
// SDK installed: off (no providers), metrics (an SDK MeterProvider with a
// manual reader), traces (an SDK
// TracerProvider sampling every call, its spans batched to an exporter
// that drops them) and both. Compare each with off for the cost telemetry
// adds per Identify; BenchmarkIdentify before and after a change shows
// the cost without providers.
func BenchmarkIdentifyTelemetry(b *testing.B) {
	for _, mode := range []string{"off", "metrics", "traces", "both"} {
		b.Run(mode, func(b *testing.B) {
			e := openBench(b, false, true, func(o *engine.Options) {
				if mode == "metrics" || mode == "both" {
					mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
					b.Cleanup(func() { mp.Shutdown(context.Background()) })
					o.MeterProvider = mp
				}
				if mode == "traces" || mode == "both" {
					tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
					b.Cleanup(func() { tp.Shutdown(context.Background()) })
					o.TracerProvider = tp
				}
			})
			benchIdentify(b, e, true)
		})
	}
}
