package runner

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/tailorhq/tailor/bench/report"
)

// meters is an OpenTelemetry SDK MeterProvider read by hand with delta
// temporality: each collect returns what changed since the one before, so
// collecting before the measured phase leaves the phase alone in the
// next.
type meters struct {
	reader   *sdkmetric.ManualReader
	provider *sdkmetric.MeterProvider
}

func newMeters() *meters {
	r := sdkmetric.NewManualReader(sdkmetric.WithTemporalitySelector(
		func(sdkmetric.InstrumentKind) metricdata.Temporality { return metricdata.DeltaTemporality }))
	return &meters{reader: r, provider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))}
}

// collect returns the metrics since the last collect, sorted by name and
// attributes.
func (m *meters) collect(ctx context.Context) ([]report.Metric, error) {
	var rm metricdata.ResourceMetrics
	if err := m.reader.Collect(ctx, &rm); err != nil {
		return nil, fmt.Errorf("runner: metrics: %w", err)
	}
	var out []report.Metric
	for _, sm := range rm.ScopeMetrics {
		for _, mm := range sm.Metrics {
			base := report.Metric{Name: mm.Name, Unit: mm.Unit}
			switch d := mm.Data.(type) {
			case metricdata.Sum[int64]:
				out = appendPoints(out, base, report.KindCounter, d.DataPoints)
			case metricdata.Sum[float64]:
				out = appendPoints(out, base, report.KindCounter, d.DataPoints)
			case metricdata.Gauge[int64]:
				out = appendPoints(out, base, report.KindGauge, d.DataPoints)
			case metricdata.Gauge[float64]:
				out = appendPoints(out, base, report.KindGauge, d.DataPoints)
			case metricdata.Histogram[int64]:
				out = appendHistograms(out, base, d.DataPoints)
			case metricdata.Histogram[float64]:
				out = appendHistograms(out, base, d.DataPoints)
			}
		}
	}
	slices.SortFunc(out, func(a, b report.Metric) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Attributes, b.Attributes))
	})
	return out, nil
}

func (m *meters) shutdown() { _ = m.provider.Shutdown(context.Background()) }

func attrs(s attribute.Set) string {
	var parts []string
	for _, kv := range s.ToSlice() {
		parts = append(parts, string(kv.Key)+"="+kv.Value.Emit())
	}
	return strings.Join(parts, ",")
}

func appendPoints[N int64 | float64](out []report.Metric, base report.Metric, kind string, ps []metricdata.DataPoint[N]) []report.Metric {
	for _, p := range ps {
		m := base
		m.Kind, m.Attributes, m.Value = kind, attrs(p.Attributes), float64(p.Value)
		out = append(out, m)
	}
	return out
}

func appendHistograms[N int64 | float64](out []report.Metric, base report.Metric, ps []metricdata.HistogramDataPoint[N]) []report.Metric {
	for _, p := range ps {
		if p.Count == 0 {
			continue
		}
		m := base
		m.Kind, m.Attributes = report.KindHistogram, attrs(p.Attributes)
		m.Value, m.Count, m.Sum = float64(p.Count), p.Count, float64(p.Sum)
		m.P50, m.P99 = bucketQuantile(p, 0.5), bucketQuantile(p, 0.99)
		out = append(out, m)
	}
	return out
}

// bucketQuantile returns the upper bound of the bucket holding quantile q
// of p, or p's maximum when that is the last, unbounded bucket.
func bucketQuantile[N int64 | float64](p metricdata.HistogramDataPoint[N], q float64) float64 {
	rank := q * float64(p.Count)
	var seen uint64
	for i, n := range p.BucketCounts {
		seen += n
		if float64(seen) >= rank && n > 0 {
			if i < len(p.Bounds) {
				return p.Bounds[i]
			}
			break
		}
	}
	if max, ok := p.Max.Value(); ok {
		return float64(max)
	}
	return 0
}
