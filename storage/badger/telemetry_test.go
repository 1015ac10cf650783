package badger

import (
	"context"
	"fmt"
	"sync"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/tailorhq/tailor/storage"
)

// collected returns the data of the metric name, or nil.
func collected(t *testing.T, r sdkmetric.Reader, name string) metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m.Data
			}
		}
	}
	return nil
}

func sum(t *testing.T, r sdkmetric.Reader, name string) int64 {
	t.Helper()
	d, ok := collected(t, r, name).(metricdata.Sum[int64])
	if !ok || len(d.DataPoints) != 1 {
		t.Fatalf("%s: %+v, want one sum", name, d)
	}
	return d.DataPoints[0].Value
}

// TestTelemetryGroupCommit writes from many goroutines at once and checks
// that the batch-size histogram accounts for every write, in fewer groups
// than writes when they were grouped.
func TestTelemetryGroupCommit(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	s, err := Open(Options{InMemory: true, MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	const writers, each = 16, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := s.Write(context.Background(), storage.Op{Key: fmt.Appendf(nil, "k/%d/%d", w, i), Value: []byte("v")}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	h, ok := collected(t, reader, "tailor.store.commit.batch_size").(metricdata.Histogram[int64])
	if !ok || len(h.DataPoints) != 1 {
		t.Fatalf("tailor.store.commit.batch_size: %+v", h)
	}
	p := h.DataPoints[0]
	largest, _ := p.Max.Value()
	t.Logf("%d writes in %d group commits, the largest of %d", p.Sum, p.Count, largest)
	if p.Sum != writers*each || p.Count == 0 || p.Count > writers*each {
		t.Errorf("batch sizes sum to %d over %d commits, want %d writes", p.Sum, p.Count, writers*each)
	}
}

// TestTelemetryGC brings about a GC round that rewrites files (as
// TestValueLogGC does) and checks the rounds, rewrites and bytes
// reclaimed, and the live data measured after it.
func TestTelemetryGC(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	opts := gcOptions(t.TempDir())
	opts.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	s := garbageStore(t, opts)
	if d := collected(t, reader, "tailor.store.live_data"); d != nil {
		if g := d.(metricdata.Gauge[int64]); len(g.DataPoints) > 0 {
			t.Fatalf("live data reported before it was measured: %+v", g.DataPoints)
		}
	}
	_, before := s.Size()
	s.measuredGCRun(gcRoundAt)
	_, after := s.Size()
	if got := sum(t, reader, "tailor.store.gc.rounds"); got != 1 {
		t.Errorf("gc rounds = %d, want 1", got)
	}
	if got := sum(t, reader, "tailor.store.gc.rewrites"); got == 0 {
		t.Error("no value-log file rewritten")
	}
	if got := sum(t, reader, "tailor.store.gc.reclaimed"); got != before-after || got <= 0 {
		t.Errorf("reclaimed %d bytes, want the value log's shrinking, %d -> %d", got, before, after)
	}
	g, ok := collected(t, reader, "tailor.store.live_data").(metricdata.Gauge[int64])
	if !ok || len(g.DataPoints) != 1 {
		t.Fatalf("tailor.store.live_data: %+v", g)
	}
	// Every key holds one value of valueLen bytes; Badger estimates a
	// value's size from its pointer within a few bytes of header.
	want := int64(garbageKeys * (len("k/0000") + garbageValueLen))
	if live := g.DataPoints[0].Value; live < want*98/100 || live > want*102/100 {
		t.Errorf("live data %d bytes, want about %d", live, want)
	}
}
