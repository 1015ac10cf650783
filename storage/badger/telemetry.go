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

	"github.com/dgraph-io/badger/v4"
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
		metric.WithDescription("Keys and values of the live entries (latest versions, not deleted or expired), estimated from the LSM tree after every GC round.")); err != nil {
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

// measuredGCRound is gcRound, counted, with the value log's size on disk
// before and after, and followed by an estimate of the live data.
func (s *Store) measuredGCRound() {
	if s.tel == nil {
		s.gcRound()
		return
	}
	ctx := context.Background()
	_, before := s.Size()
	n := s.gcRound()
	_, after := s.Size()
	s.tel.gcRounds.Add(ctx, 1)
	s.tel.rewrites.Add(ctx, int64(n))
	if before > after {
		s.tel.reclaimed.Add(ctx, before-after)
	}
	s.measureLive()
}

// measureLive estimates the live data — key and value bytes of the latest
// version of every key not deleted or expired, queues included — from the
// LSM tree alone (Item.ValueSize reads a value's size from its pointer, so
// the value log is not read), and keeps it for the gauge. It stops early,
// keeping the last estimate, when Close is called.
func (s *Store) measureLive() {
	if s.tel == nil {
		return
	}
	txn := s.db.NewTransactionAt(s.clock.now(), false)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{})
	defer it.Close()
	var n int64
	i := 0
	for it.Rewind(); it.Valid(); it.Next() {
		if i++; i%1024 == 0 {
			select {
			case <-s.stop:
				return
			default:
			}
		}
		item := it.Item()
		n += item.KeySize() + item.ValueSize()
	}
	s.tel.live.Store(n)
}
