package engine

import (
	"context"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// MaxAttempts is maxAttempts, for tests counting retries.
const MaxAttempts = maxAttempts

// TelemetryOff reports whether e holds no telemetry and its store is not
// wrapped by the metered store.
func TelemetryOff(e *Engine) bool {
	_, metered := e.store.(*meteredStore)
	return e.tel == nil && !metered
}

// BenchTelemetryModes are the telemetry set-ups benchmarks compare.
var BenchTelemetryModes = []string{"off", "metrics", "traces", "both"}

// BenchProviders returns an Options adjuster installing the providers of
// mode: none (off), an SDK MeterProvider with a manual reader (metrics),
// an SDK TracerProvider sampling every span and batching them to an
// exporter that drops them (traces), or both. They shut down with b.
func BenchProviders(b testing.TB, mode string) func(*Options) {
	return func(o *Options) {
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
	}
}
