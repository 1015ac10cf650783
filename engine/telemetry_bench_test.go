package engine_test

import (
	"testing"

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
	for _, mode := range engine.BenchTelemetryModes {
		b.Run(mode, func(b *testing.B) {
			e := openBench(b, false, true, engine.BenchProviders(b, mode))
			benchIdentify(b, e, true)
		})
	}
}
