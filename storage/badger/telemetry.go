package badger

// Telemetry: the store's own OpenTelemetry metrics, reported through
// Options.MeterProvider — what only Badger knows. The engine measures
// what every store has (the latency of its reads and writes, the size on
// disk through storage.Sizer). Without a MeterProvider, Store.tel is nil
// and the hooks (in committer, gcLoop and Close) return after one nil
// check.

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// ScopeName is the instrumentation scope of the store's meter.
const ScopeName = "github.com/tailorhq/tailor/storage/badger"

var batchBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}

// telemetry holds the store's instruments; nil without a MeterProvider.
type telemetry struct {
	batch     metric.Int64Histogram
	gcRounds  metric.Int64Counter
	rewrites  metric.Int64Counter
	reclaimed metric.Int64Counter
	liveData  metric.Int64ObservableGauge

	live      atomic.Int64 // the last estimate of live data; -1 before the first
	measured  time.Time    // when live was estimated; used by the GC loop only
	closeOnce sync.Once
	reg       metric.Registration
}

// newTelemetry returns the store's telemetry, or nil without a provider.
// Instruments the provider refuses are logged and replaced by no-ops.
func newTelemetry(o *Options) *telemetry {
	if o.MeterProvider == nil {
		return nil
	}
	meter := o.MeterProvider.Meter(ScopeName)
	nop := noop.Meter{}
	var errs []error
	t := &telemetry{}
	t.live.Store(-1)
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := meter.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		if err != nil {
			errs = append(errs, err)
			c, _ = nop.Int64Counter(name)
		}
		return c
	}
	var err error
	if t.batch, err = meter.Int64Histogram("tailor.store.commit.batch_size", metric.WithUnit("{write}"),
		metric.WithDescription("Write calls committed together by one group commit."),
		metric.WithExplicitBucketBoundaries(batchBuckets...)); err != nil {
		errs = append(errs, err)
		t.batch, _ = nop.Int64Histogram("tailor.store.commit.batch_size")
	}
	t.gcRounds = counter("tailor.store.gc.rounds", "{round}", "Value-log GC rounds run.")
	t.rewrites = counter("tailor.store.gc.rewrites", "{file}", "Value-log files rewritten by GC.")
	t.reclaimed = counter("tailor.store.gc.reclaimed", "By", "Value-log bytes on disk freed by GC rounds (net of writes meanwhile).")
	if t.liveData, err = meter.Int64ObservableGauge("tailor.store.live_data", metric.WithUnit("By"),
		metric.WithDescription("Keys and values of the live entries (latest versions, not deleted or expired), estimated from the LSM tree after GC rounds that rewrote files (at most every 30 s).")); err != nil {
		errs = append(errs, err)
		t.liveData, _ = nop.Int64ObservableGauge("tailor.store.live_data")
	}
	if err == nil {
		t.reg, err = meter.RegisterCallback(func(_ context.Context, ob metric.Observer) error {
			if n := t.live.Load(); n >= 0 {
				ob.ObserveInt64(t.liveData, n)
			}
			return nil
		}, t.liveData)
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil && o.Logger != nil {
		o.Logger.Warn("badger: telemetry: some instruments are not available", "err", err)
	}
	return t
}

// committed records the size of one group commit.
func (t *telemetry) committed(writes int) {
	if t == nil {
		return
	}
	t.batch.Record(context.Background(), int64(writes))
}

// close stops the gauge's callback: the provider outlives the store.
func (t *telemetry) close() {
	if t == nil {
		return
	}
	t.closeOnce.Do(func() {
		if t.reg != nil {
			_ = t.reg.Unregister()
		}
	})
}

// measuredGCRun is gcRun, counted, with the value log's size on disk
// before and after; after a run that rewrote files (and at the first run)
// it estimates the live data again, at most once per liveEvery.
func (s *Store) measuredGCRun(a gcAction) {
	t := s.tel
	if t == nil {
		s.gcRun(a)
		return
	}
	_, before := s.Size()
	n := s.gcRun(a)
	_, after := s.Size()
	ctx := context.Background()
	if a != gcNothing {
		t.gcRounds.Add(ctx, 1)
	}
	t.rewrites.Add(ctx, int64(n))
	if before > after {
		t.reclaimed.Add(ctx, before-after)
	}
	if now := time.Now(); t.live.Load() < 0 || n > 0 && now.Sub(t.measured) >= liveEvery {
		t.measured = now
		if _, bytes, err := s.live(s.stop); err == nil {
			t.live.Store(bytes)
		}
	}
}

// liveEvery bounds how often the GC loop counts the live data for the
// gauge: a count reads the whole LSM tree (0.3–0.5 s of CPU for a million
// profiles), and under load the GC rewrites files every few seconds.
const liveEvery = 30 * time.Second
