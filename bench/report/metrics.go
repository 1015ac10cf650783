package report

import (
	"fmt"
	"math"
	"strings"
)

// Metric is one series of the engine's and the store's OpenTelemetry
// metrics over the measured phase (bench -metrics): what an operator's
// dashboard would show for the run. Value is a counter's increase over
// the phase or a gauge's value at its end; a histogram has Count, Sum and
// the upper bounds of the buckets holding its median and 99th percentile
// (Value is then Count).
type Metric struct {
	Name       string  `json:"name"`
	Unit       string  `json:"unit,omitempty"`
	Kind       string  `json:"kind"` // "counter", "gauge" or "histogram"
	Attributes string  `json:"attributes,omitempty"`
	Value      float64 `json:"value"`
	Count      uint64  `json:"count,omitempty"`
	Sum        float64 `json:"sum,omitempty"`
	P50        float64 `json:"p50,omitempty"`
	P99        float64 `json:"p99,omitempty"`
}

// Kinds of Metric.
const (
	KindCounter   = "counter"
	KindGauge     = "gauge"
	KindHistogram = "histogram"
)

// format renders v in unit for people: seconds as durations, bytes as
// sizes, anything else as a number.
func format(v float64, unit string) string {
	switch unit {
	case "s":
		return Duration(v * 1e9)
	case "By":
		return Bytes(int64(v))
	}
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.4g", v)
}

// writeMetrics appends the metrics section of the text report.
func writeMetrics(b *strings.Builder, ms []Metric) {
	if len(ms) == 0 {
		return
	}
	b.WriteString("\nmetrics over the measured phase (OpenTelemetry; counters: increase, gauges: at the end):\n")
	for _, m := range ms {
		name := m.Name
		if m.Attributes != "" {
			name += "{" + m.Attributes + "}"
		}
		switch m.Kind {
		case KindHistogram:
			mean := 0.0
			if m.Count > 0 {
				mean = m.Sum / float64(m.Count)
			}
			fmt.Fprintf(b, "  %s  count %d  mean %s  p50 ≤ %s  p99 ≤ %s\n", name, m.Count,
				format(mean, m.Unit), format(m.P50, m.Unit), format(m.P99, m.Unit))
		default:
			fmt.Fprintf(b, "  %s  %s\n", name, format(m.Value, m.Unit))
		}
	}
}
